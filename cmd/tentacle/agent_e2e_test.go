//go:build !windows

package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tentacle-go/tentacle/agent/config"
	"github.com/tentacle-go/tentacle/agent/contracts"
	"github.com/tentacle-go/tentacle/agent/halibut"
	"github.com/tentacle-go/tentacle/internal/scripttest"
)

// realAgent is the tentacle binary running `agent` for one temp instance,
// and an operator identity (playing the Octopus Server) it trusts.
type realAgent struct {
	t        *testing.T
	dir      string
	env      []string
	cmd      *exec.Cmd
	port     int
	operator *config.Certificate
	thumb    string
	client   *halibut.Client
	bin      string // the agent's binary; builtBinary unless a test sets it
	// startArgs replace `agent --instance E2E` (to start the agent through a shell).
	startArgs []string
	starts    int // how many times start ran: each run's output goes to its own file
}

func freePort(t *testing.T) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func (a *realAgent) tentacle(args ...string) string {
	a.t.Helper()
	c := exec.Command(builtBinary, args...)
	c.Env = a.env
	out, err := c.CombinedOutput()
	if err != nil {
		a.t.Fatalf("tentacle %v: %v\n%s", args, err, out)
	}
	return string(out)
}

func newRealAgent(t *testing.T) *realAgent {
	t.Helper()
	dir := t.TempDir()
	a := &realAgent{t: t, dir: dir, port: freePort(t)}
	a.env = append(os.Environ(), "TentacleMachineConfigurationHomeDirectory="+filepath.Join(dir, "etc"), "NO_COLOR=1")
	op, err := config.GenerateCertificate()
	if err != nil {
		t.Fatal(err)
	}
	a.operator = op
	cfg := filepath.Join(dir, "home", "tentacle.config")
	a.tentacle("create-instance", "--instance", "E2E", "--config", cfg)
	a.tentacle("new-certificate", "--instance", "E2E")
	a.tentacle("configure", "--instance", "E2E", "--port", strconv.Itoa(a.port), "--listenIpAddress", "127.0.0.1", "--trust", op.Thumbprint())
	a.thumb = strings.TrimSpace(a.tentacle("show-thumbprint", "--instance", "E2E"))
	tlsCert := op.TLS()
	a.client = &halibut.Client{Certificate: &tlsCert, Limits: halibut.DefaultLimits()}
	t.Cleanup(a.client.Close)
	return a
}

func (a *realAgent) home() string { return filepath.Join(a.dir, "home") }

func (a *realAgent) start() {
	a.t.Helper()
	bin := a.bin
	if bin == "" {
		bin = builtBinary
	}
	args := a.startArgs
	if args == nil {
		args = []string{"agent", "--instance", "E2E"}
	}
	a.cmd = exec.Command(bin, args...)
	a.cmd.Env = a.env
	// The agent's own output, shown when the test fails: an agent that
	// exits early says why there, and nowhere else.
	a.starts++
	out, err := os.Create(filepath.Join(a.dir, fmt.Sprintf("agent-%d.log", a.starts)))
	if err != nil {
		a.t.Fatal(err)
	}
	a.cmd.Stdout, a.cmd.Stderr = out, out
	if err := a.cmd.Start(); err != nil {
		a.t.Fatal(err)
	}
	cmd := a.cmd
	a.t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		state := "exited"
		if err := cmd.Wait(); err != nil {
			state = err.Error()
		}
		out.Close()
		if a.t.Failed() {
			b, _ := os.ReadFile(out.Name())
			a.t.Logf("agent %s (%s), its output:\n%s", filepath.Base(out.Name()), state, b)
		}
	})
	// Generous: it only tells an agent that never listens from a slow one
	// on a loaded machine.
	deadline := time.Now().Add(60 * time.Second)
	for {
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", a.port))
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			a.t.Fatal("the agent did not start listening")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (a *realAgent) caller() contracts.Caller {
	return contracts.ListeningCaller{Client: a.client, Endpoint: halibut.Endpoint{BaseURI: fmt.Sprintf("https://127.0.0.1:%d/", a.port), Thumbprint: a.thumb}}
}

func (a *realAgent) scripts() contracts.ScriptServiceV2Client {
	return contracts.ScriptServiceV2Client{Caller: a.caller()}
}

func startCmd(ticket, body string, iso contracts.ScriptIsolationLevel) contracts.StartScriptCommandV2 {
	mutex := "E2E"
	return contracts.StartScriptCommandV2{ScriptTicket: contracts.ScriptTicket{TaskID: ticket}, ScriptBody: body, TaskID: "ServerTasks-" + ticket,
		Isolation: iso, ScriptIsolationMutexTimeout: contracts.NoMutexTimeout, IsolationMutexName: &mutex,
		Scripts: map[string]string{}, Files: []contracts.ScriptFile{}, Arguments: []string{}}
}

// runToCompletion follows a script like an Octopus Server does and returns
// every output line and the exit code.
func runToCompletion(t *testing.T, s contracts.ScriptServiceV2Client, ticket string, from int64) ([]string, int32) {
	t.Helper()
	return scripttest.RunToCompletion(t, s, ticket, from)
}

func TestAgentRunsScriptsAndSurvivesKill9(t *testing.T) {
	a := newRealAgent(t)
	a.start()
	s := a.scripts()
	ctx := context.Background()

	// A retried StartScript with the same ticket runs the script once.
	marker := filepath.Join(a.dir, "ran")
	body := fmt.Sprintf("echo run >> %s; echo started", marker)
	for range 3 {
		if _, err := s.StartScript(ctx, startCmd("Once", body, contracts.NoIsolation)); err != nil {
			t.Fatal(err)
		}
	}
	if _, code := runToCompletion(t, s, "Once", 0); code != 0 {
		t.Fatalf("exit %d", code)
	}
	if b, _ := os.ReadFile(marker); strings.Count(string(b), "run") != 1 {
		t.Errorf("a retried StartScript ran the script %d times", strings.Count(string(b), "run"))
	}

	// kill -9 of the agent mid-script: the script keeps running, and the
	// restarted agent returns every line and the exit code.
	slow := "for i in $(seq 1 30); do echo line $i; sleep 0.05; done; exit 7"
	if _, err := s.StartScript(ctx, startCmd("Survivor", slow, contracts.NoIsolation)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(400 * time.Millisecond)
	a.cmd.Process.Signal(syscall.SIGKILL)
	a.cmd.Wait()
	a.start()
	lines, code := runToCompletion(t, a.scripts(), "Survivor", 0)
	var want []string
	for i := 1; i <= 30; i++ {
		want = append(want, fmt.Sprint("line ", i))
	}
	if strings.Join(lines, "|") != strings.Join(want, "|") || code != 7 {
		t.Errorf("after kill -9 and restart: exit %d, lines %q", code, lines)
	}
}

func TestAgentIsolationAndCancel(t *testing.T) {
	a := newRealAgent(t)
	a.start()
	s := a.scripts()
	ctx := context.Background()
	// Whether scripts overlapped is read from what they saw, not from how
	// long they took (a loaded machine makes any duration meaningless):
	// a FullIsolation script fails when it finds another one running, and
	// each NoIsolation script waits until all three have started, which
	// only scripts running side by side can do.
	run3 := func(iso contracts.ScriptIsolationLevel, prefix, body string) {
		for i := range 3 {
			if _, err := s.StartScript(ctx, startCmd(fmt.Sprint(prefix, i), fmt.Sprintf(body, i), iso)); err != nil {
				t.Fatal(err)
			}
		}
		for i := range 3 {
			if lines, code := runToCompletion(t, s, fmt.Sprint(prefix, i), 0); code != 0 {
				t.Errorf("%s script %d: exit %d, %q", prefix, i, code, lines)
			}
		}
	}
	full := filepath.Join(a.dir, "full")
	if err := os.Mkdir(full, 0o755); err != nil {
		t.Fatal(err)
	}
	run3(contracts.FullIsolation, "Full", "cd "+full+"; touch running.%d; n=$(ls | wc -l); sleep 0.3; rm -f running.*; "+
		`if [ "$n" != 1 ]; then echo "overlapped: $n running"; exit 1; fi`)
	none := filepath.Join(a.dir, "none")
	if err := os.Mkdir(none, 0o755); err != nil {
		t.Fatal(err)
	}
	run3(contracts.NoIsolation, "None", "cd "+none+"; touch started.%d; for _ in $(seq 600); do "+
		`[ "$(ls | wc -l)" = 3 ] && exit 0; sleep 0.1; done; echo "alone for 60 s: not run side by side"; exit 1`)

	// Cancel kills the whole tree, children in the background included.
	pidFile := filepath.Join(a.dir, "pids")
	tree := fmt.Sprintf("sleep 1000 & echo $! >> %[1]s; (sleep 1000 & echo $! >> %[1]s; wait) & sleep 1000", pidFile)
	if _, err := s.StartScript(ctx, startCmd("Tree", tree, contracts.NoIsolation)); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if b, _ := os.ReadFile(pidFile); strings.Count(string(b), "\n") >= 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the script tree did not start")
		}
		time.Sleep(20 * time.Millisecond)
	}
	for {
		st, err := s.CancelScript(ctx, contracts.CancelScriptCommandV2{Ticket: contracts.ScriptTicket{TaskID: "Tree"}})
		if err != nil {
			t.Fatal(err)
		}
		if st.State == contracts.StateComplete {
			break
		}
		if time.Now().After(deadline.Add(20 * time.Second)) {
			t.Fatal("cancel did not complete")
		}
		time.Sleep(50 * time.Millisecond)
	}
	b, _ := os.ReadFile(pidFile)
	for _, f := range strings.Fields(string(b)) {
		pid, _ := strconv.Atoi(f)
		if err := syscall.Kill(pid, 0); err == nil {
			if stat, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); !bytes.Contains(stat, []byte(") Z ")) {
				t.Errorf("process %d survived the cancel", pid)
			}
		}
	}
}

// rssKB is a process's peak resident memory in KiB (VmHWM).
func rssKB(pid int) int {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmHWM:") {
			n, _ := strconv.Atoi(strings.Fields(line)[1])
			return n
		}
	}
	return 0
}

type patternReader struct{ n int }

func (p *patternReader) Read(b []byte) (int, error) {
	for i := range b {
		b[i] = byte(p.n * 7)
		p.n++
	}
	return len(b), nil
}

func TestAgentMovesAGigabyteWithFlatMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("moves 1 GB; skipped in -short mode")
	}
	a := newRealAgent(t)
	a.start()
	const size = 1 << 30
	files := contracts.FileTransferClient{Caller: a.caller()}
	h := sha256.New()
	up, err := files.UploadFile(context.Background(), "Files/big.bin", io.TeeReader(io.LimitReader(&patternReader{}, size), h), size)
	if err != nil {
		t.Fatal(err)
	}
	if up.Length != size {
		t.Fatalf("stored %d bytes", up.Length)
	}
	sent := h.Sum(nil)
	h2 := sha256.New()
	found, n, err := files.DownloadFile(context.Background(), "Files/big.bin", h2)
	if err != nil || !found || n != size || !bytes.Equal(h2.Sum(nil), sent) {
		t.Fatalf("download: found=%v n=%d err=%v, hash match %v", found, n, err, bytes.Equal(h2.Sum(nil), sent))
	}
	if peak := rssKB(a.cmd.Process.Pid); peak > 100<<10 {
		t.Errorf("the agent's peak RSS was %d MiB while moving 1 GiB: memory is not flat", peak>>10)
	} else {
		t.Logf("agent peak RSS while moving 1 GiB each way: %d MiB", peak>>10)
	}
	os.Remove(filepath.Join(a.home(), "Files", "big.bin"))
}

// startPolling runs the agent polling an in-process polling server over conns
// connections instead of listening, and returns a client for its scripts.
func (a *realAgent) startPolling(t *testing.T, conns int) (*halibut.PollingServer, contracts.Caller) {
	t.Helper()
	tlsCert := a.operator.TLS()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ps := &halibut.PollingServer{Certificate: &tlsCert, Trust: halibut.NewTrustStore(a.thumb), Limits: halibut.DefaultLimits()}
	go ps.Serve(ln)
	t.Cleanup(func() { ps.Shutdown(context.Background()) })
	a.tentacle("configure", "--instance", "E2E", "--noListen", "True")
	a.tentacle("poll-server", "--instance", "E2E", "--server-comms-address", "https://"+ln.Addr().String(), "--thumbprint", a.operator.Thumbprint())
	a.tentacle("set-polling-connection-count", "--instance", "E2E", "--pollingConnectionCount", strconv.Itoa(conns))
	s, _ := config.LoadSettings(filepath.Join(a.home(), "tentacle.config"))
	servers, _ := s.TrustedServers()
	sub := servers[len(servers)-1].SubscriptionID
	a.cmd = exec.Command(builtBinary, "agent", "--instance", "E2E")
	a.cmd.Env = a.env
	if err := a.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	cmd := a.cmd
	t.Cleanup(func() { cmd.Process.Signal(syscall.SIGTERM); cmd.Wait() })
	deadline := time.Now().Add(30 * time.Second)
	for ps.Subscribers(sub) < conns {
		if time.Now().After(deadline) {
			t.Fatalf("the agent did not open %d polling connections (has %d)", conns, ps.Subscribers(sub))
		}
		time.Sleep(20 * time.Millisecond)
	}
	return ps, contracts.PollingCaller{Server: ps, Subscription: sub, Thumbprint: a.thumb}
}

func TestAgentPollsAndServesScripts(t *testing.T) {
	a := newRealAgent(t)
	_, caller := a.startPolling(t, 2)
	scripts := contracts.ScriptServiceV2Client{Caller: caller}
	if _, err := scripts.StartScript(context.Background(), startCmd("Polled", "echo polled; exit 4", contracts.NoIsolation)); err != nil {
		t.Fatal(err)
	}
	lines, code := runToCompletion(t, scripts, "Polled", 0)
	if code != 4 || len(lines) != 1 || lines[0] != "polled" {
		t.Errorf("exit %d, lines %q", code, lines)
	}
	// It does not listen when NoListen is set.
	if c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", a.port), 200*time.Millisecond); err == nil {
		c.Close()
		t.Error("the agent listens although NoListen is true")
	}
}

// The operator commands, as a person types them: remote exec against the
// listening agent, then remote serve + remote exec --via against it polling.
func TestRemoteCommandsAgainstTheRealAgent(t *testing.T) {
	a := newRealAgent(t)
	opPFX := filepath.Join(a.dir, "operator.pfx")
	pfx, _ := a.operator.PKCS12("")
	os.WriteFile(opPFX, pfx, 0o600)
	a.env = append(a.env, "TENTACLE_OPERATOR_CERT="+opPFX)
	pollPort, controlPort := freePort(t), freePort(t)
	a.tentacle("poll-server", "--instance", "E2E", "--server-comms-address", fmt.Sprintf("https://127.0.0.1:%d", pollPort), "--thumbprint", a.operator.Thumbprint())
	serve := exec.Command(builtBinary, "remote", "serve", "--listen", fmt.Sprintf("127.0.0.1:%d", pollPort), "--control", fmt.Sprintf("127.0.0.1:%d", controlPort), "--trust", a.thumb)
	serve.Env = a.env
	if err := serve.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { serve.Process.Signal(syscall.SIGTERM); serve.Wait() })
	a.start()

	run := func(args ...string) (string, string, int) {
		c := exec.Command(builtBinary, args...)
		c.Env = a.env
		var out, errb bytes.Buffer
		c.Stdout, c.Stderr = &out, &errb
		c.Run()
		return out.String(), errb.String(), c.ProcessState.ExitCode()
	}
	out, errs, code := run("remote", "exec", "--endpoint", fmt.Sprintf("https://127.0.0.1:%d/", a.port), "--thumbprint", a.thumb, "--", "echo out; echo err >&2; exit 3")
	if out != "out\n" || errs != "err\n" || code != 3 {
		t.Errorf("listening exec: stdout %q stderr %q exit %d", out, errs, code)
	}
	// The default operator identity keeps a TLS session ticket, which the next command
	// resumes; with --cert none is kept (it would stand in for the PFX's password).
	sessions := filepath.Join(a.dir, "sessions")
	if tickets, _ := filepath.Glob(filepath.Join(sessions, "*.ticket")); len(tickets) != 1 {
		t.Errorf("session tickets after one command: %v", tickets)
	}
	if out, errs, code = run("remote", "exec", "--endpoint", fmt.Sprintf("https://127.0.0.1:%d/", a.port), "--thumbprint", a.thumb, "--", "echo again"); out != "again\n" || code != 0 {
		t.Errorf("exec with a stored session: stdout %q stderr %q exit %d", out, errs, code)
	}
	os.RemoveAll(sessions)
	if out, errs, code = run("remote", "exec", "--cert", opPFX, "--endpoint", fmt.Sprintf("https://127.0.0.1:%d/", a.port), "--thumbprint", a.thumb, "--", "echo cert"); out != "cert\n" || code != 0 {
		t.Errorf("exec with --cert: stdout %q stderr %q exit %d", out, errs, code)
	}
	if _, err := os.Stat(sessions); err == nil {
		t.Error("a session ticket was kept for an explicit --cert")
	}
	s, _ := config.LoadSettings(filepath.Join(a.home(), "tentacle.config"))
	servers, _ := s.TrustedServers()
	sub := servers[len(servers)-1].SubscriptionID
	var lastErr string
	deadline := time.Now().Add(15 * time.Second)
	for {
		out, errs, code = run("remote", "exec", "--poll", sub, "--via", fmt.Sprintf("https://127.0.0.1:%d/", controlPort), "--thumbprint", a.thumb, "--", "echo polled")
		if code == 0 || time.Now().After(deadline) {
			break
		}
		lastErr = errs // the agent may not have connected yet
		time.Sleep(200 * time.Millisecond)
	}
	if out != "polled\n" || code != 0 {
		t.Errorf("polling exec via serve: stdout %q stderr %q exit %d (earlier: %s)", out, errs, code, lastErr)
	}
	// Without serve, remote exec --poll accepts the agent itself, on the
	// address it polls.
	serve.Process.Signal(syscall.SIGTERM)
	serve.Wait()
	out, errs, code = run("remote", "exec", "--poll", sub, "--listen", fmt.Sprintf("127.0.0.1:%d", pollPort), "--connect-timeout", "60s", "--thumbprint", a.thumb, "--", "echo direct")
	if out != "direct\n" || code != 0 {
		t.Errorf("polling exec without serve: stdout %q stderr %q exit %d", out, errs, code)
	}
	_, errs, code = run("remote", "exec", "--endpoint", fmt.Sprintf("https://127.0.0.1:%d/", a.port), "--thumbprint", strings.Repeat("A", 40), "--", "true")
	if code != 1 || !strings.Contains(errs, "Check --thumbprint") {
		t.Errorf("wrong thumbprint: exit %d, %q", code, errs)
	}
}

// Ctrl+C on `remote exec` cancels the script on the Tentacle and waits for it.
func TestRemoteExecCtrlCCancelsTheScript(t *testing.T) {
	a := newRealAgent(t)
	opPFX := filepath.Join(a.dir, "operator.pfx")
	pfx, _ := a.operator.PKCS12("")
	os.WriteFile(opPFX, pfx, 0o600)
	a.start()
	pidFile := filepath.Join(a.dir, "sleep.pid")
	c := exec.Command(builtBinary, "remote", "exec", "--endpoint", fmt.Sprintf("https://127.0.0.1:%d/", a.port), "--thumbprint", a.thumb,
		"--", fmt.Sprintf("sleep 1000 & echo $! > %s; wait", pidFile))
	c.Env = append(a.env, "TENTACLE_OPERATOR_CERT="+opPFX)
	var errb bytes.Buffer
	c.Stderr = &errb
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if b, _ := os.ReadFile(pidFile); len(bytes.TrimSpace(b)) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the script did not start")
		}
		time.Sleep(20 * time.Millisecond)
	}
	c.Process.Signal(os.Interrupt)
	done := make(chan error, 1)
	go func() { done <- c.Wait() }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		c.Process.Kill()
		t.Fatal("remote exec did not end after Ctrl+C")
	}
	if c.ProcessState.ExitCode() == 0 || !strings.Contains(errb.String(), "Cancelling the script") {
		t.Errorf("exit %d, stderr %q", c.ProcessState.ExitCode(), errb.String())
	}
	b, _ := os.ReadFile(pidFile)
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	if err := syscall.Kill(pid, 0); err == nil {
		if stat, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); !bytes.Contains(stat, []byte(") Z ")) {
			t.Errorf("the script's child %d survived the cancel", pid)
		}
	}
}
