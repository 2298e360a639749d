//go:build linux

package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tentacle-go/tentacle/agent/config"
	"github.com/tentacle-go/tentacle/internal/winetest"
)

// The Windows build, run for real under Wine (internal/winetest), driven
// from this Linux build over loopback: the agent in a console and under
// Wine's Service Control Manager. They run in `make test-windows`, which
// sets TENTACLE_WINE_E2E=1 once Wine is installed; elsewhere they skip,
// saying so.

var thumbprintPattern = regexp.MustCompile(`\b[0-9A-F]{40}\b`)

// wineDeadline bounds one Windows command under Wine (a cold prefix makes
// the first one slow).
const wineDeadline = 2 * time.Minute

// wineTentacle is tentacle.exe in a fresh prefix, with an operator identity
// (playing the Octopus Server) for the Linux build's `remote`.
type wineTentacle struct {
	t      *testing.T
	tc     *winetest.Toolchain
	prefix *winetest.Prefix
	exe    string
	dir    string
	// env is the Linux build's environment: its operator identity.
	env      []string
	operator *config.Certificate
	thumb    string // the Windows Tentacle's
}

// newWineTentacle builds tentacle.exe (with ldflags, if any) and makes its
// prefix.
func newWineTentacle(t *testing.T, ldflags ...string) *wineTentacle {
	t.Helper()
	if os.Getenv("TENTACLE_WINE_E2E") != "1" {
		t.Skip("SKIP: the Wine end-to-end tests run in `make test-windows` (TENTACLE_WINE_E2E=1)")
	}
	tc := winetest.Require(t)
	w := &wineTentacle{t: t, tc: tc, exe: tc.BuildExe(t, "./cmd/tentacle", ldflags...), dir: t.TempDir()}
	w.prefix = winetest.NewPrefix(t, tc)
	t.Cleanup(func() {
		if t.Failed() {
			w.dumpLogs()
		}
	})
	// No PowerShell exists here and Wine's powershell.exe is a stub: the
	// stand-in agent/scripts' Windows tests use runs the bootstrap's body
	// with cmd.exe, in the place the agent looks for PowerShell.
	standin := tc.BuildExe(t, "./agent/scripts/testdata/powershell")
	data, err := os.ReadFile(standin)
	if err != nil {
		t.Fatal(err)
	}
	ps := filepath.Join(w.prefix.DriveC(), "windows", "system32", "WindowsPowerShell", "v1.0", "powershell.exe")
	if err := os.MkdirAll(filepath.Dir(ps), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(ps, data, 0o755); err != nil {
		t.Fatal(err)
	}
	op, err := config.GenerateCertificate()
	if err != nil {
		t.Fatal(err)
	}
	w.operator = op
	pfx, err := op.PKCS12("")
	if err != nil {
		t.Fatal(err)
	}
	opPFX := filepath.Join(w.dir, "operator.pfx")
	if err := os.WriteFile(opPFX, pfx, 0o600); err != nil {
		t.Fatal(err)
	}
	w.env = append(os.Environ(), "TENTACLE_OPERATOR_CERT="+opPFX, "NO_COLOR=1")
	return w
}

// run runs tentacle.exe under Wine and returns its output; it fails the
// test on a non-zero exit.
func (w *wineTentacle) run(args ...string) string {
	w.t.Helper()
	out, code := w.try(args...)
	if code != 0 {
		w.t.Fatalf("tentacle.exe %s: exit %d\n%s", strings.Join(args, " "), code, out)
	}
	return out
}

func (w *wineTentacle) try(args ...string) (string, int) {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wineDeadline)
	defer cancel()
	return w.output(w.prefix.Command(ctx, w.exe, args...))
}

// output runs a Windows program and returns its output and exit code. The
// output goes through a file, not a pipe: services.exe, which the first
// service command starts, inherits the pipe and lives as long as the
// wineserver, so reading a pipe to its end would wait for the prefix's end.
func (w *wineTentacle) output(cmd *exec.Cmd) (string, int) {
	w.t.Helper()
	f, err := os.CreateTemp(w.dir, "wine-output-")
	if err != nil {
		w.t.Fatal(err)
	}
	defer f.Close()
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Run()
	out, err := os.ReadFile(f.Name())
	if err != nil {
		w.t.Fatal(err)
	}
	return string(out), cmd.ProcessState.ExitCode()
}

// setUp makes instance E2E the way an administrator would: the default
// machine-wide root (C:\ProgramData\Octopus in the prefix), a certificate
// protected with DPAPI, listening on port on loopback, trusting the
// operator.
func (w *wineTentacle) setUp(port int) {
	w.t.Helper()
	w.run("create-instance", "--instance", "E2E", "--config", `C:\Octopus\E2E\Tentacle.config`)
	w.run("new-certificate", "--instance", "E2E")
	w.run("configure", "--instance", "E2E", "--port", strconv.Itoa(port), "--listenIpAddress", "127.0.0.1", "--trust", w.operator.Thumbprint())
	out := w.run("show-thumbprint", "--instance", "E2E")
	w.thumb = thumbprintPattern.FindString(out)
	if w.thumb == "" {
		w.t.Fatalf("show-thumbprint printed %q", out)
	}
}

// remote runs the Linux build's remote command; it returns stdout, stderr
// and the exit code.
func (w *wineTentacle) remote(args ...string) (string, string, int) {
	w.t.Helper()
	c := exec.Command(builtBinary, append([]string{"remote"}, args...)...)
	c.Env = w.env
	var out, errb bytes.Buffer
	c.Stdout, c.Stderr = &out, &errb
	c.Run()
	return out.String(), errb.String(), c.ProcessState.ExitCode()
}

func (w *wineTentacle) endpoint(port int) []string {
	return []string{"--endpoint", fmt.Sprintf("https://127.0.0.1:%d/", port), "--thumbprint", w.thumb}
}

// TestWindowsAgentUnderWine: the Windows agent, set up with the CLI, serves
// the Linux build's remote commands listening and polling: capabilities,
// a script through the PowerShell stand-in, a file each way.
func TestWindowsAgentUnderWine(t *testing.T) {
	// Each in a prefix of its own: the three run at once (Wine mostly waits).
	t.Parallel()
	w := newWineTentacle(t)
	// tentacle-supervisor.exe beside tentacle.exe, as the MSI installs it: the scripts run
	// under it here (the service test below runs them under tentacle.exe itself).
	helper := w.tc.BuildExe(t, "./cmd/tentacle-supervisor")
	if err := os.Rename(helper, filepath.Join(filepath.Dir(w.exe), filepath.Base(helper))); err != nil {
		t.Fatal(err)
	}
	port, pollPort := freePort(t), freePort(t)
	w.setUp(port)
	w.run("poll-server", "--instance", "E2E", "--server-comms-address", fmt.Sprintf("https://127.0.0.1:%d", pollPort), "--thumbprint", w.operator.Thumbprint())

	ctx, cancel := context.WithCancel(context.Background())
	agent := w.prefix.Command(ctx, w.exe, "agent", "--instance", "E2E")
	var agentOut bytes.Buffer
	agent.Stdout, agent.Stderr = &agentOut, &agentOut
	if err := agent.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		agent.Wait()
		if t.Failed() {
			t.Logf("agent output:\n%s", agentOut.String())
		}
	})
	waitListening(t, port, wineDeadline)

	out, errs, code := w.remote(append([]string{"capabilities"}, w.endpoint(port)...)...)
	if code != 0 || !strings.Contains(out, "IScriptServiceV2") || !strings.Contains(out, "IFileTransferService") {
		t.Fatalf("capabilities: exit %d, stdout %q, stderr %q", code, out, errs)
	}

	// The stand-in runs the body with cmd.exe.
	out, errs, code = w.remote(append(append([]string{"exec"}, w.endpoint(port)...), "--", "echo from windows& exit /b 3")...)
	if strings.TrimSpace(out) != "from windows" || code != 3 {
		t.Fatalf("exec: exit %d, stdout %q, stderr %q", code, out, errs)
	}
	if log, _ := os.ReadFile(filepath.Join(w.prefix.DriveC(), "Octopus", "E2E", "Logs", "OctopusTentacle.txt")); !regexp.MustCompile(`scripts run under \S*tentacle-supervisor\.exe`).Match(log) {
		t.Errorf("the agent's log does not say that scripts run under tentacle-supervisor.exe:\n%s", log)
	}

	// A file there and back, checked by content.
	payload := make([]byte, 3<<20)
	rand.Read(payload)
	local := filepath.Join(w.dir, "payload.bin")
	if err := os.WriteFile(local, payload, 0o600); err != nil {
		t.Fatal(err)
	}
	if out, errs, code := w.remote(append(append([]string{"upload"}, w.endpoint(port)...), local, `C:\Octopus\E2E\payload.bin`)...); code != 0 {
		t.Fatalf("upload: exit %d, %s %s", code, out, errs)
	}
	stored, err := os.ReadFile(filepath.Join(w.prefix.DriveC(), "Octopus", "E2E", "payload.bin"))
	if err != nil || sha256.Sum256(stored) != sha256.Sum256(payload) {
		t.Fatalf("the uploaded file on C: differs (%v, %d bytes)", err, len(stored))
	}
	back := filepath.Join(w.dir, "back.bin")
	if out, errs, code := w.remote(append(append([]string{"download"}, w.endpoint(port)...), `C:\Octopus\E2E\payload.bin`, back)...); code != 0 {
		t.Fatalf("download: exit %d, %s %s", code, out, errs)
	}
	if got, err := os.ReadFile(back); err != nil || sha256.Sum256(got) != sha256.Sum256(payload) {
		t.Fatalf("the downloaded file differs (%v, %d bytes)", err, len(got))
	}

	// Polling: this command plays the Octopus Server on the address the
	// agent polls.
	s, err := config.LoadSettings(filepath.Join(w.prefix.DriveC(), "Octopus", "E2E", "Tentacle.config"))
	if err != nil {
		t.Fatal(err)
	}
	servers, err := s.TrustedServers()
	if err != nil || len(servers) == 0 {
		t.Fatalf("trusted servers: %v %v", servers, err)
	}
	sub := servers[len(servers)-1].SubscriptionID
	out, errs, code = w.remote("exec", "--poll", sub, "--listen", fmt.Sprintf("127.0.0.1:%d", pollPort), "--connect-timeout", "2m", "--thumbprint", w.thumb, "--", "echo polled")
	if strings.TrimSpace(out) != "polled" || code != 0 {
		t.Fatalf("polling exec: exit %d, stdout %q, stderr %q", code, out, errs)
	}
}

// TestWindowsServiceUnderWine: `service --install --start` under Wine's
// SCM (which implements neither service SIDs nor failure-action flags:
// warnings, not a failed install) leaves a running agent that the Linux
// build reaches; --stop stops it and --uninstall leaves no service behind.
func TestWindowsServiceUnderWine(t *testing.T) {
	t.Parallel()
	w := newWineTentacle(t)
	// Services live as long as the wineserver: keep it up between commands.
	if err := w.prefix.KeepServer(); err != nil {
		t.Fatal(err)
	}
	port := freePort(t)
	w.setUp(port)
	const name = "OctopusDeploy Tentacle: E2E"

	out := w.run("service", "--instance", "E2E", "--install", "--start")
	if !strings.Contains(out, "does not support a service SID") {
		t.Errorf("install did not warn about the service SID Wine lacks:\n%s", out)
	}
	query, code := w.sc("query", name)
	if code != 0 || !strings.Contains(query, "RUNNING") {
		t.Fatalf("after --install --start, sc query: exit %d\n%s", code, query)
	}
	waitListening(t, port, wineDeadline)
	stdout, errs, code := w.remote(append(append([]string{"exec"}, w.endpoint(port)...), "--", "echo from the service")...)
	if strings.TrimSpace(stdout) != "from the service" || code != 0 {
		t.Fatalf("exec against the service: exit %d, stdout %q, stderr %q", code, stdout, errs)
	}

	w.run("service", "--instance", "E2E", "--stop")
	if query, _ := w.sc("query", name); !strings.Contains(query, "STOPPED") {
		t.Fatalf("after --stop, sc query:\n%s", query)
	}
	if c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second); err == nil {
		c.Close()
		t.Fatal("the agent still listens after --stop")
	}

	w.run("service", "--instance", "E2E", "--uninstall")
	// Nothing left: no such service, no key in the registry.
	if query, code := w.sc("query", name); code == 0 {
		t.Fatalf("after --uninstall, sc query: exit %d\n%s", code, query)
	}
	key := `HKLM\SYSTEM\CurrentControlSet\Services\` + name
	ctx, cancel := context.WithTimeout(context.Background(), wineDeadline)
	defer cancel()
	if out, code := w.output(w.prefix.Command(ctx, "reg", "query", key)); code == 0 {
		t.Fatalf("after --uninstall the service's key is still there:\n%s", out)
	}
}

// dumpLogs logs the instance's log files, for a failed test.
func (w *wineTentacle) dumpLogs() {
	logs, _ := filepath.Glob(filepath.Join(w.prefix.DriveC(), "Octopus", "E2E", "Logs", "*"))
	for _, l := range logs {
		data, _ := os.ReadFile(l)
		w.t.Logf("%s:\n%s", l, data)
	}
}

// sc runs Wine's sc.exe.
func (w *wineTentacle) sc(args ...string) (string, int) {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wineDeadline)
	defer cancel()
	return w.output(w.prefix.Command(ctx, "sc", args...))
}
