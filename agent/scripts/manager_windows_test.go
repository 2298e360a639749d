//go:build windows

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

// The Windows counterparts of manager_test.go and reattach_test.go: the real
// supervisor, job objects and the PowerShell command line, with
// testdata/powershell standing in for PowerShell (script bodies are batch
// files).

func powerShellTestConfig(t *testing.T) Config {
	cfg := testConfig(t)
	cfg.PowerShellPath = standInPowerShell(t)
	return cfg
}

// sleepCmd waits about n seconds in a batch file (ping sends one echo a second).
func sleepCmd(n int) string {
	return "ping -n " + strconv.Itoa(n+1) + " 127.0.0.1 >nul"
}

func TestPowerShellScriptOutputAndExitCode(t *testing.T) {
	m := newTestManager(t, powerShellTestConfig(t))
	m.cfg.Environment = append(m.cfg.Environment, "EXTRA_VAR=extra")
	req := StartRequest{
		Ticket:     "PSOutput",
		ScriptBody: "echo out1\r\necho oops>&2\r\necho args=%1,%2\r\ntype sub\\data.txt\r\necho.\r\ncd\r\necho env=%EXTRA_VAR%\r\nexit /b 3\r\n",
		Arguments:  []string{"a", "b"},
		Files:      []ScriptFile{{Name: `sub\data.txt`, Contents: strings.NewReader("payload")}},
	}
	st := mustStart(t, m, withWait(req, 30*time.Second))
	if st.State != Complete || st.ExitCode != 3 {
		t.Fatalf("state %v exit %d, want Complete 3; logs:\n%s", st.State, st.ExitCode, logText(st.Logs))
	}
	checkSequence(t, st.Logs)
	ws := m.workspace(req.Ticket)
	want := []string{"##octopus[stdout-verbose]", "Acquired isolation mutex RunningScript with NoIsolation", "##octopus[stdout-default]",
		"out1", "args=a,b", "payload", ws, "env=extra"}
	if got := texts(st.Logs, StdOut); !slices.Equal(got, want) {
		t.Errorf("stdout lines\n%q\nwant\n%q (the start marker taken out)", got, want)
	}
	if got := texts(st.Logs, StdErr); !slices.Equal(got, []string{"oops"}) {
		t.Errorf("stderr lines %q", got)
	}
	if b, _ := os.ReadFile(filepath.Join(ws, "Bootstrap.ps1")); !strings.HasPrefix(string(b), "\uFEFFecho out1\r\n") {
		t.Errorf("Bootstrap.ps1 = %q, want the body with a BOM, CRLF kept", b)
	}
}

// Cancelling kills the whole tree through the job object: PowerShell, the
// shell it runs, a background child and the foreground one.
func TestPowerShellCancelKillsTheTree(t *testing.T) {
	cfg := powerShellTestConfig(t)
	cfg.KillGracePeriod = 500 * time.Millisecond
	m := newTestManager(t, cfg)
	body := "start /b " + sleepCmd(1000) + "\r\necho started\r\n" + sleepCmd(1000) + "\r\n"
	// `start /b` runs the background ping through start.exe, which exits: that ping has
	// no living parent in the tree, so the pings are found as the new ones.
	before := processesNamed(t, "ping.exe")
	mustStart(t, m, StartRequest{Ticket: "PSCancel", ScriptBody: body})
	waitForLine(t, m, "PSCancel", "started", 30*time.Second)
	state := readTestState(t, m, "PSCancel")
	tree := descendants(t, state.ScriptPID)
	tree[state.ScriptPID] = "powershell.exe (stand-in)"
	deadline := time.Now().Add(15 * time.Second)
	for {
		var pings []int
		for _, pid := range processesNamed(t, "ping.exe") {
			if !slices.Contains(before, pid) {
				pings = append(pings, pid)
			}
		}
		if len(pings) == 2 {
			for _, pid := range pings {
				tree[pid] = "ping.exe"
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the script never ran both pings: %v", pings)
		}
		time.Sleep(50 * time.Millisecond)
	}

	if _, err := m.Cancel("PSCancel", 0); err != nil {
		t.Fatal(err)
	}
	st := waitComplete(t, m, "PSCancel", 30*time.Second)
	if st.ExitCode == 0 {
		t.Errorf("a cancelled script exited 0; logs:\n%s", logText(st.Logs))
	}
	for pid, name := range tree {
		if processAlive(pid) {
			t.Errorf("%s (pid %d) still runs after the cancel", name, pid)
		}
	}
	if processAlive(readTestState(t, m, "PSCancel").SupervisorPID) {
		t.Error("the supervisor still runs")
	}
}

// Two scripts under full isolation run one after the other.
func TestPowerShellFullIsolationSerialises(t *testing.T) {
	m := newTestManager(t, powerShellTestConfig(t))
	flag := filepath.Join(t.TempDir(), "running")
	// A script fails if it finds the other one's flag: they overlapped.
	body := "if exist \"" + flag + "\" exit /b 9\r\necho x> \"" + flag + "\"\r\n" + sleepCmd(1) + "\r\ndel \"" + flag + "\"\r\n"
	mustStart(t, m, StartRequest{Ticket: "PSFullA", TaskID: "ServerTasks-1", ScriptBody: body, Isolation: FullIsolation})
	mustStart(t, m, StartRequest{Ticket: "PSFullB", TaskID: "ServerTasks-2", ScriptBody: body, Isolation: FullIsolation})
	a := waitComplete(t, m, "PSFullA", 30*time.Second)
	b := waitComplete(t, m, "PSFullB", 30*time.Second)
	if a.ExitCode != 0 || b.ExitCode != 0 {
		t.Fatalf("exit codes %d and %d: the scripts overlapped; logs:\n%s\n%s", a.ExitCode, b.ExitCode, logText(a.Logs), logText(b.Logs))
	}
	if !hasLineContaining(b.Logs, "Waiting for the script in task [ServerTasks-1]") {
		t.Errorf("the second script did not wait for the first:\n%s", logText(b.Logs))
	}
}

// The agent is killed while a script runs; the script's supervisor carries on
// and the next agent re-attaches to it and reads the whole log.
func TestPowerShellReattachAfterAgentKilled(t *testing.T) {
	cfg := powerShellTestConfig(t)
	body := "echo line1\r\n" + sleepCmd(1) + "\r\necho line2\r\n" + sleepCmd(1) + "\r\necho line3\r\necho bye>&2\r\nexit /b 7\r\n"
	agent := startAgentHelper(t, cfg.Home, "PSKilled", body, cfg.PowerShellPath)
	if err := agent.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	agent.Wait()

	m := newTestManager(t, cfg)
	state := readTestState(t, m, "PSKilled")
	if state.State != Running || !processAlive(state.SupervisorPID) {
		t.Fatalf("after the agent died the script is %v, supervisor %d alive: %v", state.State, state.SupervisorPID, processAlive(state.SupervisorPID))
	}
	st := waitComplete(t, m, "PSKilled", 30*time.Second)
	checkSequence(t, st.Logs)
	var lines []string
	for _, s := range texts(st.Logs, StdOut) {
		if strings.HasPrefix(s, "line") {
			lines = append(lines, s)
		}
	}
	if st.ExitCode != 7 || !slices.Equal(lines, []string{"line1", "line2", "line3"}) || !slices.Equal(texts(st.Logs, StdErr), []string{"bye"}) {
		t.Fatalf("exit %d, log after re-attaching:\n%s", st.ExitCode, logText(st.Logs))
	}
}

// The PowerShell.exe a Windows machine has: under Wine a stub, which must fail
// the script; on Windows the real one, which prints the start marker (kept out
// of the log) and runs the script.
func TestTheMachinesOwnPowerShell(t *testing.T) {
	m := newTestManager(t, testConfig(t))
	st := mustStart(t, m, withWait(StartRequest{Ticket: "OwnPS", ScriptBody: "Write-Output 'from PowerShell'; exit 4"}, 60*time.Second))
	if st.State != Complete {
		t.Fatalf("state %v; logs:\n%s", st.State, logText(st.Logs))
	}
	if underWine() {
		if st.ExitCode != ExitCodePowerShellNeverStarted || !hasLineContaining(st.Logs, "without running the script") {
			t.Errorf("Wine's stub PowerShell: exit %d, logs:\n%s", st.ExitCode, logText(st.Logs))
		}
		return
	}
	if st.ExitCode != 4 || !slices.Contains(texts(st.Logs, StdOut), "from PowerShell") || hasLineContaining(st.Logs, "powershell-started") {
		t.Errorf("Windows PowerShell: exit %d, logs:\n%s", st.ExitCode, logText(st.Logs))
	}
}
