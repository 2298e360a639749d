package scripts

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"
)

// SupervisorArg is the hidden first argument that makes the tentacle binary run Supervise
// instead of its CLI; the default SupervisorCommand is the running executable with it.
const SupervisorArg = "internal-script-supervisor"

// Config holds every limit and timeout of script execution. Zero values mean the default
// named in each comment.
type Config struct {
	// Home is the Tentacle home directory; workspaces live in Home/Work/<ticket>. Required.
	Home string

	// SupervisorCommand is the program and leading arguments that run Supervise in a fresh
	// process; the workspace path and a launch token are appended. Default: this executable
	// followed by SupervisorArg.
	SupervisorCommand []string
	// Environment entries ("KEY=value") are added to the environment every script inherits
	// from the agent (for example the Tentacle* variables upstream sets).
	Environment []string

	// BashPath runs Bootstrap.sh on Linux and macOS. Default /bin/bash.
	BashPath string
	// PowerShellPath runs Bootstrap.ps1 on Windows. Default
	// %SystemRoot%\System32\WindowsPowerShell\v1.0\PowerShell.exe, else PowerShell.exe on PATH.
	PowerShellPath string

	// KillGracePeriod is how long a cancelled script's process group has between SIGTERM
	// and SIGKILL. Default 10 s. (Windows has no polite signal: the job is terminated at once.)
	KillGracePeriod time.Duration
	// OutputDrainTimeout bounds the wait for output still in the pipes after the shell
	// exits, which background children holding the pipes open could otherwise make endless.
	// Default 5 s, as upstream.
	OutputDrainTimeout time.Duration
	// MaxLineLength cuts longer output lines into pieces of this many bytes, bounding memory
	// for output without line breaks. Default 1 MiB; at most MaxLineLengthLimit.
	MaxLineLength int
	// MaxStatusLogBytes bounds the log records one Status call returns, counted as they
	// cost on the wire: the text plus LogRecordWireOverhead per record. A client pages on
	// with NextLogSequence (the state is reported as Running until the last page); a single
	// record larger than this still comes back, alone. Default 8 MiB; at most
	// MaxStatusLogBytesLimit.
	MaxStatusLogBytes int
	// MaxStatusLogRecords bounds the number of records one Status call returns: an empty
	// line costs a few bytes of text but four BSON elements and ~100 bytes of memory on each
	// side. Default and at most MaxStatusLogRecordsLimit.
	MaxStatusLogRecords int
	// LogSyncInterval bounds how long a written log line may stay unsynced to disk, i.e. what
	// an operating-system crash can lose (an agent or supervisor crash loses nothing once a
	// line is written). Default 1 s.
	LogSyncInterval time.Duration
	// CancelPollInterval is how often a supervisor looks for a cancel request it was not
	// signalled about (always the case on Windows). Default 250 ms.
	CancelPollInterval time.Duration
	// ReattachPollInterval is how often the agent checks whether a script it re-attached to
	// after a restart has finished. Default 500 ms.
	ReattachPollInterval time.Duration
	// MutexWaitLogInterval is how often a script waiting for its isolation mutex logs which
	// tasks it is waiting for. Default 10 min, as upstream.
	MutexWaitLogInterval time.Duration

	// Logger receives the agent-side diagnostics. Default: discarded.
	Logger *slog.Logger
}

// MaxLineLengthLimit is the largest allowed Config.MaxLineLength; it also bounds what a
// reader accepts as one log record.
const MaxLineLengthLimit = 4 << 20

// Bounds of one Status page, kept well inside what one Halibut message may carry (64 MiB
// and 512Ki elements by default; a record is four elements), which the agent's tests check.
const (
	MaxStatusLogBytesLimit   = 32 << 20
	MaxStatusLogRecordsLimit = 64 << 10
)

// LogRecordWireOverhead is what one log record costs in a Status response besides its
// text: as a ProcessOutput in the BSON Logs array, the element's type byte and decimal
// index name, the document's length and terminator, and the Source (int32), Text (string)
// and Occurred (datetime) elements with their names: 53 bytes for an index of up to five
// digits, rounded up.
const LogRecordWireOverhead = 64

const (
	defaultBashPath             = "/bin/bash"
	defaultKillGracePeriod      = 10 * time.Second
	defaultOutputDrainTimeout   = 5 * time.Second
	defaultMaxLineLength        = 1 << 20
	defaultMaxStatusLogBytes    = 8 << 20
	defaultLogSyncInterval      = time.Second
	defaultCancelPollInterval   = 250 * time.Millisecond
	defaultReattachPollInterval = 500 * time.Millisecond
	defaultMutexWaitLogInterval = 10 * time.Minute
)

// withDefaults fills in defaults and rejects values that cannot work.
func (c Config) withDefaults() (Config, error) {
	if c.Home == "" {
		return c, errors.New("scripts: Config.Home is empty; set it to the Tentacle home directory")
	}
	if len(c.SupervisorCommand) == 0 {
		exe, err := os.Executable()
		if err != nil {
			return c, fmt.Errorf("scripts: cannot find this executable to run script supervisors (set Config.SupervisorCommand): %w", err)
		}
		c.SupervisorCommand = []string{exe, SupervisorArg}
	}
	if c.BashPath == "" {
		c.BashPath = defaultBashPath
	}
	setDefault(&c.KillGracePeriod, defaultKillGracePeriod)
	setDefault(&c.OutputDrainTimeout, defaultOutputDrainTimeout)
	setDefault(&c.LogSyncInterval, defaultLogSyncInterval)
	setDefault(&c.CancelPollInterval, defaultCancelPollInterval)
	setDefault(&c.ReattachPollInterval, defaultReattachPollInterval)
	setDefault(&c.MutexWaitLogInterval, defaultMutexWaitLogInterval)
	if c.MaxLineLength == 0 {
		c.MaxLineLength = defaultMaxLineLength
	}
	if c.MaxLineLength < 16 || c.MaxLineLength > MaxLineLengthLimit {
		return c, fmt.Errorf("scripts: Config.MaxLineLength %d is out of range; use 16 to %d bytes", c.MaxLineLength, MaxLineLengthLimit)
	}
	if c.MaxStatusLogBytes == 0 {
		c.MaxStatusLogBytes = defaultMaxStatusLogBytes
	}
	if c.MaxStatusLogBytes < LogRecordWireOverhead || c.MaxStatusLogBytes > MaxStatusLogBytesLimit {
		return c, fmt.Errorf("scripts: Config.MaxStatusLogBytes %d is out of range; use %d to %d bytes", c.MaxStatusLogBytes, LogRecordWireOverhead, MaxStatusLogBytesLimit)
	}
	if c.MaxStatusLogRecords == 0 {
		c.MaxStatusLogRecords = MaxStatusLogRecordsLimit
	}
	if c.MaxStatusLogRecords < 1 || c.MaxStatusLogRecords > MaxStatusLogRecordsLimit {
		return c, fmt.Errorf("scripts: Config.MaxStatusLogRecords %d is out of range; use 1 to %d", c.MaxStatusLogRecords, MaxStatusLogRecordsLimit)
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c, nil
}

func setDefault(d *time.Duration, def time.Duration) {
	if *d <= 0 {
		*d = def
	}
}
