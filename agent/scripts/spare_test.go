//go:build !windows

package scripts

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// waitSpare returns the PID of the Manager's spare supervisor once it has one.
func waitSpare(t *testing.T, m *Manager) int {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		m.spareMu.Lock()
		sp := m.spare
		m.spareMu.Unlock()
		if sp != nil {
			return sp.cmd.Process.Pid
		}
		if time.Now().After(deadline) {
			t.Fatal("no spare supervisor 30 s after a launch")
		}
	}
}

// goneOrZombie: the process has exited (a zombie has exited too; reaping it is its
// parent's business, or init's).
func goneOrZombie(pid int, limit time.Duration) bool {
	for deadline := time.Now().Add(limit); ; time.Sleep(20 * time.Millisecond) {
		stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if err != nil && isLinux() || err == nil && isZombieStat(string(stat)) {
			return true
		}
		if !isLinux() && syscall.Kill(pid, 0) != nil {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
	}
}

// After a launch the Manager starts a spare supervisor, and the next script runs under it:
// the shell's parent and the supervisor PID in the state file are the spare's.
func TestSpareSupervisorRunsTheNextScript(t *testing.T) {
	m := newTestManager(t, testConfig(t))
	if st := mustStart(t, m, withWait(StartRequest{Ticket: "First", ScriptBody: "echo one"}, 30*time.Second)); st.State != Complete || st.ExitCode != 0 {
		t.Fatalf("First: %v %d", st.State, st.ExitCode)
	}
	spare := waitSpare(t, m)
	st := mustStart(t, m, withWait(StartRequest{Ticket: "Second", ScriptBody: "echo $PPID; echo oops >&2; exit 3"}, 30*time.Second))
	if st.State != Complete || st.ExitCode != 3 {
		t.Fatalf("Second: %v %d:\n%s", st.State, st.ExitCode, logText(st.Logs))
	}
	if got := texts(st.Logs, StdOut); len(got) == 0 || got[len(got)-1] != strconv.Itoa(spare) {
		t.Errorf("the shell's parent printed %q, want the spare %d", got, spare)
	}
	if got := texts(st.Logs, StdErr); len(got) != 1 || got[0] != "oops" {
		t.Errorf("stderr %q", got)
	}
	if state := readTestState(t, m, "Second"); state.SupervisorPID != spare {
		t.Errorf("supervisor PID %d, want the spare %d", state.SupervisorPID, spare)
	}
	// Closing the Manager stops the spare started after Second.
	next := waitSpare(t, m)
	if next == spare {
		t.Fatal("the spare used for Second is still the spare")
	}
	m.Close()
	if !goneOrZombie(next, 5*time.Second) {
		t.Errorf("spare %d still running after Close", next)
	}
}

// An unused spare exits after Config.SpareSupervisorIdle.
func TestIdleSpareRetires(t *testing.T) {
	cfg := testConfig(t)
	cfg.SpareSupervisorIdle = 2 * time.Second
	m := newTestManager(t, cfg)
	mustStart(t, m, withWait(StartRequest{Ticket: "Only", ScriptBody: "true"}, 30*time.Second))
	spare := waitSpare(t, m)
	if !goneOrZombie(spare, 10*time.Second) {
		t.Fatalf("spare %d still running 10 s after its idle limit", spare)
	}
	m.spareMu.Lock()
	defer m.spareMu.Unlock()
	if m.spare != nil {
		t.Error("the Manager still lists a retired spare")
	}
}

// With spares off, every launch starts its own supervisor.
func TestNoSpareWhenDisabled(t *testing.T) {
	cfg := testConfig(t)
	cfg.SpareSupervisorIdle = -1
	m := newTestManager(t, cfg)
	mustStart(t, m, withWait(StartRequest{Ticket: "A", ScriptBody: "true"}, 30*time.Second))
	time.Sleep(200 * time.Millisecond)
	m.spareMu.Lock()
	defer m.spareMu.Unlock()
	if m.spare != nil || m.spareStarting {
		t.Error("a spare was started with SpareSupervisorIdle < 0")
	}
}

// A spare whose agent is killed (no Close) exits by itself: its launch pipe ends.
func TestSpareExitsWhenItsAgentDies(t *testing.T) {
	if !isLinux() {
		t.Skip("SKIP: finds the spare through /proc")
	}
	cfg := testConfig(t)
	agent := startAgentHelper(t, cfg.Home, "Orphan", "echo line1; exec sleep 1000")
	var spare int
	for deadline := time.Now().Add(30 * time.Second); spare == 0; time.Sleep(20 * time.Millisecond) {
		spare = childSpare(agent.Process.Pid)
		if time.Now().After(deadline) {
			agent.Process.Kill()
			agent.Wait()
			t.Fatal("the agent started no spare supervisor within 30 s")
		}
	}
	if err := agent.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	agent.Wait()
	if !goneOrZombie(spare, 5*time.Second) {
		t.Errorf("spare %d outlived its agent", spare)
	}
	// The script itself carries on; a new Manager takes it over and the cleanup cancels it.
	m := newTestManager(t, cfg)
	if st, err := m.Status("Orphan", 0); err != nil || st.State != Running {
		t.Fatalf("Orphan after its agent died: %+v, %v", st, err)
	}
}

// childSpare is the PID of a spare supervisor whose parent is pid, or 0.
func childSpare(pid int) int {
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		child, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		fields := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
		if len(fields) < 2 || fields[1] != strconv.Itoa(pid) {
			continue
		}
		cmdline, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		args := strings.Split(strings.TrimRight(string(cmdline), "\x00"), "\x00")
		if len(args) > 0 && args[len(args)-1] == spareArg {
			return child
		}
	}
	return 0
}

// The work directory holds nothing but workspaces while a spare waits (what it says before
// its launch goes to the agent's log), and a supervisor that was a spare no longer has the
// pipe to the agent as its output: its output goes to its workspace's Supervisor.err, as
// an ordinary supervisor's does.
func TestSpareKeepsNothingInTheWorkDirectory(t *testing.T) {
	m := newTestManager(t, testConfig(t))
	if st := mustStart(t, m, withWait(StartRequest{Ticket: "First", ScriptBody: "echo one"}, 30*time.Second)); st.State != Complete {
		t.Fatalf("First: %v", st.State)
	}
	spare := waitSpare(t, m)
	entries, err := os.ReadDir(m.work)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if len(names) != 1 || names[0] != "First" {
		t.Errorf("the work directory holds %q with a spare waiting; want only the workspace First", names)
	}
	if !isLinux() {
		return
	}
	// The spare takes the next script, which waits for a file so that its supervisor can
	// be looked at.
	st := mustStart(t, m, StartRequest{Ticket: "Second", ScriptBody: "while [ ! -e go ]; do sleep 0.05; done; echo two"})
	if st.State == Complete {
		t.Fatalf("Second ended at once: %d", st.ExitCode)
	}
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(30 * time.Second); !cond(); time.Sleep(20 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("not within 30 s: %s", what)
			}
		}
	}
	waitFor("the spare takes charge of Second", func() bool { return readTestState(t, m, "Second").SupervisorPID == spare })
	want := filepath.Join(m.workspace("Second"), supervisorErrName)
	for _, fd := range []string{"1", "2"} {
		if target, err := os.Readlink("/proc/" + strconv.Itoa(spare) + "/fd/" + fd); err != nil || target != want {
			t.Errorf("the supervisor's descriptor %s is %q (%v), want %s", fd, target, err, want)
		}
	}
	if err := os.WriteFile(filepath.Join(m.workspace("Second"), "go"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if st := waitComplete(t, m, "Second", 30*time.Second); st.ExitCode != 0 {
		t.Errorf("Second: exit %d", st.ExitCode)
	}
}

// When the Manager is closed it returns only once the spare has exited and been reaped,
// and once the supervisor of a script whose result it reported has exited: no process it
// started is left writing anything (the state's syncs included) but supervisors whose
// scripts still run.
func TestCloseLeavesNoSpareAndNoFinishingSupervisor(t *testing.T) {
	m := newTestManager(t, testConfig(t))
	for _, ticket := range []string{"Fresh", "Spare"} {
		if ticket == "Spare" {
			waitSpare(t, m)
		}
		st := mustStart(t, m, withWait(StartRequest{Ticket: ticket, ScriptBody: "echo hi"}, 30*time.Second))
		if st.State != Complete || st.ExitCode != 0 {
			t.Fatalf("%s: %v %d", ticket, st.State, st.ExitCode)
		}
	}
	var pids []int
	for _, ticket := range []string{"Fresh", "Spare"} {
		pids = append(pids, readTestState(t, m, ticket).SupervisorPID)
	}
	spare := waitSpare(t, m)
	m.Close()
	for i, pid := range append(pids, spare) {
		what := []string{"Fresh's supervisor", "Spare's supervisor", "the spare"}[i]
		if err := syscall.Kill(pid, 0); err != syscall.ESRCH {
			t.Errorf("%s (pid %d) is still there when Close returns: kill 0: %v", what, pid, err)
		}
	}
}
