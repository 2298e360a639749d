package main

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"

	"github.com/tentacle-go/tentacle/agent/config"
)

// CreateInstanceCmd is upstream's create-instance.
type CreateInstanceCmd struct {
	Instance string `name:"instance" help:"Name of the instance to create" placeholder:"NAME"`
	Config   string `name:"config" help:"Path to configuration file to create" placeholder:"PATH"`
	Home     string `name:"home" help:"[Optional] Path to the home directory - defaults to the same directory as the config file" placeholder:"DIR"`
}

func (c *CreateInstanceCmd) Run(e *Env) error {
	rootless := c.Instance == "" && c.Config == ""
	name := c.Instance
	if name == "" {
		name = config.DefaultInstanceName
	}
	abs := func(p string) string {
		if !filepath.IsAbs(p) {
			p = filepath.Join(e.Cwd, p)
		}
		return filepath.Clean(p)
	}
	home := c.Home
	if home == "" {
		if c.Config != "" {
			home = filepath.Dir(abs(c.Config))
		} else {
			home = "."
		}
	}
	configPath := c.Config
	if configPath == "" {
		configPath = config.RootlessConfigFile
	}
	if !filepath.IsAbs(configPath) {
		configPath = filepath.Join(abs(home), configPath)
	}
	configPath = filepath.Clean(configPath)
	// A rootless instance keeps a relative home so that its directory can be
	// moved; everything else is stored absolute.
	storedHome := abs(home)
	if rootless && c.Home == "" {
		storedHome = "."
	}

	changed := false
	if _, err := config.EnsurePrivateDirAll(filepath.Dir(configPath)); err != nil {
		return config.Userf("Cannot create the configuration directory: %v. Run the command as a user who can write there (usually root).", errors.Unwrap(err))
	}
	if _, err := os.Stat(configPath); errors.Is(err, os.ErrNotExist) {
		e.Infof("Creating empty configuration file: %s", configPath)
		if err := config.NewSettings(configPath).Save(); err != nil {
			return config.Userf("Cannot create the configuration file: %v. Run the command as a user who can write there (usually root).", errors.Unwrap(err))
		}
		changed = true
	} else if err != nil {
		return config.Userf("Cannot read %s: %v.", configPath, errors.Unwrap(err))
	} else {
		e.Infof("Configuration file at %s already exists.", configPath)
	}

	if !rootless {
		idx := e.Index()
		prev, prevErr := idx.Get(name)
		did, err := idx.Register(config.Instance{Name: name, ConfigurationFilePath: configPath})
		if err != nil {
			return err
		}
		if did {
			changed = true
			if prevErr == nil && prev.Name == name && prev.ConfigurationFilePath != configPath {
				e.Warnf("Instance %s now uses configuration %s (it used %s).", name, configPath, prev.ConfigurationFilePath)
			} else {
				e.Infof("Saving instance: %s", name)
			}
		}
	} else {
		e.Infof("No --instance or --config was given: this is a rootless instance in %s, not added to the machine-wide index. Run later commands from this directory or pass --config.", filepath.Dir(configPath))
	}

	homeChanged, err := config.Update(configPath, func(s *config.Settings) error {
		s.Set(config.KeyHome, storedHome)
		return nil
	})
	if err != nil {
		return err
	}
	if homeChanged {
		e.Infof("Setting home directory to: %s", storedHome)
		changed = true
	}
	if _, err := config.EnsurePrivateDirAll(abs(home)); err != nil {
		return config.Userf("Cannot create the home directory: %v.", errors.Unwrap(err))
	}
	if !changed {
		e.Infof("Instance %s already exists with configuration %s; nothing changed.", name, configPath)
	}
	return nil
}

// DeleteInstanceCmd is upstream's delete-instance: it removes the index entry
// only, never the configuration, home or service.
type DeleteInstanceCmd struct {
	InstanceFlags
}

func (c *DeleteInstanceCmd) Run(e *Env) error {
	if c.Instance == "" {
		sel, err := c.selection(e)
		if err != nil {
			return err
		}
		if sel.Rootless {
			return config.Userf("The instance at %s is rootless and not in the machine-wide index, so there is nothing to delete. Remove that file yourself if you no longer need it.", sel.ConfigPath)
		}
		c.Instance = sel.Name
	}
	idx := e.Index()
	list, err := idx.List()
	if err != nil {
		return err
	}
	found := false
	for _, in := range list {
		found = found || strings.EqualFold(in.Name, c.Instance)
	}
	if !found {
		// Deleting what is already gone succeeds, so that teardown scripts can
		// run twice.
		e.Infof("Instance %s is not registered on this machine; nothing to delete.", c.Instance)
		return nil
	}
	inst, err := idx.Delete(c.Instance)
	if err != nil {
		return err
	}
	e.Infof("Deleted instance: %s", inst.Name)
	e.Infof("Its configuration file %s and home directory were left in place; remove them yourself if you no longer need them.", inst.ConfigurationFilePath)
	return nil
}

// ListInstancesCmd is upstream's list-instances.
type ListInstancesCmd struct {
	formatFlag
}

// listedInstance is upstream's JSON shape.
type listedInstance struct {
	InstanceName          string
	ConfigurationFilePath string
}

func (c *ListInstancesCmd) Run(e *Env) error {
	asJSON, err := c.json()
	if err != nil {
		return err
	}
	list, err := e.Index().List()
	if err != nil {
		return err
	}
	if asJSON {
		out := make([]listedInstance, 0, len(list))
		for _, in := range list {
			out = append(out, listedInstance{in.Name, in.ConfigurationFilePath})
		}
		return writeJSON(e, out)
	}
	if len(list) == 0 {
		e.Stdout.Write([]byte("No instances installed" + newlineIfTTY(e)))
		return nil
	}
	var b strings.Builder
	for _, in := range list {
		b.WriteString("Instance '" + in.Name + "' uses configuration '" + in.ConfigurationFilePath + "'.\n")
	}
	_, err = e.Stdout.Write([]byte(b.String()))
	return err
}

// writeJSON prints v the way Newtonsoft's indented output looks: two-space
// indent, no HTML escaping, no trailing newline (upstream writes none).
func writeJSON(e *Env, v any) error {
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return err
	}
	out := strings.TrimSuffix(b.String(), "\n") + newlineIfTTY(e)
	_, err := e.Stdout.Write([]byte(out))
	return err
}

// newlineIfTTY ends machine-readable output with a newline only for a
// person at a terminal: upstream writes none, and scripts capture it as is.
func newlineIfTTY(e *Env) string {
	if e.StdoutTTY {
		return "\n"
	}
	return ""
}

func equalFold(a, b string) bool { return strings.EqualFold(a, b) }
