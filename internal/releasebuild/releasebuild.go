// Package releasebuild builds tentacle for tests the way .goreleaser.yaml
// builds a release: static (CGO_ENABLED=0), -trimpath, stripped, stamped
// with a version. One set of compiler flags for every test that needs the
// real binary, and the same as `make package` and `make vet` use, so that a
// CI run compiles the program once per platform and every later build only
// links (docs/benchmarks.md, "What make test costs").
package releasebuild

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
)

// Options are what may differ between the binaries tests build; nothing
// here changes how packages are compiled, only the target and the link.
type Options struct {
	GOOS, GOARCH string // empty: the host's
	Version      string // main.version; empty leaves the development default
	// Supervisor: Build builds tentacle-supervisor too (SupervisorCommand).
	Supervisor bool
}

// Command is `go build` of ./cmd/tentacle into out, run from repoRoot (the
// folder holding go.mod). The environment is the caller's with cgo off
// whatever it said (a race test run has it on), and the target's GOOS and
// GOARCH when given.
func Command(repoRoot, out string, o Options) *exec.Cmd {
	return goBuild(repoRoot, out, "./cmd/tentacle", ldflags(o), o)
}

// SupervisorCommand is `go build` of ./cmd/tentacle-supervisor, stamped as Command
// stamps tentacle, into the folder of out: where an agent started from out finds it
// (scripts.FindSupervisor), as it does in the archives and the MSI.
func SupervisorCommand(repoRoot, out string, o Options) *exec.Cmd {
	name := "tentacle-supervisor"
	if o.GOOS == "windows" || o.GOOS == "" && runtime.GOOS == "windows" {
		name += ".exe"
	}
	return goBuild(repoRoot, filepath.Join(filepath.Dir(out), name), "./cmd/tentacle-supervisor", ldflags(o), o)
}

func ldflags(o Options) string {
	ldflags := "-s -w"
	if o.Version != "" {
		ldflags += " -X main.version=" + o.Version
	}
	return ldflags
}

func goBuild(repoRoot, out, pkg, ldflags string, o Options) *exec.Cmd {
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags", ldflags, "-o", out, pkg)
	cmd.Dir = repoRoot
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if o.GOOS != "" {
		cmd.Env = append(cmd.Env, "GOOS="+o.GOOS)
	}
	if o.GOARCH != "" {
		cmd.Env = append(cmd.Env, "GOARCH="+o.GOARCH)
	}
	return cmd
}

// Build runs Command (and SupervisorCommand if o.Supervisor) and fails the test when
// a build fails.
func Build(t testing.TB, repoRoot, out string, o Options) {
	t.Helper()
	if b, err := Command(repoRoot, out, o).CombinedOutput(); err != nil {
		t.Fatalf("building tentacle %s: %v\n%s", o.Version, err, b)
	}
	if !o.Supervisor {
		return
	}
	if b, err := SupervisorCommand(repoRoot, out, o).CombinedOutput(); err != nil {
		t.Fatalf("building tentacle-supervisor %s: %v\n%s", o.Version, err, b)
	}
}
