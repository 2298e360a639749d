//go:build linux

package winetest

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tentacle-go/tentacle/internal/nspawntest"
)

// Require returns the Toolchain cached under the repository's .cache/wine,
// building it first when needed. It skips the test, saying why, where Wine
// or mingw is missing or under -short.
func Require(t testing.TB) *Toolchain {
	t.Helper()
	if testing.Short() {
		t.Skip("SKIP: -short: the Wine tests start Windows programs under Wine")
	}
	tc, err := Prepare(filepath.Join(nspawntest.RepoRoot(t), ".cache", "wine"))
	if errors.Is(err, ErrMissingTool) {
		t.Skipf("SKIP: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	return tc
}

// NewPrefix makes a fresh prefix in a temp directory for this test; its
// wineserver (and every Windows process in it) is stopped when the test
// ends.
func NewPrefix(t testing.TB, tc *Toolchain) *Prefix {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*prefixInitTimeout+time.Minute)
	defer cancel()
	p, err := tc.NewPrefix(ctx, filepath.Join(t.TempDir(), "prefix"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Close(); err != nil {
			t.Errorf("stopping the Wine prefix: %v", err)
		}
	})
	return p
}

// BuildExe builds the main package pkg (a path relative to the module
// root, like "./cmd/tentacle") for Windows into a temp directory, with the
// overlay, and returns the .exe's host path. ldflags may be empty.
func (tc *Toolchain) BuildExe(t testing.TB, pkg string, ldflags ...string) string {
	t.Helper()
	exe := filepath.Join(t.TempDir(), strings.TrimSuffix(filepath.Base(pkg), ".exe")+".exe")
	args := []string{"-o", exe}
	if len(ldflags) > 0 {
		args = append(args, "-ldflags", strings.Join(ldflags, " "))
	}
	cmd := tc.GoCommand(context.Background(), nspawntest.RepoRoot(t), "build", append(args, pkg)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("GOOS=windows go build %s: %v\n%s", pkg, err, out)
	}
	if _, err := os.Stat(exe); err != nil {
		t.Fatal(err)
	}
	return exe
}
