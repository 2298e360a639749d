package scripts

import (
	"strings"
	"testing"
	"time"
)

// A PowerShell.exe that exits 0 without running the bootstrap (Wine's is such
// a stub) fails the script with a clear error instead of passing it with no
// output.
func TestStubPowerShellFailsTheScript(t *testing.T) {
	cfg := testConfig(t)
	cfg.PowerShellPath, cfg.Environment = stubPowerShell(t, cfg.Environment)
	m := newTestManager(t, cfg)
	m.flavor = powerShellFlavor // on every OS: the check is the supervisor's
	st := mustStart(t, m, withWait(StartRequest{Ticket: "Stub", ScriptBody: "echo must not run"}, 20*time.Second))
	if st.State != Complete || st.ExitCode != ExitCodePowerShellNeverStarted {
		t.Fatalf("%v exit %d, want Complete %d; logs:\n%s", st.State, st.ExitCode, ExitCodePowerShellNeverStarted, logText(st.Logs))
	}
	stderr := texts(st.Logs, StdErr)
	if len(stderr) != 1 || !strings.Contains(stderr[0], "exited with code 0 without running the script") ||
		!strings.Contains(stderr[0], "Install Windows PowerShell") {
		t.Errorf("stderr %q, want one line saying PowerShell did not run the script and what to do", stderr)
	}
}
