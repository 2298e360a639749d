//go:build linux

package upgrade

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"aead.dev/minisign"

	"github.com/tentacle-go/tentacle/agent/config"
	"github.com/tentacle-go/tentacle/internal/releasebuild"
	"github.com/tentacle-go/tentacle/provision/release"
)

// These tests run the real tentacle agent as child processes: the upgrade
// replaces the binary they were started from, restarts them through
// processServices (a minimal supervisor standing in for systemd, which the
// nspawn tests in packaging/ use for real) and reads their health as it
// would under systemd: heartbeat, listening port.

var (
	buildOnce sync.Once
	buildDir  string
	buildErr  error
)

// binaries builds tentacle stamped 1.0.0 and 2.0.0, once per run.
func binaries(t *testing.T) (v1, v2 string) {
	t.Helper()
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "tentacle-upgrade-test-")
		if buildErr != nil {
			return
		}
		for _, v := range []string{"1.0.0", "2.0.0"} {
			cmd := releasebuild.Command(filepath.Join("..", ".."), filepath.Join(buildDir, "tentacle-"+v), releasebuild.Options{Version: v})
			if out, err := cmd.CombinedOutput(); err != nil {
				buildErr = fmt.Errorf("go build: %v\n%s", err, out)
				return
			}
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return filepath.Join(buildDir, "tentacle-1.0.0"), filepath.Join(buildDir, "tentacle-2.0.0")
}

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// tarGz is a goreleaser-shaped archive: tentacle/Tentacle.
func tarGz(t *testing.T, program []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	tw.WriteHeader(&tar.Header{Name: "tentacle/", Typeflag: tar.TypeDir, Mode: 0o755})
	tw.WriteHeader(&tar.Header{Name: "tentacle/Tentacle", Typeflag: tar.TypeReg, Mode: 0o755, Size: int64(len(program))})
	tw.Write(program)
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	gz.Close()
	return buf.Bytes()
}

// signedFeed writes a feed folder holding, per version, the archive of
// program, and returns the feed and its public key.
func signedFeed(t *testing.T, programs map[string][]byte) (release.Feed, string) {
	t.Helper()
	pub, priv, err := minisign.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pubText, _ := pub.MarshalText()
	dir := t.TempDir()
	idx := release.Index{Schema: release.Schema}
	for v, program := range programs {
		name, err := release.ArtifactName(release.KindArchive, v, release.HostPlatform())
		if err != nil {
			t.Fatal(err)
		}
		data := tarGz(t, program)
		sum := sha256.Sum256(data)
		sums := []byte(hex.EncodeToString(sum[:]) + "  " + name + "\n")
		if err := os.MkdirAll(filepath.Join(dir, v), 0o755); err != nil {
			t.Fatal(err)
		}
		for n, b := range map[string][]byte{name: data, release.ChecksumsFile: sums, release.SignatureFile: minisign.Sign(priv, sums)} {
			if err := os.WriteFile(filepath.Join(dir, v, n), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		idx.Versions = append(idx.Versions, release.Version{Version: v, Date: "2026-12-03T09:00:00Z", Files: []string{release.ChecksumsFile, release.SignatureFile, name}})
	}
	data, _ := json.Marshal(idx)
	if err := os.WriteFile(filepath.Join(dir, release.IndexFile), data, 0o644); err != nil {
		t.Fatal(err)
	}
	feed, err := release.Open(dir, release.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return feed, string(pubText)
}

// processServices supervises each instance's agent as a child process
// started from target, as a service manager would.
type processServices struct {
	t      *testing.T
	target string
	env    []string
	mu     sync.Mutex
	procs  map[string]*agentProcess
}

type agentProcess struct {
	cmd  *exec.Cmd
	done chan struct{}
}

func (p *processServices) Status(ctx context.Context, in Instance) (ServiceStatus, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	ap := p.procs[in.Name]
	if ap == nil {
		return ServiceStatus{Installed: true}, nil
	}
	select {
	case <-ap.done:
		return ServiceStatus{Installed: true, Failed: true, Executable: p.target}, nil
	default:
	}
	return ServiceStatus{Installed: true, Running: true, MainPID: ap.cmd.Process.Pid, Executable: p.target}, nil
}

// Restart stops the agent and starts target again; it does not wait, so
// the upgrade's own health check decides.
func (p *processServices) Restart(ctx context.Context, in Instance) error {
	p.mu.Lock()
	old := p.procs[in.Name]
	p.mu.Unlock()
	if old != nil {
		old.cmd.Process.Signal(syscall.SIGTERM)
		<-old.done
	}
	cmd := exec.Command(p.target, "agent", "--config", in.ConfigPath)
	cmd.Env = p.env
	cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
	if err := cmd.Start(); err != nil {
		return err
	}
	ap := &agentProcess{cmd: cmd, done: make(chan struct{})}
	go func() { cmd.Wait(); close(ap.done) }()
	p.mu.Lock()
	p.procs[in.Name] = ap
	p.mu.Unlock()
	return nil
}

func (p *processServices) stopAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, ap := range p.procs {
		ap.cmd.Process.Signal(syscall.SIGTERM)
		<-ap.done
	}
}

// instanceOn creates a listening instance whose agent runs from target.
func instanceOn(t *testing.T, target string) (Instance, *processServices) {
	t.Helper()
	dir := t.TempDir()
	env := append(os.Environ(), "TentacleMachineConfigurationHomeDirectory="+filepath.Join(dir, "etc"), "NO_COLOR=1")
	cfg := filepath.Join(dir, "home", "tentacle.config")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	for _, args := range [][]string{
		{"create-instance", "--instance", "Up", "--config", cfg},
		{"new-certificate", "--instance", "Up"},
		{"configure", "--instance", "Up", "--port", strconv.Itoa(port), "--listenIpAddress", "127.0.0.1"},
	} {
		cmd := exec.Command(target, args...)
		cmd.Env = env
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("tentacle %v: %v\n%s", args, err, out)
		}
	}
	s, err := config.LoadSettings(cfg)
	if err != nil {
		t.Fatal(err)
	}
	in, err := InstanceFromSettings("Up", s)
	if err != nil {
		t.Fatal(err)
	}
	if in.Listen != net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) || in.Home != filepath.Dir(cfg) {
		t.Fatalf("instance read as %+v", in)
	}
	svc := &processServices{t: t, target: target, env: env, procs: map[string]*agentProcess{}}
	t.Cleanup(svc.stopAll)
	if err := svc.Restart(context.Background(), in); err != nil {
		t.Fatal(err)
	}
	if err := waitHealthy(context.Background(), svc, in, time.Time{}, 20*time.Second); err != nil {
		t.Fatalf("the first agent: %v", err)
	}
	return in, svc
}

func versionOf(t *testing.T, binary string) string {
	t.Helper()
	out, err := exec.Command(binary, "version").Output()
	if err != nil {
		t.Fatalf("%s version: %v", binary, err)
	}
	return strings.TrimSpace(string(out))
}

// runningExecutable is the file the process runs, as the kernel sees it.
func runningExecutable(t *testing.T, pid int) string {
	t.Helper()
	exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
	if err != nil {
		t.Fatal(err)
	}
	return exe
}

func readProgram(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestUpgradeMovesTheAgentOntoTheNewVersion(t *testing.T) {
	v1, v2 := binaries(t)
	feed, pub := signedFeed(t, map[string][]byte{"1.0.0": readProgram(t, v1), "2.0.0": readProgram(t, v2)})
	target := filepath.Join(t.TempDir(), "tentacle")
	if err := os.WriteFile(target, readProgram(t, v1), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", "/nonexistent") // no dpkg or rpm: a binary install
	in, svc := instanceOn(t, target)
	before, _ := svc.Status(context.Background(), in)
	o := Options{
		Fetch:     release.FetchRequest{Feed: feed, Constraint: "latest", Trust: release.Trust{PublicKey: pub}, Target: target, Dir: t.TempDir()},
		Instances: []Instance{in}, Services: svc, HealthWait: 20 * time.Second,
	}

	// A dry run changes nothing.
	o.DryRun = true
	dry, err := Run(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := svc.Status(context.Background(), in); got.MainPID != before.MainPID || versionOf(t, target) != "1.0.0" {
		t.Fatal("the dry run restarted the agent or replaced the binary")
	}
	if len(dry.Instances) != 1 || dry.Instances[0].Outcome != OutcomeWouldRun || len(dry.Steps) < 2 {
		t.Errorf("dry run: %+v", dry)
	}

	o.DryRun = false
	res, err := Run(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if res.From != "1.0.0" || res.To != "2.0.0" || res.RolledBack || len(res.Instances) != 1 || res.Instances[0].Outcome != OutcomeUpgraded {
		t.Errorf("result %+v", res)
	}
	after, _ := svc.Status(context.Background(), in)
	if !after.Running || after.MainPID == before.MainPID {
		t.Fatalf("the agent was not restarted: %+v -> %+v", before, after)
	}
	if exe := runningExecutable(t, after.MainPID); exe != target || versionOf(t, target) != "2.0.0" {
		t.Errorf("the agent runs %s, which says %s", exe, versionOf(t, target))
	}
	if h, _ := CheckHealth(context.Background(), svc, in, time.Time{}); !h.OK {
		t.Errorf("not healthy after the upgrade: %s", h.Reason)
	}

	// Again: up to date, nothing restarted.
	again, err := Run(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if now, _ := svc.Status(context.Background(), in); !again.UpToDate || now.MainPID != after.MainPID {
		t.Errorf("a second upgrade: %+v (pid %d -> %d)", again, after.MainPID, now.MainPID)
	}
}

// A new version whose agent exits at start (it answers `version`, so the
// install takes it) is rolled back: the previous binary is back, the agent
// runs it and is healthy, and the error says what happened.
func TestUpgradeRollsBackAnAgentThatExitsAtStart(t *testing.T) {
	v1, _ := binaries(t)
	exitsAtStart := []byte("#!/bin/sh\nif [ \"$1\" = version ]; then echo 3.0.0; exit 0; fi\necho 'cannot start' >&2\nexit 1\n")
	feed, pub := signedFeed(t, map[string][]byte{"1.0.0": readProgram(t, v1), "3.0.0": exitsAtStart})
	target := filepath.Join(t.TempDir(), "tentacle")
	if err := os.WriteFile(target, readProgram(t, v1), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", "/nonexistent") // no dpkg or rpm; the script names /bin/sh itself
	in, svc := instanceOn(t, target)
	var log bytes.Buffer
	res, err := Run(context.Background(), Options{
		Fetch:     release.FetchRequest{Feed: feed, Constraint: "3.0.0", Trust: release.Trust{PublicKey: pub}, Target: target, Dir: t.TempDir()},
		Instances: []Instance{in}, Services: svc, HealthWait: 3 * time.Second,
		Logf: func(f string, a ...any) { fmt.Fprintf(&log, f+"\n", a...) },
	})
	if !errors.Is(err, ErrRolledBack) {
		t.Fatalf("want a rollback, got %v\n%s", err, log.String())
	}
	for _, want := range []string{"3.0.0 did not come healthy on instance Up", "rolled back to 1.0.0"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	if !res.RolledBack || len(res.Instances) != 1 || res.Instances[0].Outcome != OutcomeUnhealthy {
		t.Errorf("result %+v", res)
	}
	if v := versionOf(t, target); v != "1.0.0" {
		t.Errorf("after the rollback the target says %s", v)
	}
	st, _ := svc.Status(context.Background(), in)
	if !st.Running {
		t.Fatal("no agent runs after the rollback")
	}
	if h, _ := CheckHealth(context.Background(), svc, in, time.Time{}); !h.OK {
		t.Errorf("not healthy after the rollback: %s", h.Reason)
	}
	if _, err := os.Stat(release.PreviousPath(target)); err == nil {
		t.Error("the previous binary is still there after the rollback used it")
	}
	t.Logf("upgrade log:\n%s", log.String())
}

func TestInstanceAddresses(t *testing.T) {
	for ip, want := range map[string]string{"": "127.0.0.1:10933", "0.0.0.0": "127.0.0.1:10933", "::": "[::1]:10933", "10.0.0.5": "10.0.0.5:10933", "[::1]": "[::1]:10933"} {
		if got := dialAddress(ip, 10933); got != want {
			t.Errorf("dialAddress(%q) = %s, want %s", ip, got, want)
		}
	}
	for addr, want := range map[string]string{"https://octo.example:10943/": "octo.example:10943", "wss://octo.example/": "octo.example:443", "not a url": ""} {
		if got := hostPort(addr); got != want {
			t.Errorf("hostPort(%q) = %q, want %q", addr, got, want)
		}
	}
	if got := procAddr("0100007F:2A3B"); got != "127.0.0.1:10811" {
		t.Errorf("procAddr = %s", got)
	}
	if got := procAddr("0000000000000000FFFF00000100007F:2A3B"); got != "127.0.0.1:10811" {
		t.Errorf("procAddr of a v4-mapped address = %s", got)
	}
}

// The polling check finds this process's own established connection to a
// loopback server, and not one to another port.
func TestPollingConnectionIsReadFromProc(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	server := ln.Addr().String()
	if _, err := pollingConnection(os.Getpid(), []string{server}); err == nil {
		t.Fatal("a connection was found before one was made")
	}
	c, err := net.Dial("tcp", server)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	got, err := pollingConnection(os.Getpid(), []string{"127.0.0.1:1", server})
	if err != nil || got != server {
		t.Errorf("pollingConnection = %q, %v; want %s", got, err, server)
	}
}
