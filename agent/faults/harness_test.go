//go:build linux

package faults

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tentacle-go/tentacle/agent"
	"github.com/tentacle-go/tentacle/agent/config"
	"github.com/tentacle-go/tentacle/agent/contracts"
	"github.com/tentacle-go/tentacle/agent/halibut"
)

func timeUntil(d time.Time) time.Duration { return time.Until(d).Round(time.Second) }

// fastLimits are the default limits with the deadlines that notice a dead link and pace
// reconnection tuned down from seconds to fractions of one, so a fault plays out in a few
// seconds. What they bound is the same; TestDefaultLimitsNoticeADeadLinkWithin30Seconds
// (agent/halibut) and `make soak` show the defaults.
func fastLimits() halibut.Limits {
	lim := halibut.DefaultLimits()
	// Keep-alive counts whole seconds.
	lim.TCPKeepAlive = net.KeepAliveConfig{Enable: true, Idle: time.Second, Interval: time.Second, Count: 1}
	lim.TCPUserTimeout = time.Second
	lim.ConnectTimeout = 2 * time.Second
	lim.PollingQueueWaitTimeout = time.Second
	lim.PollingRequestQueueTimeout = 2 * time.Second
	lim.PollingReconnectAfterDisconnectDelay = 200 * time.Millisecond
	lim.PollingReconnectMinDelay = 200 * time.Millisecond
	lim.PollingReconnectMaxDelay = 2 * time.Second
	lim.RetryListeningSleepInterval = 100 * time.Millisecond
	lim.ConnectionErrorRetryTimeout = 2 * time.Second
	return lim
}

// deadLinkBound is how long a dropped link may go unnoticed under lim: keep-alive on an idle
// connection, the user timeout on one with data in flight, whichever is later.
func deadLinkBound(lim halibut.Limits) time.Duration {
	ka := lim.TCPKeepAlive.Idle + time.Duration(lim.TCPKeepAlive.Count)*lim.TCPKeepAlive.Interval
	return max(ka, lim.TCPUserTimeout)
}

// server plays the Octopus Server: a polling endpoint on loopback and a listening client,
// both with one certificate the agent trusts.
type server struct {
	t       *testing.T
	cert    *config.Certificate
	lim     halibut.Limits
	polling *halibut.PollingServer
	trust   *halibut.TrustStore // the agents' certificates, for the polling endpoint
	client  *halibut.Client
	addr    string // the polling endpoint's host:port
}

func newServer(t *testing.T, lim halibut.Limits) *server {
	t.Helper()
	cert, err := config.GenerateCertificate()
	if err != nil {
		t.Fatal(err)
	}
	tlsCert := cert.TLS()
	s := &server{t: t, cert: cert, lim: lim, trust: halibut.NewTrustStore(), client: &halibut.Client{Certificate: &tlsCert, Limits: lim}}
	t.Cleanup(s.client.Close)
	return s
}

// servePolling starts (or, after stopPolling, restarts) the polling endpoint, on addr
// ("" for a free port).
func (s *server) servePolling(addr string) {
	s.t.Helper()
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		s.t.Fatal(err)
	}
	tlsCert := s.cert.TLS()
	s.polling = &halibut.PollingServer{Certificate: &tlsCert, Trust: s.trust, Limits: s.lim,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	s.addr = ln.Addr().String()
	go s.polling.Serve(ln)
	p := s.polling
	s.t.Cleanup(func() { p.Shutdown(context.Background()) })
}

// stopPolling stops the polling endpoint as a restarted server does: every connection closed.
func (s *server) stopPolling() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s.polling.Shutdown(ctx)
}

// instance is one agent's configuration on disk: its home, settings file and certificate.
type instance struct {
	home     string
	settings string
	cert     *config.Certificate
	port     int    // listening port; 0 when polling
	sub      string // subscription id when polling
	metrics  string // host:port of the metrics endpoint
}

// newInstance writes the configuration of an agent that listens on loopback (srv trusted as
// a listening server) or, with polling, polls srv's endpoint.
func newInstance(t *testing.T, srv *server, polling bool, home string) *instance {
	t.Helper()
	if home == "" {
		home = t.TempDir()
	}
	cert, err := config.GenerateCertificate()
	if err != nil {
		t.Fatal(err)
	}
	in := &instance{home: home, settings: filepath.Join(home, "tentacle.config"), cert: cert, metrics: freeAddr(t)}
	s := config.NewSettings(in.settings)
	s.Set(config.KeyHome, home)
	s.Set(agent.KeyMetricsListenAddress, in.metrics)
	if polling {
		in.sub = "poll://" + strings.ToLower(fmt.Sprintf("%020d", time.Now().UnixNano()%1e15)) + "/"
		s.Set(config.KeyNoListen, "True")
		s.SetTrustedServers([]config.TrustedServer{{Thumbprint: srv.cert.Thumbprint(), CommunicationStyle: config.StyleTentacleActive,
			Address: "https://" + srv.addr + "/", SubscriptionID: in.sub}})
	} else {
		in.port = freePort(t)
		s.Set(config.KeyPortNumber, strconv.Itoa(in.port))
		s.Set(config.KeyListenIP, "127.0.0.1")
		s.SetTrustedServers([]config.TrustedServer{{Thumbprint: srv.cert.Thumbprint(), CommunicationStyle: config.StyleTentaclePassive}})
	}
	srv.trust.Add(cert.Thumbprint())
	if _, err := s.SetCertificate(cert, config.NewUnixMachineKey(home)); err != nil {
		t.Fatal(err)
	}
	if err := s.Save(); err != nil {
		t.Fatal(err)
	}
	return in
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func freeAddr(t *testing.T) string { return fmt.Sprintf("127.0.0.1:%d", freePort(t)) }

// caller reaches the instance's agent as srv would.
func (in *instance) caller(srv *server) contracts.Caller {
	if in.sub != "" {
		return contracts.PollingCaller{Server: srv.polling, Subscription: in.sub, Thumbprint: in.cert.Thumbprint()}
	}
	return contracts.ListeningCaller{Client: srv.client, Endpoint: halibut.Endpoint{BaseURI: fmt.Sprintf("https://127.0.0.1:%d/", in.port), Thumbprint: in.cert.Thumbprint()}}
}

// pollingCaller is a caller that follows srv.polling across restarts.
type pollingCaller struct {
	srv *server
	in  *instance
}

func (p pollingCaller) Call(ctx context.Context, service, method string, params []any, sink halibut.StreamSink) (any, error) {
	return p.in.caller(p.srv).Call(ctx, service, method, params, sink)
}

func (in *instance) scripts(srv *server) contracts.ScriptServiceV2Client {
	return contracts.ScriptServiceV2Client{Caller: pollingCaller{srv, in}}
}

func (in *instance) files(srv *server) contracts.FileTransferClient {
	return contracts.FileTransferClient{Caller: pollingCaller{srv, in}}
}

// newAgent loads the instance's configuration into an agent with lim.
func newAgent(in *instance, lim halibut.Limits, logger *slog.Logger) (*agent.Agent, error) {
	s, err := config.LoadSettings(in.settings)
	if err != nil {
		return nil, err
	}
	mk := config.NewUnixMachineKey(in.home)
	cert, err := s.Certificate(mk)
	if err != nil {
		return nil, err
	}
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	return agent.New(agent.Options{Settings: s, Certificate: cert, MachineKey: mk, Limits: lim, Logger: logger,
		Executable: exe, Getenv: func(string) string { return "" }})
}

// runAgent runs the instance's agent in this process until the test ends.
func runAgent(t *testing.T, in *instance, lim halibut.Limits) *agent.Agent {
	t.Helper()
	a, err := newAgent(in, lim, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(40 * time.Second):
			t.Error("the agent did not stop")
		}
	})
	a.Addr()
	return a
}

// agentProcessArg makes the test binary run an agent (runAgentProcess): the agent a test
// kills -9 or measures as a process.
const agentProcessArg = "faults-agent-process"

// agentProcess is the instance's agent in a process of its own.
type agentProcess struct {
	cmd *exec.Cmd
	log *os.File
}

// startAgentProcess starts the instance's agent as a separate process with lim and waits
// until its metrics endpoint answers.
func startAgentProcess(t *testing.T, in *instance, lim halibut.Limits) *agentProcess {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	limJSON, err := json.Marshal(lim)
	if err != nil {
		t.Fatal(err)
	}
	logf, err := os.CreateTemp(t.TempDir(), "agent-*.log")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, agentProcessArg, in.settings, string(limJSON))
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &agentProcess{cmd: cmd, log: logf}
	t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			p.cmd.Process.Signal(syscall.SIGTERM)
			p.cmd.Wait()
		}
	})
	deadline := time.Now().Add(20 * time.Second)
	for {
		if _, err := metrics(in); err == nil {
			return p
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(logf.Name())
			t.Fatalf("the agent process did not start:\n%s", b)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// kill9 kills the agent process as the OOM killer or a power cut would.
func (p *agentProcess) kill9() {
	p.cmd.Process.Signal(syscall.SIGKILL)
	p.cmd.Wait()
}

// runAgentProcess is the body of an agent process: the settings file and the limits as JSON.
func runAgentProcess(args []string) int {
	var lim halibut.Limits
	if len(args) != 2 || json.Unmarshal([]byte(args[1]), &lim) != nil {
		fmt.Fprintln(os.Stderr, "usage: faults-agent-process SETTINGS LIMITS-JSON")
		return 2
	}
	s, err := config.LoadSettings(args[0])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	in := &instance{home: s.Home(), settings: args[0]}
	a, err := newAgent(in, lim, slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo})))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if err := a.Run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// metrics reads the agent's metrics endpoint.
func metrics(in *instance) (string, error) {
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get("http://" + in.metrics + "/metrics")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

// metric is one gauge or counter of the agent's metrics, -1 when absent.
func metric(in *instance, name string) float64 {
	m, err := metrics(in)
	if err != nil {
		return -1
	}
	re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + ` (\S+)$`)
	sm := re.FindStringSubmatch(m)
	if sm == nil {
		return -1
	}
	v, _ := strconv.ParseFloat(sm[1], 64)
	return v
}

// waitFor polls cond until it holds or within passes, and says how long it took.
func waitFor(t *testing.T, within time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > within {
			t.Fatalf("%s: not within %v", what, within)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return time.Since(start)
}

// script is a long script that appends one line to marker when it starts, prints lines
// "line 1".."line n" at interval, and exits with code.
func script(ticket, marker string, n int, interval time.Duration, code int) contracts.StartScriptCommandV2 {
	body := fmt.Sprintf("echo run >> %s\nfor i in $(seq 1 %d); do echo \"line $i\"; sleep %.3f; done\nexit %d\n", marker, n, interval.Seconds(), code)
	return contracts.StartScriptCommandV2{ScriptTicket: contracts.ScriptTicket{TaskID: ticket}, ScriptBody: body, TaskID: "ServerTasks-" + ticket,
		Isolation: contracts.NoIsolation, ScriptIsolationMutexTimeout: contracts.NoMutexTimeout,
		Scripts: map[string]string{}, Files: []contracts.ScriptFile{}, Arguments: []string{}}
}

// follower follows one script's log as an Octopus Server does, from the last sequence it
// was given, keeping every output line in the order received.
type follower struct {
	mu     sync.Mutex
	ticket string
	seq    int64
	lines  []string
	done   bool
	code   int32
}

// poll asks once for what is new; a transport error is returned, not fatal.
func (f *follower) poll(ctx context.Context, s contracts.ScriptServiceV2Client) error {
	f.mu.Lock()
	seq := f.seq
	f.mu.Unlock()
	st, err := s.GetStatus(ctx, contracts.ScriptStatusRequestV2{Ticket: contracts.ScriptTicket{TaskID: f.ticket}, LastLogSequence: seq})
	if err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, l := range st.Logs {
		if l.Source == contracts.SourceStdOut && strings.HasPrefix(l.Text, "line ") {
			f.lines = append(f.lines, l.Text)
		}
	}
	f.seq = st.NextLogSequence
	if st.State == contracts.StateComplete {
		f.done, f.code = true, st.ExitCode
	}
	return nil
}

// toCompletion polls until the script is complete, tolerating transport errors until
// within runs out.
func (f *follower) toCompletion(t *testing.T, s contracts.ScriptServiceV2Client, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	var last error
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		last = f.poll(ctx, s)
		cancel()
		f.mu.Lock()
		done := f.done
		f.mu.Unlock()
		if done {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("script %s not complete within %v (last error %v)", f.ticket, within, last)
}

// checkEveryLineOnce asserts that lines 1..n arrived once each, in order, with the code.
func (f *follower) checkEveryLineOnce(t *testing.T, n int, code int32) {
	t.Helper()
	var want []string
	for i := 1; i <= n; i++ {
		want = append(want, fmt.Sprint("line ", i))
	}
	if strings.Join(f.lines, "|") != strings.Join(want, "|") || f.code != code {
		t.Errorf("script %s: exit %d (want %d), %d lines (want %d, each once, in order): %q", f.ticket, f.code, code, len(f.lines), n, f.lines)
	}
}

// ranOnce asserts the script's marker file says it started exactly once.
func ranOnce(t *testing.T, marker string) {
	t.Helper()
	b, err := os.ReadFile(marker)
	if n := strings.Count(string(b), "run"); err != nil || n != 1 {
		t.Errorf("the script started %d times (%v); want exactly once", n, err)
	}
}

// isTransient reports an error a server retries on.
func isTransient(err error) bool { return err != nil && !errors.Is(err, context.Canceled) }
