//go:build !windows

package scripts

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

func TestScriptOutputAndExitCode(t *testing.T) {
	m := newTestManager(t, testConfig(t))
	req := StartRequest{
		Ticket:     "OutputTicket1",
		ScriptBody: "exit 99",
		// CRLF line endings: bash would choke on "exit 3\r" if they were not converted.
		Scripts: map[string]string{"Bash": "echo out1\r\n" +
			"echo err1 >&2\r\n" +
			"printf 'a\\r\\nb\\rc\\n'\r\n" +
			"printf '%s|' \"$@\"\r\n" +
			"echo\r\n" +
			"cat sub/data.txt; echo\r\n" +
			"echo \"cwd=$PWD\"\r\n" +
			"echo \"env=$EXTRA_VAR\"\r\n" +
			"echo err2 >&2\r\n" +
			"exit 3\r\n"},
		Arguments: []string{"a b", "c"},
		Files:     []ScriptFile{{Name: `sub\data.txt`, Contents: strings.NewReader("payload")}},
	}
	m.cfg.Environment = append(m.cfg.Environment, "EXTRA_VAR=extra")
	begin := time.Now().UTC()
	st := mustStart(t, m, withWait(req, 20*time.Second))
	if st.State != Complete || st.ExitCode != 3 {
		t.Fatalf("state %v exit %d, want Complete 3; logs:\n%s", st.State, st.ExitCode, logText(st.Logs))
	}
	checkSequence(t, st.Logs)
	if st.NextLogSequence != int64(len(st.Logs)) {
		t.Errorf("NextLogSequence %d with %d records", st.NextLogSequence, len(st.Logs))
	}
	ws := m.workspace(req.Ticket)
	wantOut := []string{"##octopus[stdout-verbose]", "Acquired isolation mutex RunningScript with NoIsolation", "##octopus[stdout-default]",
		"out1", "a", "b", "c", "a b|c|", "payload", "cwd=" + ws, "env=extra"}
	if got := texts(st.Logs, StdOut); !slices.Equal(got, wantOut) {
		t.Errorf("stdout lines\n%q\nwant\n%q", got, wantOut)
	}
	if got := texts(st.Logs, StdErr); !slices.Equal(got, []string{"err1", "err2"}) {
		t.Errorf("stderr lines %q", got)
	}
	debug := texts(st.Logs, Debug)
	if len(debug) != 4 || debug[0] != "Executable directory is /bin" || debug[1] != "Executable name or full path: /bin/bash" ||
		!strings.HasPrefix(debug[2], "Starting /bin/bash in working directory '"+ws+"' using 'utf-8' encoding running as '") ||
		debug[3] != "Process /bin/bash in "+ws+" exited with code 3" {
		t.Errorf("debug lines %q", debug)
	}
	end := time.Now().UTC()
	for _, l := range st.Logs {
		if l.Occurred.Location() != time.UTC || l.Occurred.Before(begin.Add(-time.Second)) || l.Occurred.After(end) {
			t.Errorf("record %d occurred at %v, outside %v..%v", l.Sequence, l.Occurred, begin, end)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(ws, "Bootstrap.sh")); strings.Contains(string(b), "\r") || !strings.HasPrefix(string(b), "echo out1\n") {
		t.Errorf("Bootstrap.sh = %q", b)
	}
}

func TestWaitForFinish(t *testing.T) {
	m := newTestManager(t, testConfig(t))
	begin := time.Now()
	st := mustStart(t, m, StartRequest{Ticket: "Slow", ScriptBody: "sleep 2", WaitForFinish: 300 * time.Millisecond})
	if took := time.Since(begin); st.State == Complete || took < 300*time.Millisecond || took > 1500*time.Millisecond {
		t.Fatalf("state %v after %v; want a return after about 300ms while running", st.State, took)
	}
	// Without a wait, Start returns at once.
	st = mustStart(t, m, StartRequest{Ticket: "NoWait", ScriptBody: "echo hi"})
	if st.State == Complete && st.ExitCode != 0 {
		t.Fatalf("unexpected %+v", st)
	}
	waitComplete(t, m, "NoWait", 10*time.Second)
	waitComplete(t, m, "Slow", 10*time.Second)
}

func TestStatusPaging(t *testing.T) {
	cfg := testConfig(t)
	m := newTestManager(t, cfg)
	st := mustStart(t, m, StartRequest{Ticket: "Paging", ScriptBody: "for i in $(seq 1 300); do echo \"l$i\"; done", WaitForFinish: 20 * time.Second})
	if st.State != Complete || st.ExitCode != 0 {
		t.Fatalf("%v %d", st.State, st.ExitCode)
	}
	all := st.Logs
	checkSequence(t, all)
	total := int64(len(all))
	for _, after := range []int64{0, 1, 150, total - 1, total, total + 10} {
		page, err := m.Status("Paging", after)
		if err != nil {
			t.Fatal(err)
		}
		wantN := max(0, total-after)
		if int64(len(page.Logs)) != wantN {
			t.Fatalf("after %d: %d records, want %d", after, len(page.Logs), wantN)
		}
		if wantN > 0 && page.Logs[0] != all[after] {
			t.Fatalf("after %d: first %+v, want %+v", after, page.Logs[0], all[after])
		}
		if want := max(after, total); wantN == 0 && page.NextLogSequence != after || wantN > 0 && page.NextLogSequence != want {
			t.Fatalf("after %d: next %d", after, page.NextLogSequence)
		}
		if page.State != Complete || page.ExitCode != 0 {
			t.Fatalf("after %d: %v %d", after, page.State, page.ExitCode)
		}
	}
	// With a small response limit the client pages, and sees Complete only on the last page.
	m.cfg.MaxStatusLogBytes = 200
	var got []LogRecord
	next := int64(0)
	for i := 0; ; i++ {
		page, err := m.Status("Paging", next)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, page.Logs...)
		next = page.NextLogSequence
		if page.State == Complete {
			break
		}
		if page.State != Running || page.ExitCode != 0 || len(page.Logs) == 0 || i > 1000 {
			t.Fatalf("page %d: %v %d with %d records", i, page.State, page.ExitCode, len(page.Logs))
		}
	}
	if !slices.Equal(got, all) {
		t.Fatal("paged records differ from the full read")
	}
}

func TestStartIsIdempotent(t *testing.T) {
	m := newTestManager(t, testConfig(t))
	counter := filepath.Join(t.TempDir(), "runs")
	req := StartRequest{Ticket: "Once", ScriptBody: "echo run >> '" + counter + "'; sleep 0.5; echo done"}
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := m.Start(context.Background(), req); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	st := waitComplete(t, m, "Once", 10*time.Second)
	// And again after completion: still the same script, not a new run.
	again := mustStart(t, m, withWait(req, time.Second))
	if again.State != Complete || len(again.Logs) != len(st.Logs) {
		t.Fatalf("retried start after completion: %v with %d records, want %d", again.State, len(again.Logs), len(st.Logs))
	}
	if b, _ := os.ReadFile(counter); string(b) != "run\n" {
		t.Fatalf("script ran %d times", strings.Count(string(b), "run"))
	}
}

func TestFullIsolationSerialises(t *testing.T) {
	m := newTestManager(t, testConfig(t))
	shared := t.TempDir()
	// mkdir fails if the other script is inside its critical section.
	body := "mkdir '" + shared + "/inside' || exit 9; sleep 0.4; rmdir '" + shared + "/inside'"
	mustStart(t, m, StartRequest{Ticket: "FullA", TaskID: "ServerTasks-1", ScriptBody: body, Isolation: FullIsolation})
	mustStart(t, m, StartRequest{Ticket: "FullB", TaskID: "ServerTasks-2", ScriptBody: body, Isolation: FullIsolation})
	a := waitComplete(t, m, "FullA", 10*time.Second)
	b := waitComplete(t, m, "FullB", 10*time.Second)
	if a.ExitCode != 0 || b.ExitCode != 0 {
		t.Fatalf("exit codes %d and %d: the scripts overlapped", a.ExitCode, b.ExitCode)
	}
	if !slices.Equal(texts(b.Logs, StdOut)[:3], []string{"##octopus[stdout-wait]",
		"Waiting for the script in task [ServerTasks-1](~/app#/tasks/ServerTasks-1) to finish. This script requires that no other scripts run on this machine at the same time.",
		"##octopus[stdout-default]"}) {
		t.Errorf("second script's log:\n%s", logText(b.Logs))
	}
}

func TestNoIsolationRunsConcurrently(t *testing.T) {
	m := newTestManager(t, testConfig(t))
	shared := t.TempDir()
	// Each script waits for the other to arrive; run one at a time, both would time out.
	rendezvous := func(me, other string) string {
		return "touch '" + shared + "/" + me + "'; for i in $(seq 100); do [ -e '" + shared + "/" + other + "' ] && exit 0; sleep 0.05; done; exit 1"
	}
	mustStart(t, m, StartRequest{Ticket: "SharedA", ScriptBody: rendezvous("a", "b"), Isolation: NoIsolation})
	mustStart(t, m, StartRequest{Ticket: "SharedB", ScriptBody: rendezvous("b", "a"), Isolation: NoIsolation})
	// A differently named mutex is independent even with FullIsolation.
	mustStart(t, m, StartRequest{Ticket: "OtherMutex", ScriptBody: rendezvous("c", "a"), Isolation: FullIsolation, MutexName: "Other"})
	for _, ticket := range []string{"SharedA", "SharedB", "OtherMutex"} {
		if st := waitComplete(t, m, ticket, 15*time.Second); st.ExitCode != 0 {
			t.Errorf("%s exit %d: did not run concurrently", ticket, st.ExitCode)
		}
	}
}

func TestMutexTimeout(t *testing.T) {
	m := newTestManager(t, testConfig(t))
	release := filepath.Join(t.TempDir(), "release")
	hold := "while [ ! -e '" + release + "' ]; do sleep 0.05; done"
	mustStart(t, m, StartRequest{Ticket: "Holder", TaskID: "ServerTasks-7", ScriptBody: hold, Isolation: FullIsolation})
	begin := time.Now()
	st := mustStart(t, m, StartRequest{Ticket: "TimesOut", ScriptBody: "echo must not run", Isolation: NoIsolation,
		MutexTimeout: 300 * time.Millisecond, WaitForFinish: 10 * time.Second})
	took := time.Since(begin)
	if st.State != Complete || st.ExitCode != ExitCodeTimeout || took < 300*time.Millisecond {
		t.Fatalf("%v exit %d after %v; logs:\n%s", st.State, st.ExitCode, took, logText(st.Logs))
	}
	if !hasLineContaining(st.Logs, "[ServerTasks-7](~/app#/tasks/ServerTasks-7)") || texts(st.Logs, StdErr)[0] != "Script execution timed out." ||
		hasLineContaining(st.Logs, "must not run") {
		t.Errorf("logs:\n%s", logText(st.Logs))
	}
	// The maximum timeout means no timeout.
	mustStart(t, m, StartRequest{Ticket: "Forever", ScriptBody: "true", Isolation: FullIsolation, MutexTimeout: MaxMutexTimeout})
	time.Sleep(300 * time.Millisecond)
	if st, _ := m.Status("Forever", 0); st.State != Pending {
		t.Fatalf("Forever is %v", st.State)
	}
	os.WriteFile(release, nil, 0o600)
	if st := waitComplete(t, m, "Forever", 10*time.Second); st.ExitCode != 0 {
		t.Fatalf("Forever exit %d", st.ExitCode)
	}
}

func TestCancelWhileWaiting(t *testing.T) {
	m := newTestManager(t, testConfig(t))
	release := filepath.Join(t.TempDir(), "release")
	mustStart(t, m, StartRequest{Ticket: "Holder", ScriptBody: "while [ ! -e '" + release + "' ]; do sleep 0.05; done", Isolation: FullIsolation})
	mustStart(t, m, StartRequest{Ticket: "Waiter", ScriptBody: "echo must not run", Isolation: FullIsolation})
	if st, _ := m.Status("Waiter", 0); st.State != Pending {
		t.Fatalf("waiter is %v", st.State)
	}
	if _, err := m.Cancel("Waiter", 0); err != nil {
		t.Fatal(err)
	}
	st := waitComplete(t, m, "Waiter", 5*time.Second)
	if st.ExitCode != ExitCodeCanceled || texts(st.Logs, StdErr)[0] != "Script execution canceled." || hasLineContaining(st.Logs, "must not run") {
		t.Fatalf("exit %d; logs:\n%s", st.ExitCode, logText(st.Logs))
	}
	os.WriteFile(release, nil, 0o600)
	waitComplete(t, m, "Holder", 10*time.Second)
}

// processGone waits for a process to disappear; a zombie counts as gone only once reaped.
func processGone(pid int, limit time.Duration) bool {
	deadline := time.Now().Add(limit)
	for {
		if errors.Is(syscall.Kill(pid, 0), syscall.ESRCH) {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func groupGone(pgid int, limit time.Duration) bool { return processGone(-pgid, limit) }

func readPID(t *testing.T, path string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	return pid
}

func TestCancelKillsProcessGroup(t *testing.T) {
	cfg := testConfig(t)
	cfg.KillGracePeriod = 700 * time.Millisecond
	m := newTestManager(t, cfg)
	pids := t.TempDir()
	body := "sleep 1000 & echo $! > '" + pids + "/bg'\n" +
		// This one ignores SIGTERM, so only the SIGKILL after the grace period ends it.
		"(trap '' TERM; sleep 1000) & echo $! > '" + pids + "/stubborn'\n" +
		"echo started\n" +
		"wait\n"
	mustStart(t, m, StartRequest{Ticket: "Cancelled", ScriptBody: body})
	waitForLine(t, m, "Cancelled", "started", 10*time.Second)
	state := readTestState(t, m, "Cancelled")
	bg, stubborn := readPID(t, pids+"/bg"), readPID(t, pids+"/stubborn")

	begin := time.Now()
	st, err := m.Cancel("Cancelled", 0)
	if err != nil {
		t.Fatal(err)
	}
	if st.State == Complete || time.Since(begin) > 500*time.Millisecond {
		t.Fatalf("Cancel waited: %v after %v", st.State, time.Since(begin))
	}
	st = waitComplete(t, m, "Cancelled", 15*time.Second)
	took := time.Since(begin)
	if st.ExitCode != 128+int(syscall.SIGTERM) {
		t.Errorf("exit code %d, want %d (bash ended by SIGTERM)", st.ExitCode, 128+int(syscall.SIGTERM))
	}
	if took < cfg.KillGracePeriod {
		t.Errorf("complete after %v, before the grace period: the stubborn child cannot have been killed", took)
	}
	for name, pid := range map[string]int{"shell": state.ScriptPID, "background sleep": bg, "TERM-ignoring subshell": stubborn} {
		if !processGone(pid, 2*time.Second) {
			t.Errorf("%s (pid %d) still exists", name, pid)
		}
	}
	if !groupGone(state.ScriptPID, 2*time.Second) {
		t.Errorf("process group %d still has members", state.ScriptPID)
	}
	if !processGone(readTestState(t, m, "Cancelled").SupervisorPID, 2*time.Second) {
		t.Error("supervisor still exists")
	}
}

func TestSupervisorKilled(t *testing.T) {
	m := newTestManager(t, testConfig(t))
	// exec: the sleep is the shell itself, so the parent-death signal reaches it on Linux.
	mustStart(t, m, StartRequest{Ticket: "Orphaned", ScriptBody: "echo hi; exec sleep 1000"})
	waitForLine(t, m, "Orphaned", "hi", 10*time.Second)
	state := readTestState(t, m, "Orphaned")
	t.Cleanup(func() { syscall.Kill(-state.ScriptPID, syscall.SIGKILL) })
	if err := syscall.Kill(state.SupervisorPID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	st := waitComplete(t, m, "Orphaned", 10*time.Second)
	if st.ExitCode != ExitCodeUnknownResult {
		t.Fatalf("exit %d, want %d", st.ExitCode, ExitCodeUnknownResult)
	}
	if !hasLineContaining(st.Logs, "ended without recording the script's result") {
		t.Errorf("logs:\n%s", logText(st.Logs))
	}
	checkSequence(t, st.Logs)
	if !groupGone(state.ScriptPID, 2*time.Second) && isLinux() {
		t.Error("the script outlived its supervisor despite the parent-death signal")
	}
}

func isLinux() bool { _, err := os.Stat("/proc/self/stat"); return err == nil }

func TestUnknownTickets(t *testing.T) {
	m := newTestManager(t, testConfig(t))
	for name, call := range map[string]func(string, int64) (Status, error){"Status": m.Status, "Cancel": m.Cancel, "CompleteWithStatus": m.CompleteWithStatus} {
		st, err := call("NeverStarted", 5)
		if err != nil || st.State != Complete || st.ExitCode != ExitCodeUnknownScript || len(st.Logs) != 0 || st.NextLogSequence != 5 {
			t.Errorf("%s: %+v, %v", name, st, err)
		}
		if _, err := call("../escape", 0); err == nil {
			t.Errorf("%s accepted a ticket with a path in it", name)
		}
	}
	if err := m.Complete("NeverStarted"); err != nil {
		t.Errorf("Complete: %v", err)
	}
	if err := m.Complete("../escape"); err == nil {
		t.Error("Complete accepted a ticket with a path in it")
	}
	if _, err := m.Start(context.Background(), StartRequest{Ticket: "a/b"}); err == nil {
		t.Error("Start accepted a bad ticket")
	}
	if _, err := m.Start(context.Background(), StartRequest{Ticket: "BadFile", Files: []ScriptFile{{Name: "../../etc/x"}}}); err == nil ||
		!strings.Contains(err.Error(), "leaves the workspace") {
		t.Errorf("bad file name: %v", err)
	}
	if _, err := os.Stat(m.workspace("BadFile")); err == nil {
		t.Error("a rejected Start left a workspace")
	}
	if _, err := m.Start(context.Background(), StartRequest{Ticket: "BadIsolation", Isolation: 7}); err == nil {
		t.Error("Start accepted an unknown isolation level")
	}
}

func TestCompleteRemovesWorkspace(t *testing.T) {
	m := newTestManager(t, testConfig(t))
	st := mustStart(t, m, StartRequest{Ticket: "Done", ScriptBody: "echo one; echo two", WaitForFinish: 10 * time.Second})
	if st.State != Complete {
		t.Fatal(st.State)
	}
	final, err := m.CompleteWithStatus("Done", 0)
	if err != nil || final.State != Complete || final.ExitCode != 0 || len(final.Logs) != len(st.Logs) {
		t.Fatalf("Complete returned %+v, %v", final, err)
	}
	if _, err := os.Stat(m.workspace("Done")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("workspace still there: %v", err)
	}
	if st, _ := m.Status("Done", 0); st.ExitCode != ExitCodeUnknownScript {
		t.Fatalf("after Complete: %+v", st)
	}
	if err := m.Complete("Done"); err != nil {
		t.Fatal("second Complete:", err)
	}
	// The ticket can be used afresh.
	if st := mustStart(t, m, StartRequest{Ticket: "Done", ScriptBody: "exit 4", WaitForFinish: 10 * time.Second}); st.ExitCode != 4 {
		t.Fatalf("restarted ticket: %+v", st)
	}
	entries, _ := os.ReadDir(m.work)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), tombstonePrefix) {
			t.Errorf("deleted workspace left behind: %s", e.Name())
		}
	}
}

func TestCompleteWhileRunningCancelsThenRemoves(t *testing.T) {
	m := newTestManager(t, testConfig(t))
	mustStart(t, m, StartRequest{Ticket: "StillRunning", ScriptBody: "echo started; sleep 1000"})
	waitForLine(t, m, "StillRunning", "started", 10*time.Second)
	st, err := m.CompleteWithStatus("StillRunning", 0)
	if err != nil || st.State == Complete {
		t.Fatalf("Complete of a running script: %+v, %v", st, err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := os.Stat(m.workspace("StillRunning")); errors.Is(err, os.ErrNotExist) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("workspace not removed after the script was cancelled")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if st, _ := m.Status("StillRunning", 0); st.ExitCode != ExitCodeUnknownScript {
		t.Fatalf("after removal: %+v", st)
	}
}

func TestTornLogRecordInWorkspace(t *testing.T) {
	m := newTestManager(t, testConfig(t))
	st := mustStart(t, m, StartRequest{Ticket: "Torn", ScriptBody: "echo a; echo b", WaitForFinish: 10 * time.Second})
	f, err := os.OpenFile(filepath.Join(m.workspace("Torn"), logFileName), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("0badf00d 99 stdout 2026-01-02T03:04:05Z a record cut sho")
	f.Close()
	again, err := m.Status("Torn", 0)
	if err != nil || !slices.Equal(again.Logs, st.Logs) || again.State != Complete {
		t.Fatalf("with a torn tail: %v\n%s", err, logText(again.Logs))
	}
}

func TestLaunchFailure(t *testing.T) {
	cfg := testConfig(t)
	cfg.BashPath = "/nonexistent/bash"
	m := newTestManager(t, cfg)
	st := mustStart(t, m, StartRequest{Ticket: "NoShell", ScriptBody: "true", WaitForFinish: 10 * time.Second})
	if st.State != Complete || st.ExitCode != ExitCodeLaunchFailed || !hasLineContaining(st.Logs, "Cannot start /nonexistent/bash") {
		t.Fatalf("%v %d\n%s", st.State, st.ExitCode, logText(st.Logs))
	}
}

// Supervisors run in another directory, so a relative home must not leak into the paths
// they are given.
func TestRelativeHome(t *testing.T) {
	t.Chdir(t.TempDir())
	cfg := testConfig(t)
	cfg.Home = "home"
	m := newTestManager(t, cfg)
	if st := mustStart(t, m, StartRequest{Ticket: "Rel", ScriptBody: "echo ok", WaitForFinish: 10 * time.Second}); st.ExitCode != 0 ||
		!slices.Contains(texts(st.Logs, StdOut), "ok") {
		t.Fatalf("%+v", st)
	}
}
