package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// access is who may read or change a file or directory, as far as it
// matters for trusting what is in it: its owner, and whether anyone besides
// the owner (group, others; on Windows broad groups such as Users) may read
// or write it.
type access struct {
	owner        string // for messages: "uid 1000", `BUILTIN\Administrators`
	ownerTrusted bool   // root or the agent's own user (Windows: SYSTEM, Administrators, the agent's account)
	othersRead   bool
	othersWrite  bool   // for a directory: may add, remove or rename entries
	sticky       bool   // a directory whose entries only their owners may remove or rename (/tmp)
	describe     string // "mode 0644", "its ACL lets BUILTIN\Users write"
}

// PermissionFinding is one problem with the permissions of a file the
// agent's security rests on. Fatal findings (someone other than the owner can
// change it) stop the agent from starting; the others are warnings.
type PermissionFinding struct {
	Path    string
	Problem string // what is wrong and why it matters
	Fix     string // a command that fixes it
	Fatal   bool
}

func (f PermissionFinding) String() string {
	return fmt.Sprintf("%s %s. Fix it with: %s", f.Path, f.Problem, f.Fix)
}

// CheckPermissions reports what is wrong with the permissions of an
// instance's files: its configuration file (which holds the certificate's
// private key) and its folder must be neither readable (warning) nor
// writable (fatal) by anyone but their owner, who must be root or the
// agent's user; the folders above them must not let others rename them
// away; under the machine configuration root (when given), the generated
// machine key must not be readable by others and the instance index, which
// says which configuration file an instance uses, not writable by them. The
// agent runs it at start; `doctor` reports the same findings. A file that
// does not exist is not a finding.
func CheckPermissions(configPath, machineConfigRoot string) []PermissionFinding {
	var out []PermissionFinding
	if configPath != "" {
		if real, err := filepath.Abs(configPath); err == nil {
			if r, err := filepath.EvalSymlinks(real); err == nil {
				real = r
			}
			if _, err := os.Stat(real); err == nil {
				out = append(out, checkSecretFile(real, "holds the Tentacle's private key")...)
				out = append(out, checkPrivateDir(filepath.Dir(real))...)
				out = append(out, checkAncestors(filepath.Dir(filepath.Dir(real)))...)
			}
		}
	}
	if machineConfigRoot != "" {
		key := filepath.Join(machineConfigRoot, "machinekey")
		if _, err := os.Stat(key); err == nil {
			out = append(out, checkSecretFile(key, "is the key that decrypts the certificate")...)
		}
		index := NewIndex(machineConfigRoot).Dir
		if ents, err := os.ReadDir(index); err == nil {
			out = append(out, checkNotWritable(index, true)...)
			out = append(out, checkAncestors(filepath.Dir(index))...)
			for _, e := range ents {
				if !e.IsDir() {
					out = append(out, checkNotWritable(filepath.Join(index, e.Name()), false)...)
				}
			}
		}
	}
	// The index and the configuration often share folders above them.
	seen := map[string]bool{}
	unique := out[:0]
	for _, f := range out {
		if k := f.Path + "\x00" + f.Problem; !seen[k] {
			seen[k] = true
			unique = append(unique, f)
		}
	}
	return unique
}

// RefusePermissions turns the fatal findings into the error that stops the
// agent, or nil when there are none.
func RefusePermissions(findings []PermissionFinding) error {
	var msgs []string
	for _, f := range findings {
		if f.Fatal {
			msgs = append(msgs, f.String())
		}
	}
	if len(msgs) == 0 {
		return nil
	}
	return Userf("Refusing to start: anyone who can change these files can make this Tentacle trust their own server and run scripts as its user. %s.", strings.Join(msgs, "; "))
}

func checkSecretFile(path, why string) []PermissionFinding {
	a, err := pathAccess(path)
	if err != nil {
		return []PermissionFinding{{Path: path, Problem: fmt.Sprintf("cannot be checked (%v)", unwrapPath(err)), Fix: fixReadable(path, false)}}
	}
	var out []PermissionFinding
	if !a.ownerTrusted {
		out = append(out, PermissionFinding{Path: path, Problem: fmt.Sprintf("is owned by %s, neither root nor the agent's user, and %s", a.owner, why), Fix: fixOwner(path), Fatal: true})
	}
	switch {
	case a.othersWrite:
		out = append(out, PermissionFinding{Path: path, Problem: fmt.Sprintf("(%s) can be changed by others, and %s", a.describe, why), Fix: fixReadable(path, false), Fatal: true})
	case a.othersRead:
		out = append(out, PermissionFinding{Path: path, Problem: fmt.Sprintf("(%s) can be read by others, and %s", a.describe, why), Fix: fixReadable(path, false)})
	}
	return out
}

// checkPrivateDir: the configuration's own folder. Others must not be able
// to replace the file (write) and should not list it (read).
func checkPrivateDir(dir string) []PermissionFinding {
	a, err := pathAccess(dir)
	if err != nil {
		return nil
	}
	var out []PermissionFinding
	if !a.ownerTrusted {
		out = append(out, PermissionFinding{Path: dir, Problem: fmt.Sprintf("is owned by %s, neither root nor the agent's user, and holds the configuration file", a.owner), Fix: fixOwner(dir), Fatal: true})
	}
	switch {
	case a.othersWrite:
		out = append(out, PermissionFinding{Path: dir, Problem: fmt.Sprintf("(%s) lets others replace the configuration file in it", a.describe), Fix: fixReadable(dir, true), Fatal: true})
	case a.othersRead:
		out = append(out, PermissionFinding{Path: dir, Problem: fmt.Sprintf("(%s) can be listed by others and holds the configuration file", a.describe), Fix: fixReadable(dir, true)})
	}
	return out
}

// checkNotWritable: files and folders that are not secret but say what the
// agent trusts (the instance index).
func checkNotWritable(path string, dir bool) []PermissionFinding {
	a, err := pathAccess(path)
	if err != nil {
		return nil
	}
	if a.othersWrite && !(dir && a.sticky) {
		return []PermissionFinding{{Path: path, Problem: fmt.Sprintf("(%s) can be changed by others, and says which configuration file an instance uses", a.describe), Fix: fixNotWritable(path, dir), Fatal: true}}
	}
	return nil
}

// checkAncestors walks from dir up to the root: a folder above that others
// may write (without the sticky bit) lets them rename the whole tree away
// and put their own in its place.
func checkAncestors(dir string) []PermissionFinding {
	var out []PermissionFinding
	for d := dir; ; d = filepath.Dir(d) {
		if a, err := pathAccess(d); err == nil && a.othersWrite && !a.sticky {
			out = append(out, PermissionFinding{Path: d, Problem: fmt.Sprintf("(%s) lets others rename the folders below it, which hold this Tentacle's configuration", a.describe), Fix: fixNotWritable(d, true), Fatal: true})
		}
		if filepath.Dir(d) == d {
			return out
		}
	}
}

func unwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
