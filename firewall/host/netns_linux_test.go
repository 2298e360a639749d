package host

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// A lab is two network namespaces the test creates and removes: the server
// side, where the firewall under test runs and a listener waits, and the
// client side, joined to it by a veth pair. The client connects over the
// veth rather than loopback because ufw and firewalld always let loopback
// in. Nothing here touches the host's own network namespace.
type lab struct {
	server, client string
	// serverV4/V6 are the server's addresses; clientV4/V6 the client's.
	serverV4, serverV6, clientV4, clientV6 string
}

const (
	labServerV4 = "10.77.0.1"
	labClientV4 = "10.77.0.2"
	labServerV6 = "fd77::1"
	labClientV6 = "fd77::2"
	// dialTimeout bounds a connection attempt that a drop policy swallows.
	dialTimeout = 400 * time.Millisecond
)

var labSeq atomic.Int32

// requireNetns skips, saying why, when network namespaces cannot be made.
func requireNetns(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("SKIP: network-namespace firewall tests need root (CI runs them as root)")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("SKIP: `ip` (iproute2) is not installed; `make deps` installs it")
	}
}

// requireTools skips, saying why, when a firewall tool is missing.
func requireTools(t *testing.T, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := resolveTool(tool); err != nil {
			t.Skipf("SKIP: %s is not installed; `make deps` installs it", tool)
		}
	}
}

func newLab(t *testing.T) *lab {
	t.Helper()
	n := labSeq.Add(1)
	l := &lab{
		server: fmt.Sprintf("tfw%d-%d-s", os.Getpid(), n), client: fmt.Sprintf("tfw%d-%d-c", os.Getpid(), n),
		serverV4: labServerV4, serverV6: labServerV6, clientV4: labClientV4, clientV6: labClientV6,
	}
	ipCmd(t, "netns", "add", l.server)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", l.server).Run() })
	ipCmd(t, "netns", "add", l.client)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", l.client).Run() })
	// Made from inside the server namespace, so the pair never exists in
	// the host's.
	ipCmd(t, "-n", l.server, "link", "add", "veth-s", "type", "veth", "peer", "name", "veth-c", "netns", l.client)
	for _, side := range []struct{ ns, dev, v4, v6 string }{
		{l.server, "veth-s", l.serverV4, l.serverV6},
		{l.client, "veth-c", l.clientV4, l.clientV6},
	} {
		ipCmd(t, "-n", side.ns, "link", "set", "lo", "up")
		ipCmd(t, "-n", side.ns, "addr", "add", side.v4+"/24", "dev", side.dev)
		ipCmd(t, "-n", side.ns, "addr", "add", side.v6+"/64", "dev", side.dev, "nodad")
		ipCmd(t, "-n", side.ns, "link", "set", side.dev, "up")
	}
	return l
}

func ipCmd(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// inNetns runs fn on an OS thread switched into the named namespace; a
// socket made there stays in that namespace wherever it is used later.
func inNetns(ns string, fn func() error) error {
	runtime.LockOSThread()
	orig, err := os.Open(fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid()))
	if err != nil {
		runtime.UnlockOSThread()
		return err
	}
	defer orig.Close()
	target, err := os.Open(filepath.Join("/run/netns", ns))
	if err != nil {
		runtime.UnlockOSThread()
		return err
	}
	defer target.Close()
	if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
		runtime.UnlockOSThread()
		return err
	}
	fnErr := fn()
	if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
		// The thread stays locked, so Go retires it rather than reuse it
		// in the wrong namespace.
		return errors.Join(fnErr, err)
	}
	runtime.UnlockOSThread()
	return fnErr
}

// listen accepts (and closes) connections on port, IPv4 and IPv6, in the
// server namespace.
func (l *lab) listen(t *testing.T, port int) {
	t.Helper()
	var ln net.Listener
	err := inNetns(l.server, func() (err error) {
		ln, err = net.Listen("tcp", fmt.Sprintf("[::]:%d", port))
		return err
	})
	if err != nil {
		t.Fatalf("listen on %d in %s: %v", port, l.server, err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
}

// reachable reports whether the client can connect to the server's port
// over the given address.
func (l *lab) reachable(addr string, port int) bool {
	var c net.Conn
	err := inNetns(l.client, func() (err error) {
		d := net.Dialer{Timeout: dialTimeout}
		c, err = d.Dial("tcp", net.JoinHostPort(addr, fmt.Sprint(port)))
		return err
	})
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// nsRunner runs the firewall tools inside the server namespace, with extra
// environment (a private D-Bus) and with directories bind-mounted over the
// tool's configuration (/etc/ufw) in a private mount namespace, so that the
// host's configuration is never read or written.
type nsRunner struct {
	ns     string
	env    []string
	mounts [][2]string // temp dir, mount point
}

func (r nsRunner) Installed(name string) bool {
	_, err := resolveTool(name)
	return err == nil
}

func (r nsRunner) Run(ctx context.Context, name string, args ...string) ([]byte, error) {
	path, err := resolveTool(name)
	if err != nil {
		return nil, fmt.Errorf("%s is not installed", name)
	}
	argv := []string{"netns", "exec", r.ns}
	if len(r.mounts) > 0 {
		var script []string
		for _, m := range r.mounts {
			script = append(script, fmt.Sprintf("mount --bind %s %s", shellQuote(m[0]), shellQuote(m[1])))
		}
		argv = append(argv, "unshare", "--mount", "--propagation", "private", "sh", "-ec", strings.Join(script, "\n")+"\nexec \"$@\"", "sh")
	}
	argv = append(argv, path)
	argv = append(argv, args...)
	cmd := exec.CommandContext(ctx, "ip", argv...)
	cmd.Env = append(os.Environ(), r.env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		ce := &CommandError{Command: Command{Name: name, Args: args}, Stdout: stdout.String(), Stderr: strings.TrimSpace(stderr.String()), Err: err}
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			ce.ExitCode = ee.ExitCode()
		}
		return stdout.Bytes(), ce
	}
	return stdout.Bytes(), nil
}

// must runs a setup command in the lab and fails the test if it fails.
func (r nsRunner) must(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := r.Run(context.Background(), name, args...)
	if err != nil {
		t.Fatalf("%v", err)
	}
	return string(out)
}

// copyDir copies a configuration directory (ufw's, firewalld's) to a temp
// directory that is bind-mounted over it in the lab.
func copyDir(t *testing.T, src string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), filepath.Base(src))
	if out, err := exec.Command("cp", "-a", src, dst).CombinedOutput(); err != nil {
		t.Fatalf("copy %s: %v\n%s", src, err, out)
	}
	return dst
}

// startDaemon starts a long-running process, its output going to logPath,
// and stops it at cleanup.
// startDaemon starts a daemon for the test's lifetime and returns a channel
// closed when it exits, so a wait for readiness can fail at once on a daemon
// that died instead of polling out its deadline.
func startDaemon(t *testing.T, env []string, logPath, name string, args ...string) <-chan struct{} {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), env...)
	log, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { log.Close() })
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		// The whole group: `ip netns exec … unshare … sh` ends in the daemon.
		unix.Kill(-cmd.Process.Pid, unix.SIGTERM)
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			unix.Kill(-cmd.Process.Pid, unix.SIGKILL)
			<-done
		}
	})
	return done
}
