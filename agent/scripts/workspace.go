package scripts

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// tombstonePrefix names a workspace being deleted. It starts with '.', which no ticket
// does, so a half-deleted workspace is never mistaken for a script.
const tombstonePrefix = ".deleting-"

// prepareWorkspace creates dir and writes the bootstrap script and the script files into
// it, synced when d says so (beforeLaunch): a script resumed after a reboot must find them
// whole.
func prepareWorkspace(dir string, flavor shellFlavor, req *StartRequest, d durability) error {
	if err := os.Mkdir(dir, 0o700); err != nil {
		return fmt.Errorf("cannot create script workspace: %w", err)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return fmt.Errorf("cannot open script workspace: %w", err)
	}
	defer root.Close()
	name, data := flavor.bootstrapScript(req)
	if err := writeWorkspaceFile(root, name, bytes.NewReader(data), d); err != nil {
		return err
	}
	for _, f := range req.Files {
		rel, err := scriptFilePath(f.Name)
		if err != nil {
			return err
		}
		if parent := filepath.Dir(rel); parent != "." {
			if err := root.MkdirAll(parent, 0o700); err != nil {
				return fmt.Errorf("cannot create directory for script file %q: %w", f.Name, err)
			}
		}
		contents := f.Contents
		if contents == nil {
			contents = strings.NewReader("")
		}
		if err := writeWorkspaceFile(root, rel, contents, d); err != nil {
			return err
		}
	}
	return nil
}

// writeWorkspaceFile writes through root, so neither ".." nor a symbolic link can place
// the file outside the workspace.
func writeWorkspaceFile(root *os.Root, name string, r io.Reader, d durability) error {
	f, err := root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("cannot write script file %q: %w", name, err)
	}
	_, err = io.Copy(f, r)
	if err == nil && d == survivesPowerLoss {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("cannot write script file %q: %w", name, err)
	}
	return nil
}

// removeTree deletes dir and everything in it, first making directories writable if a
// script left some read-only (RemoveAll cannot empty those when not running as root).
func removeTree(dir string) error {
	err := os.RemoveAll(dir)
	if err == nil {
		return nil
	}
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			_ = os.Chmod(p, 0o700)
		}
		return nil
	})
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("cannot delete script workspace: %w", err)
	}
	return nil
}

func randomToken() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand panics instead)
	return hex.EncodeToString(b[:])
}
