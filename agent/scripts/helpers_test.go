package scripts

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The test binary doubles as the supervisor (Config.SupervisorCommand defaults to this
// executable followed by SupervisorArg) and as a throwaway agent process that a test can
// kill -9.
const agentHelperArg = "test-agent-helper"

// leakMarker is put in the environment of every process the tests start, directly or
// through a supervisor, so that TestMain can find any that outlive the tests.
var leakMarker = "TENTACLE_SCRIPTS_TEST_RUN=" + strconv.Itoa(os.Getpid())

// startAgentHelper starts this test binary as an agent process (runAgentHelper) running a
// script, and returns once the script's first line is in the log.
func startAgentHelper(t *testing.T, args ...string) *exec.Cmd {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	agent := exec.Command(exe, append([]string{agentHelperArg}, args...)...)
	agent.Env = append(os.Environ(), leakMarker)
	agent.Stderr = os.Stderr
	out, _ := agent.StdoutPipe()
	if err := agent.Start(); err != nil {
		t.Fatal(err)
	}
	ready := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(out).ReadString('\n')
		ready <- line
	}()
	select {
	case line := <-ready:
		if strings.TrimSpace(line) != "ready" {
			agent.Process.Kill()
			agent.Wait()
			t.Fatalf("agent helper said %q", line)
		}
	case <-time.After(30 * time.Second):
		agent.Process.Kill()
		agent.Wait()
		t.Fatal("agent helper did not start the script")
	}
	return agent
}

// runHelperProcess runs what TestMain was started for when the test binary is a
// supervisor or an agent helper, and exits; otherwise it returns.
func runHelperProcess() {
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case SupervisorArg:
			os.Exit(Supervise(os.Args[2:]))
		case agentHelperArg:
			os.Exit(runAgentHelper(os.Args[2:]))
		case "version":
			// A copy of the test binary standing in for tentacle-supervisor (findsupervisor_test.go).
			if msg := os.Getenv(testSupervisorFailEnv); msg != "" {
				fmt.Fprintln(os.Stderr, msg)
				os.Exit(3)
			}
			fmt.Println(os.Getenv(testSupervisorVersionEnv))
			os.Exit(0)
		}
	}
}

// runAgentHelper is an agent process for the kill -9 test: it starts a script, reports
// "ready" on stdout once the script's first line is in the log, and waits to be killed.
func runAgentHelper(args []string) int {
	home, ticket, body := args[0], args[1], args[2]
	cfg := Config{Home: home, Environment: []string{leakMarker}}
	if len(args) > 3 {
		cfg.PowerShellPath = args[3]
	}
	m, err := NewManager(cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if _, err := m.Start(context.Background(), StartRequest{Ticket: ticket, ScriptBody: body, Isolation: FullIsolation}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	for {
		st, err := m.Status(ticket, 0)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		for _, l := range st.Logs {
			if l.Source == StdOut && l.Text == "line1" {
				fmt.Println("ready")
				select {}
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// testConfig is a configuration with short timeouts for tests.
func testConfig(t *testing.T) Config {
	return Config{
		Home:                 t.TempDir(),
		Environment:          []string{leakMarker},
		KillGracePeriod:      2 * time.Second,
		OutputDrainTimeout:   time.Second,
		CancelPollInterval:   50 * time.Millisecond,
		ReattachPollInterval: 50 * time.Millisecond,
		LogSyncInterval:      100 * time.Millisecond,
	}
}

// newTestManager starts a Manager that, at the end of the test, cancels whatever it still
// runs and waits for it, so no test leaves a process behind.
func newTestManager(t *testing.T, cfg Config) *Manager {
	t.Helper()
	m, err := NewManager(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stopAll(t, m) })
	return m
}

func stopAll(t *testing.T, m *Manager) {
	m.mu.Lock()
	closed := m.closed
	var all []*script
	for _, s := range m.scripts {
		all = append(all, s)
	}
	m.mu.Unlock()
	if closed {
		return
	}
	for _, s := range all {
		_, _ = m.Cancel(s.ticket, 0)
	}
	for _, s := range all {
		select {
		case <-s.done:
		case <-time.After(30 * time.Second):
			t.Errorf("script %s did not stop after cancel", s.ticket)
		}
	}
	m.Close()
}

// waitComplete polls Status until the script is Complete and returns every record.
func waitComplete(t *testing.T, m *Manager, ticket string, limit time.Duration) Status {
	t.Helper()
	deadline := time.Now().Add(limit)
	var all []LogRecord
	var next int64
	for {
		st, err := m.Status(ticket, next)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, st.Logs...)
		next = st.NextLogSequence
		if st.State == Complete {
			st.Logs = all
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("script %s not complete after %v; state %v, logs:\n%s", ticket, limit, st.State, logText(all))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitForLine polls Status until a record with text appears.
func waitForLine(t *testing.T, m *Manager, ticket, text string, limit time.Duration) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		st, err := m.Status(ticket, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range st.Logs {
			if l.Text == text {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no line %q from %s after %v; logs:\n%s", text, ticket, limit, logText(st.Logs))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func texts(logs []LogRecord, src Source) []string {
	var out []string
	for _, l := range logs {
		if l.Source == src {
			out = append(out, l.Text)
		}
	}
	return out
}

func hasLineContaining(logs []LogRecord, part string) bool {
	for _, l := range logs {
		if strings.Contains(l.Text, part) {
			return true
		}
	}
	return false
}

// checkSequence asserts records are numbered 1..n without gaps.
func checkSequence(t *testing.T, logs []LogRecord) {
	t.Helper()
	for i, l := range logs {
		if l.Sequence != int64(i+1) {
			t.Fatalf("record %d has sequence %d; logs:\n%s", i, l.Sequence, logText(logs))
		}
	}
}

func mustStart(t *testing.T, m *Manager, req StartRequest) Status {
	t.Helper()
	st, err := m.Start(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func readTestState(t *testing.T, m *Manager, ticket string) *scriptState {
	t.Helper()
	st, err := readState(m.workspace(ticket))
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func withWait(req StartRequest, d time.Duration) StartRequest {
	req.WaitForFinish = d
	return req
}
