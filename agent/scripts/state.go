package scripts

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"time"
)

// stateFormat marks a scriptstate.json written by this package. Upstream Tentacle writes
// the same file name with only the first six fields below; such a file (left by the agent
// this one replaced) reads as a foreign script: finished if it says so, else an unknown
// result, exactly what upstream reports after its own restart.
const stateFormat = 1

// scriptState is the content of scriptstate.json. It is replaced atomically, never edited.
type scriptState struct {
	Created         time.Time  `json:"Created"`
	Started         *time.Time `json:"Started,omitempty"`
	Completed       *time.Time `json:"Completed,omitempty"`
	State           State      `json:"State"`
	ExitCode        *int       `json:"ExitCode,omitempty"`
	RanToCompletion *bool      `json:"RanToCompletion,omitempty"`

	Format       int           `json:"TentacleStateFormat,omitempty"`
	Ticket       string        `json:"Ticket,omitempty"`
	TaskID       string        `json:"TaskId,omitempty"`
	Isolation    Isolation     `json:"Isolation"`
	MutexName    string        `json:"MutexName,omitempty"`
	MutexTimeout time.Duration `json:"MutexTimeoutNanoseconds,omitempty"`
	Arguments    []string      `json:"Arguments,omitempty"`
	// BootID is the machine's boot the script was prepared in (bootID).
	BootID string `json:"BootId,omitempty"`
	// Launch is set, together with State Running, just before the supervisor is started.
	Launch *launchSpec `json:"Launch,omitempty"`
	// SupervisorPID is written by the supervisor once it can take a cancel signal.
	SupervisorPID int `json:"SupervisorPid,omitempty"`
	// ScriptPID is the shell's PID, which is also its process group ID on Unix.
	ScriptPID int `json:"ScriptPid,omitempty"`
}

// launchSpec is what a supervisor needs to run the script. It is part of the state file
// so that a supervisor started by an older agent binary keeps working after an upgrade.
type launchSpec struct {
	// Token ties a supervisor to this launch: it is passed on the supervisor's command line
	// and a supervisor whose token does not match does nothing.
	Token string `json:"Token"`
	// Path and Args are the shell's executable and argv (Args[0] included).
	Path string   `json:"Path"`
	Args []string `json:"Args"`
	// CommandLine, on Windows, is the raw command line, used instead of Args.
	CommandLine string `json:"CommandLine,omitempty"`
	// StartMarker, when set, is the stdout line the shell prints before it runs the
	// bootstrap; a shell that exits without printing it never ran the script.
	StartMarker string `json:"StartMarker,omitempty"`
	Dir         string `json:"Dir"`
	// Encoding names the output encoding in the "Starting ..." debug line.
	Encoding string `json:"Encoding"`

	KillGracePeriod    time.Duration `json:"KillGracePeriodNanoseconds"`
	OutputDrainTimeout time.Duration `json:"OutputDrainTimeoutNanoseconds"`
	MaxLineLength      int           `json:"MaxLineLength"`
	LogSyncInterval    time.Duration `json:"LogSyncIntervalNanoseconds"`
	CancelPollInterval time.Duration `json:"CancelPollIntervalNanoseconds"`
}

func (s *scriptState) exitCode() int {
	if s.State != Complete || s.ExitCode == nil {
		return 0
	}
	return *s.ExitCode
}

// complete marks the state finished with code; ranToCompletion says the script's own
// process produced the code.
func (s *scriptState) complete(code int, ranToCompletion bool) {
	now := time.Now().UTC()
	s.State = Complete
	s.ExitCode = &code
	s.Completed = &now
	s.RanToCompletion = &ranToCompletion
}

func readState(dir string) (*scriptState, error) {
	path := filepath.Join(dir, stateFileName)
	data, err := os.ReadFile(path)
	// On Windows, opening the file while renameReplacing swaps in a new one fails with a
	// sharing violation for a moment (seen under Wine with an agent polling a running
	// script); like the writer, the reader tries again briefly.
	for i := 0; err != nil && runtime.GOOS == "windows" && !errors.Is(err, os.ErrNotExist) && i < 20; i++ {
		time.Sleep(10 * time.Millisecond)
		data, err = os.ReadFile(path)
	}
	if err != nil {
		return nil, err
	}
	var st scriptState
	if err := json.Unmarshal(data, &st); err != nil {
		return nil, fmt.Errorf("script state %s is unreadable: %w", filepath.Join(dir, stateFileName), err)
	}
	return &st, nil
}

// durability says what a state write must survive. Every write is atomic (temp file,
// rename), so a crashed agent or supervisor never leaves a torn state behind. Surviving a
// power loss takes two fsyncs (~0.3 ms each here), on the path of every script, so they
// are spent only on the writes a rebooted machine must see: the result, and, where there is
// no boot ID to tell a reboot from a restart of the agent, the workspace and the launch (so
// that a resumed script finds its files whole and a launched one never runs twice). The
// supervisor's PID and the script's start time are of no use after a reboot.
type durability bool

const (
	survivesProcessCrash durability = false
	survivesPowerLoss    durability = true
)

func writeState(dir string, st *scriptState, d durability) error {
	data, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return fmt.Errorf("cannot encode script state: %w", err)
	}
	return writeFileAtomic(filepath.Join(dir, stateFileName), data, d)
}

// writeFileAtomic replaces path so that readers and crashes see the old or the new
// content, never a mix: temp file beside it, rename; with survivesPowerLoss the file is
// fsynced before the rename and the directory after it.
func writeFileAtomic(path string, data []byte, d durability) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("cannot write %s: %w", path, err)
	}
	name := tmp.Name()
	_, err = tmp.Write(data)
	if err == nil && d == survivesPowerLoss {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = renameReplacing(name, path)
	}
	if err != nil {
		os.Remove(name)
		return fmt.Errorf("cannot write %s: %w", path, err)
	}
	if d == survivesPowerLoss {
		if f, err := os.Open(dir); err == nil {
			_ = f.Sync() // best effort: not every platform syncs directories
			f.Close()
		}
	}
	return nil
}

// renameReplacing retries briefly because on Windows a reader holding the target open
// makes the rename fail for a moment.
func renameReplacing(from, to string) error {
	err := os.Rename(from, to)
	for i := 0; err != nil && runtime.GOOS == "windows" && i < 20; i++ {
		time.Sleep(10 * time.Millisecond)
		err = os.Rename(from, to)
	}
	return err
}
