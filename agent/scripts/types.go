package scripts

import (
	"fmt"
	"io"
	"time"
)

// Isolation is how a script shares its isolation mutex (ScriptIsolationLevel on the wire).
type Isolation int

const (
	// NoIsolation takes the mutex shared: any number of such scripts run together.
	NoIsolation Isolation = 0
	// FullIsolation takes the mutex exclusively: the script runs alone.
	FullIsolation Isolation = 1
)

func (i Isolation) String() string {
	switch i {
	case NoIsolation:
		return "NoIsolation"
	case FullIsolation:
		return "FullIsolation"
	}
	return fmt.Sprintf("Isolation(%d)", int(i))
}

// State is a script's lifecycle stage (ProcessState on the wire; the values must never be
// re-ordered).
type State int

const (
	// Pending: accepted, waiting for its isolation mutex.
	Pending State = 0
	// Running: holds its mutex and has been handed to its supervisor.
	Running State = 1
	// Complete: finished; ExitCode is final.
	Complete State = 2
)

func (s State) String() string {
	switch s {
	case Pending:
		return "Pending"
	case Running:
		return "Running"
	case Complete:
		return "Complete"
	}
	return fmt.Sprintf("State(%d)", int(s))
}

// Source says where a log line came from (ProcessOutputSource on the wire).
type Source int

const (
	StdOut Source = 0
	StdErr Source = 1
	Debug  Source = 2
)

func (s Source) String() string {
	switch s {
	case StdOut:
		return "StdOut"
	case StdErr:
		return "StdErr"
	case Debug:
		return "Debug"
	}
	return fmt.Sprintf("Source(%d)", int(s))
}

// Exit codes Tentacle reports for outcomes that are not a process exit status
// (ScriptExitCodes upstream).
const (
	// ExitCodeFatal: the script's log could not be written.
	ExitCodeFatal = -41
	// ExitCodeLaunchFailed: the shell could not be started (upstream's
	// PowershellInvocationErrorExitCode, used for every shell).
	ExitCodeLaunchFailed = -42
	// ExitCodeCanceled: cancelled before the script started.
	ExitCodeCanceled = -43
	// ExitCodeTimeout: the isolation mutex was not acquired within the script's timeout.
	ExitCodeTimeout = -44
	// ExitCodeUnknownScript: no script with this ticket exists (or it was completed).
	ExitCodeUnknownScript = -45
	// ExitCodeUnknownResult: the script was started but its result was never recorded,
	// because its supervisor died.
	ExitCodeUnknownResult = -46
	// ExitCodePowerShellNeverStarted: PowerShell exited without running the bootstrap (it
	// never printed the start marker: a missing or stub PowerShell.exe). Upstream uses the
	// code for a PowerShell that did not start in time.
	ExitCodePowerShellNeverStarted = -47
)

// DefaultMutexName is the isolation mutex used when a request names none.
const DefaultMutexName = "RunningScript"

// StartRequest is everything needed to start one script. It mirrors StartScriptCommand(V2)
// without any wire details.
type StartRequest struct {
	// Ticket identifies the script and names its workspace directory; see ValidateTicket.
	Ticket string
	// TaskID is the server task the script belongs to ("ServerTasks-123"); it only names
	// this script in other scripts' "waiting for" lines. Empty means use the ticket.
	TaskID string
	// ScriptBody is the script text.
	ScriptBody string
	// Scripts holds per-shell variants keyed by upstream's ScriptType name ("Bash",
	// "PowerShell"). On Linux and macOS Scripts["Bash"], when present, replaces ScriptBody.
	Scripts map[string]string
	// Files are written into the workspace before the script starts.
	Files []ScriptFile
	// Arguments are passed to the script, each as its own argument on Linux and macOS.
	Arguments []string
	// Isolation and MutexName select the isolation mutex (empty name: DefaultMutexName).
	Isolation Isolation
	MutexName string
	// MutexTimeout bounds the wait for the mutex; zero, negative, or at least
	// MaxMutexTimeout means no limit (upstream treats int.MaxValue ms as "forever").
	MutexTimeout time.Duration
	// WaitForFinish makes Start wait up to this long for the script to complete, so a short
	// script finishes in one call (DurationToWaitForScriptToFinish).
	WaitForFinish time.Duration
}

// MaxMutexTimeout is upstream's "no timeout" value, int.MaxValue milliseconds
// (24.20:31:23.6470000); this or anything longer means wait forever.
const MaxMutexTimeout = 2147483647 * time.Millisecond

// ScriptFile is a file to place in the workspace before the script runs.
type ScriptFile struct {
	// Name is relative to the workspace; '/' and '\' both separate directories. It may not
	// leave the workspace or replace a file this package owns (Bootstrap.sh, the log, ...).
	Name string
	// Contents is read to the end once. Encryption (upstream's EncryptionPassword) is the
	// caller's business: pass the bytes exactly as they should be stored.
	Contents io.Reader
}

// LogRecord is one line of script output or one diagnostic line.
type LogRecord struct {
	// Sequence numbers start at 1 and have no gaps; they never change once reported.
	Sequence int64
	Source   Source
	// Occurred is when the line was received, in UTC.
	Occurred time.Time
	Text     string
}

// Status is a script's state and its log records after a given sequence number.
type Status struct {
	Ticket string
	State  State
	// ExitCode is 0 until State is Complete.
	ExitCode int
	Logs     []LogRecord
	// NextLogSequence is the sequence number of the last record returned, or the caller's
	// afterSequence when nothing new was returned; send it back to page on.
	NextLogSequence int64
}
