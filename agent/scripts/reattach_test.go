//go:build !windows

package scripts

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// countingScript prints line1..lineN with pauses, then exits with code 7.
func countingScript(n int, pause string) string {
	return fmt.Sprintf("for i in $(seq 1 %d); do echo \"line$i\"; sleep %s; done; echo bye >&2; exit 7", n, pause)
}

func checkCountingLog(t *testing.T, st Status, n int) {
	t.Helper()
	checkSequence(t, st.Logs)
	var want []string
	for i := 1; i <= n; i++ {
		want = append(want, fmt.Sprintf("line%d", i))
	}
	var got []string
	for _, s := range texts(st.Logs, StdOut) {
		if strings.HasPrefix(s, "line") {
			got = append(got, s)
		}
	}
	if !slices.Equal(got, want) || !slices.Equal(texts(st.Logs, StdErr), []string{"bye"}) {
		t.Fatalf("log after restart:\n%s", logText(st.Logs))
	}
	if st.ExitCode != 7 {
		t.Fatalf("exit code %d, want 7", st.ExitCode)
	}
}

// Dropping the Manager is what the agent's death looks like from the script's side.
func TestReattachAfterManagerClose(t *testing.T) {
	cfg := testConfig(t)
	m1, err := NewManager(cfg)
	if err != nil {
		t.Fatal(err)
	}
	counter := filepath.Join(t.TempDir(), "runs")
	req := StartRequest{Ticket: "Survivor", TaskID: "ServerTasks-9", Isolation: FullIsolation,
		ScriptBody: "echo run >> '" + counter + "'; " + countingScript(6, "0.2")}
	mustStart(t, m1, req)
	waitForLine(t, m1, "Survivor", "line1", 10*time.Second)
	before, _ := m1.Status("Survivor", 0)
	m1.Close()

	m2 := newTestManager(t, cfg)
	// A retried Start after the restart is the same script, not a second run.
	mustStart(t, m2, req)
	// The re-attached script still holds the FullIsolation mutex.
	marker := filepath.Join(t.TempDir(), "survivor-done")
	mustStart(t, m2, StartRequest{Ticket: "Next", Isolation: FullIsolation,
		ScriptBody: "[ -e '" + marker + "' ] || { echo 'ran beside the re-attached script' >&2; exit 9; }"})
	waitForLine(t, m2, "Next", "##octopus[stdout-wait]", 5*time.Second)
	if st, _ := m2.Status("Next", 0); st.State != Pending || !hasLineContaining(st.Logs, "[ServerTasks-9]") {
		t.Fatalf("Next is %v, not waiting for the re-attached script:\n%s", st.State, logText(st.Logs))
	}

	st := waitComplete(t, m2, "Survivor", 15*time.Second)
	os.WriteFile(marker, nil, 0o600)
	checkCountingLog(t, st, 6)
	if !slices.Equal(st.Logs[:len(before.Logs)], before.Logs) {
		t.Fatal("records seen before the restart changed")
	}
	if b, _ := os.ReadFile(counter); string(b) != "run\n" {
		t.Fatalf("script ran %d times", strings.Count(string(b), "run"))
	}
	if next := waitComplete(t, m2, "Next", 10*time.Second); next.ExitCode != 0 {
		t.Fatalf("Next exit %d:\n%s", next.ExitCode, logText(next.Logs))
	}
}

// A real agent process killed with SIGKILL mid-script: the script carries on and a new
// agent reports every line and the exit code.
func TestReattachAfterAgentKilled(t *testing.T) {
	cfg := testConfig(t)
	agent := startAgentHelper(t, cfg.Home, "KillNine", countingScript(8, "0.15"))
	if err := agent.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	agent.Wait()

	m := newTestManager(t, cfg)
	state := readTestState(t, m, "KillNine")
	if state.State != Running || syscall.Kill(state.SupervisorPID, 0) != nil {
		t.Fatalf("after the agent died the script is %v, supervisor %d alive: %v", state.State, state.SupervisorPID, syscall.Kill(state.SupervisorPID, 0))
	}
	st := waitComplete(t, m, "KillNine", 15*time.Second)
	checkCountingLog(t, st, 8)
	if !processGone(state.SupervisorPID, 5*time.Second) {
		t.Error("supervisor still exists after the script completed")
	}
}

// The supervisor dies while no agent is running: the next agent reports an unknown result.
func TestSupervisorDiedWhileAgentDown(t *testing.T) {
	cfg := testConfig(t)
	m1, err := NewManager(cfg)
	if err != nil {
		t.Fatal(err)
	}
	mustStart(t, m1, StartRequest{Ticket: "Lost", ScriptBody: "echo hi; exec sleep 1000"})
	waitForLine(t, m1, "Lost", "hi", 10*time.Second)
	m1.Close()
	state := readTestState(t, m1, "Lost")
	t.Cleanup(func() { syscall.Kill(-state.ScriptPID, syscall.SIGKILL) })
	syscall.Kill(state.SupervisorPID, syscall.SIGKILL)
	if !processGone(state.SupervisorPID, 5*time.Second) {
		t.Fatal("supervisor did not die")
	}

	m2 := newTestManager(t, cfg)
	st, err := m2.Status("Lost", 0)
	if err != nil || st.State != Complete || st.ExitCode != ExitCodeUnknownResult || !slices.Contains(texts(st.Logs, StdOut), "hi") {
		t.Fatalf("%+v, %v", st, err)
	}
}

// A script still waiting for its mutex when the agent stops keeps its place and runs
// under the next agent, once.
func TestPendingScriptResumesAfterRestart(t *testing.T) {
	cfg := testConfig(t)
	m1, err := NewManager(cfg)
	if err != nil {
		t.Fatal(err)
	}
	release := filepath.Join(t.TempDir(), "release")
	counter := filepath.Join(t.TempDir(), "runs")
	mustStart(t, m1, StartRequest{Ticket: "Holder", ScriptBody: "while [ ! -e '" + release + "' ]; do sleep 0.05; done", Isolation: FullIsolation})
	mustStart(t, m1, StartRequest{Ticket: "Waiting", ScriptBody: "echo run >> '" + counter + "'; exit 5", Isolation: FullIsolation,
		Arguments: []string{"kept"}})
	if st, _ := m1.Status("Waiting", 0); st.State != Pending {
		t.Fatalf("Waiting is %v", st.State)
	}
	m1.Close()

	m2 := newTestManager(t, cfg)
	time.Sleep(200 * time.Millisecond)
	if st, _ := m2.Status("Waiting", 0); st.State != Pending {
		t.Fatalf("after restart Waiting is %v", st.State)
	}
	os.WriteFile(release, nil, 0o600)
	waitComplete(t, m2, "Holder", 10*time.Second)
	st := waitComplete(t, m2, "Waiting", 10*time.Second)
	if st.ExitCode != 5 {
		t.Fatalf("exit %d:\n%s", st.ExitCode, logText(st.Logs))
	}
	if b, _ := os.ReadFile(counter); string(b) != "run\n" {
		t.Fatalf("ran %d times", strings.Count(string(b), "run"))
	}
}

// Cancel reaches a re-attached script (through the request file and a verified signal).
func TestCancelReattachedScript(t *testing.T) {
	cfg := testConfig(t)
	cfg.CancelPollInterval = time.Hour // only the signal can make this prompt
	m1, err := NewManager(cfg)
	if err != nil {
		t.Fatal(err)
	}
	mustStart(t, m1, StartRequest{Ticket: "CancelLater", ScriptBody: "echo started; sleep 1000"})
	waitForLine(t, m1, "CancelLater", "started", 10*time.Second)
	m1.Close()
	m2 := newTestManager(t, cfg)
	state := readTestState(t, m2, "CancelLater")
	if _, err := m2.Cancel("CancelLater", 0); err != nil {
		t.Fatal(err)
	}
	st := waitComplete(t, m2, "CancelLater", 5*time.Second)
	if st.ExitCode != 128+int(syscall.SIGTERM) {
		t.Fatalf("exit %d", st.ExitCode)
	}
	if !groupGone(state.ScriptPID, 2*time.Second) {
		t.Fatal("script processes left")
	}
}

// A workspace left by upstream Tentacle (its own scriptstate.json, no format marker)
// reads as upstream reports it after a restart.
func TestUpstreamWorkspaceIsUnknownResult(t *testing.T) {
	cfg := testConfig(t)
	dir := filepath.Join(cfg.Home, "Work", "UpstreamTicket")
	os.MkdirAll(dir, 0o700)
	os.WriteFile(filepath.Join(dir, stateFileName),
		[]byte(`{"Created":"2024-05-01T10:00:00.1234567+00:00","Started":"2024-05-01T10:00:01+00:00","Completed":null,"State":1,"ExitCode":null,"RanToCompletion":null}`), 0o600)
	done := filepath.Join(cfg.Home, "Work", "UpstreamDone")
	os.MkdirAll(done, 0o700)
	os.WriteFile(filepath.Join(done, stateFileName), []byte(`{"Created":"2024-05-01T10:00:00+00:00","State":2,"ExitCode":12,"RanToCompletion":true}`), 0o600)
	m := newTestManager(t, cfg)
	if st, err := m.Status("UpstreamTicket", 0); err != nil || st.State != Complete || st.ExitCode != ExitCodeUnknownResult {
		t.Fatalf("running upstream script: %+v, %v", st, err)
	}
	if st, err := m.Status("UpstreamDone", 0); err != nil || st.State != Complete || st.ExitCode != 12 {
		t.Fatalf("finished upstream script: %+v, %v", st, err)
	}
}

// An agent that dies right after launching, before its supervisor took charge: the next
// agent launches the script again instead of reporting a result it cannot know; the
// script still runs once.
// supervisorNeverInCharge is a supervisor command that never takes charge of its
// launch and lives until end is called (or the test's files are removed). A first
// Manager must be closed while it lives: one that saw its own supervisor end
// uncharged would record the launch as failed (ExitCodeLaunchFailed), so a fixed
// lifetime such as "sleep 0.3" decided the outcome by how fast a loaded machine
// got to Close.
type supervisorNeverInCharge struct {
	command       []string
	started, hold string
}

func newSupervisorNeverInCharge(t *testing.T) *supervisorNeverInCharge {
	dir := t.TempDir()
	f := &supervisorNeverInCharge{started: filepath.Join(dir, "started"), hold: filepath.Join(dir, "hold")}
	if err := os.WriteFile(f.hold, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	f.command = []string{"/bin/sh", "-c",
		": > '" + f.started + "'; while [ -e '" + f.hold + "' ]; do sleep 0.05; done"}
	return f
}

// waitStarted returns once the supervisor runs, so its launch is in the state file.
func (f *supervisorNeverInCharge) waitStarted(t *testing.T) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if _, err := os.Stat(f.started); err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the stand-in supervisor did not start within 30 s")
		}
	}
}

func (f *supervisorNeverInCharge) end(t *testing.T) {
	t.Helper()
	if err := os.Remove(f.hold); err != nil {
		t.Fatal(err)
	}
}

func TestRelaunchWhenSupervisorNeverStarted(t *testing.T) {
	cfg := testConfig(t)
	slow := cfg
	// A "supervisor" that never takes charge, standing in for one still starting up.
	fake := newSupervisorNeverInCharge(t)
	slow.SupervisorCommand = fake.command
	m1, err := NewManager(slow)
	if err != nil {
		t.Fatal(err)
	}
	counter := filepath.Join(t.TempDir(), "runs")
	mustStart(t, m1, StartRequest{Ticket: "Relaunch", ScriptBody: "echo run >> '" + counter + "'; exit 6"})
	fake.waitStarted(t)
	m1.Close()
	fake.end(t)

	m2 := newTestManager(t, cfg)
	if st := waitComplete(t, m2, "Relaunch", 10*time.Second); st.ExitCode != 6 {
		t.Fatalf("exit %d:\n%s", st.ExitCode, logText(st.Logs))
	}
	if b, _ := os.ReadFile(counter); string(b) != "run\n" {
		t.Fatalf("ran %d times", strings.Count(string(b), "run"))
	}
}

func TestSupervisorThatNeverStartsIsALaunchFailure(t *testing.T) {
	cfg := testConfig(t)
	cfg.SupervisorCommand = []string{"/bin/sh", "-c", "echo broken >&2; exit 1"}
	m := newTestManager(t, cfg)
	st := mustStart(t, m, StartRequest{Ticket: "Broken", ScriptBody: "true", WaitForFinish: 10 * time.Second})
	if st.State != Complete || st.ExitCode != ExitCodeLaunchFailed || !hasLineContaining(st.Logs, supervisorErrName) {
		t.Fatalf("%v %d:\n%s", st.State, st.ExitCode, logText(st.Logs))
	}
	if b, _ := os.ReadFile(filepath.Join(m.workspace("Broken"), supervisorErrName)); string(b) != "broken\n" {
		t.Errorf("%s = %q", supervisorErrName, b)
	}
}

// After a reboot, neither a script still waiting for its mutex nor one whose supervisor
// never started is launched: the writes before a launch are not fsynced (see boot.go), and
// the server has given up on them. Both end with an unknown result.
func TestNothingFromAnEarlierBootIsLaunched(t *testing.T) {
	if bootID() == "" {
		t.Skip("SKIP: this platform has no boot ID; pending scripts are fsynced and resumed instead")
	}
	cfg := testConfig(t)
	slow := cfg
	fake := newSupervisorNeverInCharge(t)
	slow.SupervisorCommand = fake.command
	m1, err := NewManager(slow)
	if err != nil {
		t.Fatal(err)
	}
	counter := filepath.Join(t.TempDir(), "runs")
	mustStart(t, m1, StartRequest{Ticket: "NeverStarted", ScriptBody: "echo run >> '" + counter + "'"})
	fake.waitStarted(t)
	m1.Close()
	fake.end(t)
	launched := readTestState(t, m1, "NeverStarted")
	if launched.State != Running || launched.Launch == nil || launched.SupervisorPID != 0 {
		t.Fatalf("NeverStarted: state %v, launch %v, supervisor PID %d; want launched with no supervisor in charge",
			launched.State, launched.Launch != nil, launched.SupervisorPID)
	}
	// The Manager that sets up Waiting must not see NeverStarted: in this boot it
	// would rightly launch it again (TestRelaunchWhenSupervisorNeverStarted).
	neverStarted := filepath.Join(cfg.Home, "Work", "NeverStarted")
	aside := filepath.Join(t.TempDir(), "NeverStarted")
	if err := os.Rename(neverStarted, aside); err != nil {
		t.Fatal(err)
	}
	m1, err = NewManager(cfg)
	if err != nil {
		t.Fatal(err)
	}
	release := filepath.Join(t.TempDir(), "release")
	mustStart(t, m1, StartRequest{Ticket: "Holder", ScriptBody: "while [ ! -e '" + release + "' ]; do sleep 0.05; done", Isolation: FullIsolation})
	mustStart(t, m1, StartRequest{Ticket: "Waiting", ScriptBody: "echo run >> '" + counter + "'", Isolation: FullIsolation})
	m1.Close()
	if err := os.Rename(aside, neverStarted); err != nil {
		t.Fatal(err)
	}
	defer os.WriteFile(release, nil, 0o600)
	for _, ticket := range []string{"NeverStarted", "Waiting"} {
		dir := filepath.Join(cfg.Home, "Work", ticket)
		st, err := readState(dir)
		if err != nil || st.BootID != bootID() {
			t.Fatalf("%s: boot %q, %v", ticket, st.BootID, err)
		}
		st.BootID = "00000000-0000-0000-0000-000000000000" // as if written before a reboot
		if err := writeState(dir, st, survivesProcessCrash); err != nil {
			t.Fatal(err)
		}
	}

	m2 := newTestManager(t, cfg)
	for _, ticket := range []string{"NeverStarted", "Waiting"} {
		st := waitComplete(t, m2, ticket, 5*time.Second)
		if st.ExitCode != ExitCodeUnknownResult {
			t.Errorf("%s: exit %d:\n%s", ticket, st.ExitCode, logText(st.Logs))
		}
	}
	if st, _ := m2.Status("Waiting", 0); !hasLineContaining(st.Logs, "The machine restarted before this script started") {
		t.Errorf("Waiting's log does not say why:\n%s", logText(st.Logs))
	}
	// Nothing was launched again, nor can be: a supervisor runs a script only while
	// the state file says Running with its launch's token, and both are settled.
	if st := readTestState(t, m1, "NeverStarted"); st.Launch == nil || st.Launch.Token != launched.Launch.Token {
		t.Errorf("NeverStarted was launched again: %+v", st.Launch)
	}
	if st := readTestState(t, m1, "Waiting"); st.Launch != nil {
		t.Errorf("Waiting was launched: %+v", st.Launch)
	}
	if b, err := os.ReadFile(counter); err == nil {
		t.Fatalf("a script from an earlier boot ran: %q", b)
	}
}
