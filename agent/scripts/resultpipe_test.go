//go:build !windows

package scripts

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// A result the supervisor announced is the script's status at once, with every line, while
// the supervisor still syncs (the agent takes the announcement alone: here the state file
// does not even have it); CompleteScript then does not try to cancel a script that has ended.
func TestAnnouncedResultIsReportedBeforeTheStateHasIt(t *testing.T) {
	m := newTestManager(t, testConfig(t))
	dir := m.workspace("Early")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := writeState(dir, &scriptState{Created: time.Now().UTC(), State: Running, Format: stateFormat, Ticket: "Early"}, survivesProcessCrash); err != nil {
		t.Fatal(err)
	}
	if err := appendLogLines(filepath.Join(dir, logFileName), survivesProcessCrash, logLine{source: StdOut, at: time.Now().UTC(), text: "hi"}); err != nil {
		t.Fatal(err)
	}
	s := m.newScript("Early", "")
	close(s.prepared)
	s.stage = stageLaunched
	m.mu.Lock()
	m.scripts["Early"] = s
	m.mu.Unlock()

	if st, err := m.Status("Early", 0); err != nil || st.State != Running {
		t.Fatalf("before the announcement: %+v, %v", st, err)
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	go m.watchResult(s, r)
	announceResult(w, 7)
	select {
	case <-s.resultKnown:
	case <-time.After(10 * time.Second):
		t.Fatal("the announced result was not taken")
	}
	st, err := m.Status("Early", 0)
	if err != nil || st.State != Complete || st.ExitCode != 7 || !slices.Contains(texts(st.Logs, StdOut), "hi") {
		t.Fatalf("after the announcement: %+v, %v", st, err)
	}
	if err := m.Complete("Early"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, cancelRequestName)); err == nil {
		t.Error("CompleteScript asked an ended script to cancel")
	}
	if _, err := os.Stat(filepath.Join(dir, completeRequestName)); err != nil {
		t.Errorf("the completion request is not recorded for a restarted agent: %v", err)
	}
	m.settle(s) // the supervisor's exit; the workspace goes now
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("workspace still there after the supervisor ended: %v", err)
	}
}

// Neither the launch pipe nor the result pipe reaches the script: a background child
// holding the result pipe would keep the agent's reader waiting for it.
func TestSupervisorPipesAreNotInherited(t *testing.T) {
	if !isLinux() {
		t.Skip("SKIP: lists descriptors through /proc")
	}
	m := newTestManager(t, testConfig(t))
	// The first script starts its own supervisor, the second runs under the spare.
	for _, ticket := range []string{"Fresh", "Spare"} {
		if ticket == "Spare" {
			waitSpare(t, m)
		}
		// ls, a child, lists the shell's descriptors (a $(...) would add a pipe of its own).
		body := `ls -l /proc/$$/fd`
		st := mustStart(t, m, withWait(StartRequest{Ticket: ticket, ScriptBody: body}, 30*time.Second))
		if st.State != Complete || st.ExitCode != 0 {
			t.Fatalf("%s: %v %d:\n%s", ticket, st.State, st.ExitCode, logText(st.Logs))
		}
		seen := 0
		for _, l := range texts(st.Logs, StdOut) {
			before, target, ok := strings.Cut(l, " -> ")
			fields := strings.Fields(before)
			if !ok || len(fields) == 0 {
				continue
			}
			fd, err := strconv.Atoi(fields[len(fields)-1])
			if err != nil {
				continue
			}
			seen++
			// A supervisor gets its pipes as descriptors 3 and 4 (resultFDArg, spareLaunchFD,
			// spareResultFD); a shell keeps inherited descriptors at their numbers.
			if (fd == 3 || fd == 4) && strings.HasPrefix(target, "pipe:") {
				t.Errorf("%s: the script has a pipe open as descriptor %d", ticket, fd)
			}
		}
		if seen < 3 {
			t.Fatalf("%s: listed %d descriptors:\n%s", ticket, seen, logText(st.Logs))
		}
	}
}
