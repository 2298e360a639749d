//go:build linux

// Package nspawntest boots a REAL systemd (PID 1 of a Debian container in
// systemd-nspawn; shared recipe: systemd-in-a-container.md) for tests that
// install services and packages for real: `tentacle service`, install.sh,
// the deb, the Ansible example. The container shares the host's network
// namespace, so a test reaches what runs inside on loopback and the
// container reaches the test's loopback servers; everything else (files,
// units, processes) is the container's and is thrown away
// (--volatile=overlay keeps the cached root filesystem pristine).
package nspawntest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Bind mounts a host folder into the container.
type Bind struct {
	Host, Container string
	ReadOnly        bool
}

// Machine is a booted container.
type Machine struct {
	t      testing.TB
	nspawn *exec.Cmd
	// PID1 is the container's systemd as the host sees it.
	PID1 int
	logf string
}

// Rootfs returns the root filesystem to boot: TENTACLE_NSPAWN_ROOTFS, else
// the one `make nspawn-rootfs` keeps under the repository's .cache, built or
// brought up to date first (once per change of its package list, about a
// minute). It skips the test, saying why, where a container cannot be had.
func Rootfs(t testing.TB) string {
	t.Helper()
	if testing.Short() {
		t.Skip("SKIP: -short: the systemd-nspawn test boots a container")
	}
	if os.Geteuid() != 0 {
		t.Skip("SKIP: systemd-nspawn needs root; run the tests as root (CI does)")
	}
	for _, tool := range []string{"systemd-nspawn", "nsenter", "unshare", "setsid", "flock"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("SKIP: %s is not installed (apt-get install systemd-container util-linux; `make deps` does it)", tool)
		}
	}
	if rootfs := os.Getenv("TENTACLE_NSPAWN_ROOTFS"); rootfs != "" {
		if _, err := os.Stat(filepath.Join(rootfs, ".tentacle-rootfs")); err != nil {
			t.Skipf("SKIP: TENTACLE_NSPAWN_ROOTFS=%s is not a root filesystem built by `make nspawn-rootfs`", rootfs)
		}
		return rootfs
	}
	root := RepoRoot(t)
	start := time.Now()
	out, err := exec.Command("make", "-C", root, "--no-print-directory", "-s", "nspawn-rootfs").CombinedOutput()
	if err != nil {
		t.Skipf("SKIP: cannot build the container root filesystem (`make nspawn-rootfs`): %v\n%s", err, out)
	}
	if len(out) > 0 {
		t.Logf("make nspawn-rootfs (%s):\n%s", time.Since(start).Round(time.Second), out)
	}
	return filepath.Join(root, ".cache", "nspawn", "bookworm")
}

// RepoRoot is the directory holding go.mod, found upward from the test's
// working directory.
func RepoRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test's directory")
		}
		dir = parent
	}
}

// Boot boots systemd in rootfs with the binds mounted, and waits
// until it is running. The container is halted when the test ends.
func Boot(t testing.TB, rootfs string, binds ...Bind) *Machine {
	t.Helper()
	if err := os.MkdirAll("/run/systemd/nspawn", 0o755); err != nil {
		t.Fatal(err)
	}
	m := &Machine{t: t, logf: filepath.Join(t.TempDir(), "boot.log")}
	logFile, err := os.Create(m.logf)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	name := fmt.Sprintf("tentacle-e2e-%d-%d", os.Getpid(), time.Now().UnixNano()%100000)
	// A private mount namespace with its own /run/systemd/nspawn leaves
	// nothing mounted on the host; --register=no --keep-unit because there
	// is no host systemd to register with.
	script := "mount -t tmpfs tmpfs /run/systemd/nspawn && exec systemd-nspawn -D " + ShellQuote(rootfs) +
		" -b --register=no --keep-unit --volatile=overlay --console=pipe -M " + name
	for _, b := range binds {
		opt := " --bind="
		if b.ReadOnly {
			opt = " --bind-ro="
		}
		script += opt + ShellQuote(b.Host+":"+b.Container)
	}
	m.nspawn = exec.Command("setsid", "unshare", "-m", "--propagation", "private", "sh", "-c", script)
	m.nspawn.Stdin, m.nspawn.Stdout, m.nspawn.Stderr = nil, logFile, logFile
	if err := m.nspawn.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.shutdown)
	deadline := time.Now().Add(60 * time.Second)
	state := ""
	for time.Now().Before(deadline) {
		if m.PID1 == 0 {
			m.PID1 = containerPID1(m.nspawn.Process.Pid)
		}
		if m.PID1 != 0 {
			out, _ := m.Run("systemctl", "is-system-running")
			state = strings.TrimSpace(out)
			if state == "running" || state == "degraded" {
				return m
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	log, _ := os.ReadFile(m.logf)
	t.Fatalf("systemd in the container did not come up (state %q):\n%s", state, log)
	return nil
}

// containerPID1 is the container's systemd as the host sees it: the
// process systemd-nspawn forks, found under the setsid/unshare/sh chain.
func containerPID1(root int) int {
	// setsid and sh exec, so root is nspawn itself; its child is PID 1.
	children, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", root, root))
	for _, f := range strings.Fields(string(children)) {
		pid, _ := strconv.Atoi(f)
		comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
		if strings.TrimSpace(string(comm)) == "systemd" {
			return pid
		}
	}
	return 0
}

func (m *Machine) shutdown() {
	if m.nspawn.Process == nil {
		return
	}
	_ = m.nspawn.Process.Signal(syscall.SIGTERM) // nspawn asks the container to halt
	done := make(chan struct{})
	go func() { m.nspawn.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		_ = m.nspawn.Process.Kill()
		<-done
	}
}

// Run runs a command inside the container with a clean environment and
// returns its combined output.
func (m *Machine) Run(args ...string) (string, error) {
	return m.RunEnv(nil, args...)
}

// RunEnv is Run with extra environment variables (NAME=value).
func (m *Machine) RunEnv(env []string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	full := append([]string{"-t", strconv.Itoa(m.PID1), "-a", "env", "-i",
		"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root", "NO_COLOR=1", "LANG=C.UTF-8"}, env...)
	full = append(full, args...)
	out, err := exec.CommandContext(ctx, "nsenter", full...).CombinedOutput()
	return string(out), err
}

// Must runs a command inside the container that has to succeed.
func (m *Machine) Must(args ...string) string {
	m.t.Helper()
	out, err := m.Run(args...)
	if err != nil {
		m.t.Fatalf("in the container: %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// ShellQuote quotes s for sh.
func ShellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }
