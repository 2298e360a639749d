// Package podmantest runs podman for tests, with this repository's
// containers.conf (no registry, no network helper the machine lacks) and,
// when asked, an image store of the test's own.
package podmantest

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Podman runs podman commands.
type Podman struct {
	// Env is podman's environment: the caller's, with CONTAINERS_CONF.
	Env []string
	// Store, when set, holds the image store (--root) and the runtime
	// state (--runroot) instead of the machine's.
	Store string
	// Timeout bounds one command.
	Timeout time.Duration
}

// New returns podman configured by the containers.conf of the repository
// at root, on the machine's image store.
func New(root string) *Podman {
	return &Podman{
		Env:     append(os.Environ(), "CONTAINERS_CONF="+filepath.Join(root, "packaging", "container", "containers.conf")),
		Timeout: 3 * time.Minute,
	}
}

// NewStore returns podman on an image store of its own under a new
// folder, as on a host that never saw the images: a load has to bring
// every layer. The store is reset and removed when the test ends.
func NewStore(t testing.TB, root string) *Podman {
	t.Helper()
	dir, err := os.MkdirTemp("", "tentacle-podman-store-")
	if err != nil {
		t.Fatal(err)
	}
	p := New(root)
	p.Store = dir
	p.Timeout = 5 * time.Minute
	t.Cleanup(func() {
		// Unmounts and removes what the store holds, then the folder.
		p.Run("system", "reset", "--force")
		os.RemoveAll(dir)
	})
	return p
}

// Run runs podman with args and returns its output, trimmed.
func (p *Podman) Run(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), p.Timeout)
	defer cancel()
	if p.Store != "" {
		args = append([]string{"--root", filepath.Join(p.Store, "root"), "--runroot", filepath.Join(p.Store, "run")}, args...)
	}
	cmd := exec.CommandContext(ctx, "podman", args...)
	cmd.Env = p.Env
	out, err := cmd.CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

// Must is Run that fails the test on an error.
func (p *Podman) Must(t testing.TB, args ...string) string {
	t.Helper()
	out, err := p.Run(args...)
	if err != nil {
		t.Fatalf("podman %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}
