package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
)

// DefaultInstanceName is the instance commands use when none is named.
const DefaultInstanceName = "Tentacle"

// RootlessConfigFile is the config file of a "rootless" instance: one with no
// name that lives in the current directory and touches no machine-wide path.
const RootlessConfigFile = "Tentacle.config"

// MachineConfigRoot is where machine-wide Tentacle state lives: /etc/octopus
// on Linux and macOS, <ProgramData>\Octopus on Windows, or the directory in
// TentacleMachineConfigurationHomeDirectory, as upstream.
func MachineConfigRoot(getenv func(string) string) string {
	if d := strings.TrimSpace(getenv("TentacleMachineConfigurationHomeDirectory")); d != "" {
		return d
	}
	if runtime.GOOS == "windows" {
		return filepath.Join(programData(getenv), "Octopus")
	}
	return "/etc/octopus"
}

// Instance is one entry of the instance index.
type Instance struct {
	Name                  string `json:"Name"`
	ConfigurationFilePath string `json:"ConfigurationFilePath"`
}

// Index is the instance index: <root>/Tentacle/Instances/<name>.config, one
// JSON file per instance despite the extension, exactly as upstream.
type Index struct {
	Dir string
}

// NewIndex returns the index under a machine config root.
func NewIndex(root string) *Index {
	return &Index{Dir: filepath.Join(root, "Tentacle", "Instances")}
}

// fileName is upstream's file name rule: lower case, spaces become dashes.
func (x *Index) fileName(name string) string {
	return filepath.Join(x.Dir, strings.ToLower(strings.ReplaceAll(name, " ", "-"))+".config")
}

// List returns every indexed instance, sorted by name.
func (x *Index) List() ([]Instance, error) {
	ents, err := os.ReadDir(x.Dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, Userf("The instance index %s cannot be read: %v. Run the command as a user who can read it (usually root).", x.Dir, errors.Unwrap(err))
	}
	var out []Instance
	for _, e := range ents {
		if e.IsDir() || !strings.HasSuffix(strings.ToLower(e.Name()), ".config") {
			continue
		}
		inst, err := x.read(filepath.Join(x.Dir, e.Name()))
		if err != nil {
			return nil, err
		}
		out = append(out, inst)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func (x *Index) read(path string) (Instance, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Instance{}, Unreadable("The instance index entry", path, err, "Run the command as a user who can read it (usually root).")
	}
	var inst Instance
	data = []byte(strings.TrimPrefix(string(data), "\uFEFF"))
	if err := json.Unmarshal(data, &inst); err != nil || inst.Name == "" {
		return Instance{}, Userf("The instance index entry %s is corrupt. Remove it and run `tentacle create-instance` again for that instance.", path)
	}
	return inst, nil
}

// Names is the comma-separated list upstream prints in its errors.
func Names(list []Instance) string {
	names := make([]string, len(list))
	for i, in := range list {
		names[i] = in.Name
	}
	sort.Slice(names, func(i, j int) bool { return strings.ToLower(names[i]) < strings.ToLower(names[j]) })
	if len(names) == 0 {
		return "(none)"
	}
	return strings.Join(names, ", ")
}

// Get finds an instance by name, case-insensitively; when names differ only
// by case, the exact-case match wins.
func (x *Index) Get(name string) (Instance, error) {
	list, err := x.List()
	if err != nil {
		return Instance{}, err
	}
	var matches []Instance
	for _, in := range list {
		if strings.EqualFold(in.Name, name) {
			matches = append(matches, in)
		}
	}
	switch len(matches) {
	case 0:
		return Instance{}, Userf("Instance %s of Tentacle has not been configured on this machine. Available instances: %s. Create it with `tentacle create-instance --instance %q --config <path>`, or pass --instance with one of those names.", name, Names(list), name)
	case 1:
		return matches[0], nil
	}
	for _, in := range matches {
		if in.Name == name {
			return in, nil
		}
	}
	return Instance{}, Userf("Instance %s of Tentacle could not be matched to one of the existing instances: %s. Pass --instance with the exact name.", name, Names(list))
}

// Register adds or updates an index entry. It reports whether anything
// changed.
func (x *Index) Register(inst Instance) (bool, error) {
	path := x.fileName(inst.Name)
	if old, err := x.read(path); err == nil && old == inst {
		return false, nil
	}
	if _, err := EnsurePrivateDirAll(x.Dir); err != nil {
		return false, err
	}
	data, _ := json.MarshalIndent(inst, "", "  ")
	if err := WriteFileAtomic(path, data, privateFileMode); err != nil {
		return false, Userf("Unable to write the instance index entry %s: %v. Run the command as root (or with sudo).", path, errors.Unwrap(err))
	}
	return true, nil
}

// Delete removes an instance's index entry only; its configuration file,
// home directory and service stay, as upstream.
func (x *Index) Delete(name string) (Instance, error) {
	inst, err := x.Get(name)
	if err != nil {
		return Instance{}, err
	}
	if err := os.Remove(x.fileName(inst.Name)); err != nil {
		return Instance{}, Userf("Unable to delete the instance index entry %s: %v. Run the command as root (or with sudo).", x.fileName(inst.Name), errors.Unwrap(err))
	}
	return inst, nil
}

// EnsurePrivateDirAll is EnsurePrivateDir for a path whose parents may be
// machine-wide directories (such as /etc/octopus): those are created 0755
// so that other instances and tools can traverse them, the leaf 0700.
func EnsurePrivateDirAll(dir string) (bool, error) {
	parent := filepath.Dir(dir)
	if _, err := os.Stat(parent); errors.Is(err, os.ErrNotExist) {
		if err := os.MkdirAll(parent, 0o755); err != nil {
			return false, fmt.Errorf("cannot create directory %s: %w", parent, err)
		}
	}
	return EnsurePrivateDir(dir)
}

// Selection says how a command chose its instance.
type Selection struct {
	Name       string // "" for a rootless instance
	ConfigPath string // absolute
	Rootless   bool
}

// Select resolves --instance/--config as upstream (tentacle-surface §1.3):
// --config wins and bypasses the index; --instance looks the name up;
// otherwise ./Tentacle.config (rootless), else the instance named Tentacle,
// else the only instance, else an error that lists the instances.
func (x *Index) Select(instance, configPath, cwd string) (Selection, error) {
	if configPath != "" {
		abs := configPath
		if !filepath.IsAbs(abs) {
			abs = filepath.Join(cwd, abs)
		}
		return Selection{Name: instance, ConfigPath: filepath.Clean(abs), Rootless: instance == ""}, nil
	}
	if instance != "" {
		inst, err := x.Get(instance)
		if err != nil {
			return Selection{}, err
		}
		return Selection{Name: inst.Name, ConfigPath: inst.ConfigurationFilePath}, nil
	}
	local := filepath.Join(cwd, RootlessConfigFile)
	if _, err := os.Stat(local); err == nil {
		return Selection{ConfigPath: local, Rootless: true}, nil
	}
	list, err := x.List()
	if err != nil {
		return Selection{}, err
	}
	for _, in := range list {
		if in.Name == DefaultInstanceName {
			return Selection{Name: in.Name, ConfigPath: in.ConfigurationFilePath}, nil
		}
	}
	switch len(list) {
	case 1:
		return Selection{Name: list[0].Name, ConfigPath: list[0].ConfigurationFilePath}, nil
	case 0:
		return Selection{}, Userf("Unable to find default instance of Tentacle. Available instances: (none). Create one with `tentacle create-instance --instance Tentacle --config /etc/octopus/Tentacle/tentacle.config`, or pass --config.")
	}
	return Selection{}, Userf("There is more than one instance of Tentacle configured on this machine. Please pass --instance=INSTANCENAME when invoking this command to target a specific instance. Available instances: %s.", Names(list))
}
