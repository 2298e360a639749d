package scripts

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"
)

// Manager runs ticketed scripts for one Tentacle home. Its methods are what the script
// services call; all are safe for concurrent use. Scripts run under supervisor processes
// and outlive the Manager: a new Manager on the same home picks up where the last left off.
type Manager struct {
	cfg    Config
	work   string
	flavor shellFlavor
	locks  *isolationLocks
	log    *slog.Logger

	closing  chan struct{}
	wg       sync.WaitGroup // goroutines that may write to workspaces
	removals sync.WaitGroup // tombstones being deleted (removeAside)

	mu      sync.Mutex
	closed  bool
	scripts map[string]*script
}

// script is the Manager's view of one ticket.
type script struct {
	ticket string
	dir    string
	owner  string // named in other scripts' "waiting for" lines
	index  logIndex

	prepared chan struct{} // closed once Start has written the workspace (or failed)
	prepErr  error
	done     chan struct{} // closed once the script is Complete
	doneOnce sync.Once

	// probeMu serialises this agent's uses of the supervisor lock, so that it never takes
	// its own brief hold of the lock for a sign of a live supervisor.
	probeMu sync.Mutex

	mu                sync.Mutex // never held while waiting for probeMu
	stage             stage
	stopWaiting       context.CancelFunc // cancels the wait for the isolation mutex
	cancelRequested   bool
	completeRequested bool
	supervisor        *os.Process   // our own child; nil after a restart
	supervisorExited  chan struct{} // closed once our child has been reaped
}

type stage int

const (
	stagePending  stage = iota // waiting for the mutex; the agent owns the workspace
	stageLaunched              // handed to a supervisor, which owns the log and state
	stageFinished              // Complete is on disk
)

// NewManager creates the work directory if needed, then adopts every workspace in it:
// scripts still running under a live supervisor are re-attached (and hold their isolation
// mutex again), scripts still waiting for their mutex resume waiting, and scripts whose
// supervisor died without recording a result become Complete with ExitCodeUnknownResult.
func NewManager(cfg Config) (*Manager, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	// Absolute, because supervisors run in another directory and get workspace paths.
	home, err := filepath.Abs(cfg.Home)
	if err != nil {
		return nil, fmt.Errorf("cannot resolve the Tentacle home %s: %w", cfg.Home, err)
	}
	m := &Manager{
		cfg:     cfg,
		work:    filepath.Join(home, "Work"),
		locks:   newIsolationLocks(),
		log:     cfg.Logger,
		closing: make(chan struct{}),
		scripts: map[string]*script{},
	}
	if runtime.GOOS == "windows" {
		m.flavor = powerShellFlavor
		if m.cfg.PowerShellPath == "" {
			m.cfg.PowerShellPath = defaultPowerShellPath(os.Getenv("SystemRoot"), fileExists)
		}
	}
	if err := os.MkdirAll(m.work, 0o700); err != nil {
		return nil, fmt.Errorf("cannot create the script work directory: %w", err)
	}
	if err := m.adoptWorkspaces(); err != nil {
		m.Close()
		return nil, err
	}
	return m, nil
}

// Close stops the Manager's own goroutines and leaves every script as it is: running
// scripts keep running and pending ones stay pending, for the next Manager on this home.
func (m *Manager) Close() error {
	m.mu.Lock()
	already := m.closed
	m.closed = true
	m.mu.Unlock()
	if !already {
		close(m.closing)
	}
	m.wg.Wait()
	m.removals.Wait()
	return nil
}

// Start starts the script unless its ticket is already known, in which case it does
// nothing more than Status: a retried Start never runs a script twice. It then waits up to
// req.WaitForFinish (or until ctx ends) for the script to complete and returns its status
// with every log record. An error means the script was not started.
func (m *Manager) Start(ctx context.Context, req StartRequest) (Status, error) {
	if err := validateStartRequest(&req); err != nil {
		return Status{}, err
	}
	s, created, err := m.register(req.Ticket, req.TaskID)
	if err != nil {
		return Status{}, err
	}
	if created {
		st, err := m.prepare(s, &req)
		s.prepErr = err
		close(s.prepared)
		if err != nil {
			m.mu.Lock()
			delete(m.scripts, s.ticket)
			m.mu.Unlock()
			m.wg.Done()
			return Status{}, err
		}
		lockReq := m.locks.request(st.MutexName, st.Isolation, s.owner)
		go m.drive(s, st, lockReq)
	} else {
		<-s.prepared
		if s.prepErr != nil {
			return Status{}, s.prepErr
		}
	}
	if req.WaitForFinish > 0 {
		t := time.NewTimer(req.WaitForFinish)
		select {
		case <-s.done:
		case <-t.C:
		case <-ctx.Done():
		}
		t.Stop()
	}
	return m.status(req.Ticket, s, 0, false)
}

// Status returns the script's state and a page of its log records after afterSequence
// (bounded by Config.MaxStatusLogBytes and MaxStatusLogRecords; the state reads Running
// until the last page). A ticket with no workspace is Complete with ExitCodeUnknownScript.
func (m *Manager) Status(ticket string, afterSequence int64) (Status, error) {
	if err := ValidateTicket(ticket); err != nil {
		return Status{}, err
	}
	return m.status(ticket, m.find(ticket), afterSequence, false)
}

// Cancel asks for the script to be stopped and returns its current status without waiting.
// A script waiting for its mutex completes with ExitCodeCanceled; a running one has its
// process group terminated (killed after Config.KillGracePeriod) and reports the exit code
// the shell ends with. Cancelling again, or cancelling a finished script, is harmless.
func (m *Manager) Cancel(ticket string, afterSequence int64) (Status, error) {
	if err := ValidateTicket(ticket); err != nil {
		return Status{}, err
	}
	s := m.find(ticket)
	if s != nil {
		m.requestCancel(s)
	}
	return m.status(ticket, s, afterSequence, false)
}

// Complete ends the Manager's interest in a script and deletes its workspace, reading none
// of its log (what V2 CompleteScript does: it returns nothing). A script that is not
// finished yet is cancelled, and its workspace is deleted as soon as it finishes; until
// then Status still reports it. An unknown ticket is not an error.
func (m *Manager) Complete(ticket string) error {
	_, err := m.complete(ticket, 0, false)
	return err
}

// CompleteWithStatus is Complete for V1 CompleteScript, which reports the final status
// with the records after afterSequence, read before deletion. They are one page like
// Status's: a client that followed the script to Complete has none left; if records remain
// past the page, a last StdErr line says so, since they are deleted with the workspace.
func (m *Manager) CompleteWithStatus(ticket string, afterSequence int64) (Status, error) {
	return m.complete(ticket, afterSequence, true)
}

func (m *Manager) complete(ticket string, afterSequence int64, withStatus bool) (Status, error) {
	if err := ValidateTicket(ticket); err != nil {
		return Status{}, err
	}
	status := func(s *script) (Status, error) {
		if !withStatus {
			return Status{}, nil
		}
		return m.status(ticket, s, afterSequence, true)
	}
	s := m.find(ticket)
	if s == nil {
		st, err := status(nil)
		m.mu.Lock()
		tomb := m.moveWorkspaceAside(ticket)
		m.mu.Unlock()
		m.removeAside(tomb)
		return st, err
	}
	s.mu.Lock()
	finished := s.stage == stageFinished
	if !finished {
		s.completeRequested = true
		// Remembered on disk so that a new Manager deletes the workspace when it is done.
		if err := os.WriteFile(filepath.Join(s.dir, completeRequestName), nil, 0o600); err != nil {
			m.log.Warn("cannot record completion request", "ticket", ticket, "error", err)
		}
	}
	s.mu.Unlock()
	if !finished {
		// The status as it was when the request came, then the cancel: read after it, it
		// would report Running or Complete depending on how fast the cancel went.
		st, err := status(s)
		m.requestCancel(s)
		return st, err
	}
	st, err := status(s)
	m.forget(s)
	return st, err
}

func validateStartRequest(req *StartRequest) error {
	if err := ValidateTicket(req.Ticket); err != nil {
		return err
	}
	if req.Isolation != NoIsolation && req.Isolation != FullIsolation {
		return fmt.Errorf("script isolation level %d is unknown; use 0 (NoIsolation) or 1 (FullIsolation)", int(req.Isolation))
	}
	for _, f := range req.Files {
		if _, err := scriptFilePath(f.Name); err != nil {
			return err
		}
	}
	if req.MutexName == "" {
		req.MutexName = DefaultMutexName
	}
	return nil
}

// register returns the script for ticket, creating it (created true) if it is new. The
// caller of a created script owes one m.wg.Done.
func (m *Manager) register(ticket, taskID string) (s *script, created bool, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, false, errors.New("the script manager is shut down")
	}
	if s := m.scripts[ticket]; s != nil {
		return s, false, nil
	}
	s = m.newScript(ticket, taskID)
	s.stage = stagePending
	m.scripts[ticket] = s
	m.wg.Add(1)
	return s, true, nil
}

func (m *Manager) newScript(ticket, taskID string) *script {
	owner := taskID
	if owner == "" {
		owner = ticket
	}
	return &script{
		ticket:   ticket,
		dir:      m.workspace(ticket),
		owner:    owner,
		prepared: make(chan struct{}),
		done:     make(chan struct{}),
	}
}

func (m *Manager) workspace(ticket string) string {
	return filepath.Join(m.work, ticket)
}

// find returns the known script for ticket, or nil.
func (m *Manager) find(ticket string) *script {
	m.mu.Lock()
	s := m.scripts[ticket]
	m.mu.Unlock()
	if s == nil {
		return nil
	}
	<-s.prepared
	if s.prepErr != nil {
		return nil
	}
	return s
}

// prepare writes a new script's workspace and its Pending state.
func (m *Manager) prepare(s *script, req *StartRequest) (*scriptState, error) {
	if _, err := os.Stat(filepath.Join(s.dir, stateFileName)); err == nil {
		return nil, fmt.Errorf("script workspace %s already exists and belongs to another agent process", s.dir)
	}
	// A directory without a state file is left from a Start that failed or crashed
	// half-way; nothing ran in it.
	if err := removeTree(s.dir); err != nil {
		return nil, err
	}
	if err := prepareWorkspace(s.dir, m.flavor, req, beforeLaunch()); err != nil {
		_ = removeTree(s.dir)
		return nil, err
	}
	st := &scriptState{
		Created:      time.Now().UTC(),
		State:        Pending,
		Format:       stateFormat,
		Ticket:       req.Ticket,
		TaskID:       req.TaskID,
		Isolation:    req.Isolation,
		MutexName:    req.MutexName,
		MutexTimeout: req.MutexTimeout,
		Arguments:    req.Arguments,
		BootID:       bootID(),
	}
	if err := writeState(s.dir, st, beforeLaunch()); err != nil {
		_ = removeTree(s.dir)
		return nil, err
	}
	return st, nil
}

// status reads the state first and the log second: the state becomes Complete only after
// the last line is written, so a Complete status always carries every line. A page that
// leaves records behind reports a Complete script as Running, so that the client comes
// back for them, unless this is the last status the client will see (final).
func (m *Manager) status(ticket string, s *script, after int64, final bool) (Status, error) {
	dir := m.workspace(ticket)
	out := Status{Ticket: ticket, NextLogSequence: after}
	st, err := readState(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		out.State, out.ExitCode = Complete, ExitCodeUnknownScript
	case err != nil:
		return Status{}, err
	default:
		out.State, out.ExitCode = st.State, st.exitCode()
	}
	var index *logIndex
	if s != nil {
		index = &s.index
	}
	limit := pageLimit{bytes: m.cfg.MaxStatusLogBytes, records: m.cfg.MaxStatusLogRecords}
	page, err := readLog(filepath.Join(dir, logFileName), index, after, limit)
	if err != nil {
		return Status{}, fmt.Errorf("script %s: %w", ticket, err)
	}
	out.Logs, out.NextLogSequence = page.records, page.next
	switch {
	case page.more && final:
		out.Logs = append(out.Logs, LogRecord{
			Sequence: page.next + 1,
			Source:   StdErr,
			Occurred: time.Now().UTC(),
			Text: fmt.Sprintf("Output after line %d was not collected before the script was completed, and one response carries at most %d lines or %d bytes; it is deleted with the workspace.",
				page.next, limit.records, limit.bytes),
		})
	case page.more && out.State == Complete:
		// A client stops asking once it sees Complete; it must come back for the rest.
		out.State, out.ExitCode = Running, 0
	}
	return out, nil
}

func (m *Manager) requestCancel(s *script) {
	s.mu.Lock()
	s.cancelRequested = true
	launched := s.stage == stageLaunched
	if s.stage == stagePending && s.stopWaiting != nil {
		s.stopWaiting()
	}
	if launched {
		// The file reaches the supervisor even if it has not started yet, or this agent
		// dies now; the signal only makes it act at once.
		if err := os.WriteFile(filepath.Join(s.dir, cancelRequestName), nil, 0o600); err != nil {
			m.log.Warn("cannot record cancel request", "ticket", s.ticket, "error", err)
		}
	}
	proc := s.supervisor
	s.mu.Unlock()
	if launched {
		m.nudgeSupervisor(s, proc)
	}
}

// nudgeSupervisor signals a live supervisor to act on a cancel request now. A supervisor
// signals readiness by writing its PID; before that it will find the request file itself.
func (m *Manager) nudgeSupervisor(s *script, proc *os.Process) {
	st, err := readState(s.dir)
	if err != nil || st.SupervisorPID == 0 || st.State == Complete {
		return
	}
	if proc == nil || proc.Pid != st.SupervisorPID {
		// Re-attached: the PID is only trusted while the supervisor lock is held, which
		// proves the supervisor that wrote it is still alive. Find the process first, so a
		// PID reused after the check cannot be hit (os.Process holds a pidfd on Linux).
		if proc, err = os.FindProcess(st.SupervisorPID); err != nil {
			return
		}
		defer proc.Release()
		s.probeMu.Lock()
		lock, err := lockFile(filepath.Join(s.dir, supervisorLockName), false)
		s.probeMu.Unlock()
		if !errors.Is(err, errLocked) {
			if err == nil {
				lock.unlock()
			}
			return
		}
	}
	if err := signalSupervisor(proc); err != nil && !errors.Is(err, os.ErrProcessDone) {
		m.log.Debug("cannot signal script supervisor", "ticket", s.ticket, "error", err)
	}
}

// forget drops a finished script and deletes its workspace.
func (m *Manager) forget(s *script) {
	m.mu.Lock()
	if m.scripts[s.ticket] == s {
		delete(m.scripts, s.ticket)
	}
	tomb := m.moveWorkspaceAside(s.ticket)
	m.mu.Unlock()
	m.removeAside(tomb)
}

// moveWorkspaceAside renames the workspace to a tombstone name, so that a new Start with
// the same ticket starts clean at once, and returns the new path ("" if there is nothing
// left to delete). Where the rename fails it deletes in place, logging a failure. Called
// with m.mu held.
func (m *Manager) moveWorkspaceAside(ticket string) string {
	tomb, err := m.takeWorkspaceAway(ticket)
	if err != nil {
		m.log.Warn("cannot delete script workspace", "dir", m.workspace(ticket), "error", err)
	}
	return tomb
}

// takeWorkspaceAway is moveWorkspaceAside returning the failure to delete in place
// instead of logging it. Called with m.mu held.
func (m *Manager) takeWorkspaceAway(ticket string) (tomb string, err error) {
	dir := m.workspace(ticket)
	tomb = filepath.Join(m.work, tombstonePrefix+ticket+"-"+randomToken()[:8])
	err = os.Rename(dir, tomb)
	if err == nil {
		return tomb, nil
	}
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	return "", removeTree(dir)
}

// removeAside deletes a tombstone in the background: the ticket's workspace is already
// gone, and the caller (CompleteScript) need not wait for the files. One left by a crash
// is deleted by the next NewManager.
func (m *Manager) removeAside(tomb string) {
	if tomb == "" {
		return
	}
	m.removals.Go(func() {
		if err := removeTree(tomb); err != nil {
			m.log.Warn("cannot delete script workspace", "dir", tomb, "error", err)
		}
	})
}

// adoptWorkspaces takes over the workspaces left by earlier agent processes.
func (m *Manager) adoptWorkspaces() error {
	entries, err := os.ReadDir(m.work)
	if err != nil {
		return fmt.Errorf("cannot read the script work directory: %w", err)
	}
	type resumable struct {
		s  *script
		st *scriptState
	}
	var pending []resumable
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, tombstonePrefix) {
			_ = removeTree(filepath.Join(m.work, name))
			continue
		}
		if !e.IsDir() || ValidateTicket(name) != nil {
			continue
		}
		dir := m.workspace(name)
		st, err := readState(dir)
		if errors.Is(err, fs.ErrNotExist) {
			continue // a Start that never finished preparing: nothing ran; Start redoes it
		}
		if err != nil {
			m.log.Warn("unreadable script state; reporting an unknown result", "ticket", name, "error", err)
			st = &scriptState{Created: time.Now().UTC(), State: Running}
		}
		s := m.newScript(name, st.TaskID)
		close(s.prepared)
		if _, err := os.Stat(filepath.Join(dir, completeRequestName)); err == nil {
			s.completeRequested = true
		}
		m.scripts[name] = s
		switch {
		case st.State == Complete:
			m.settle(s)
		case st.State == Pending && fromEarlierBoot(st):
			m.finishUnlaunched(s, st, ExitCodeUnknownResult, "The machine restarted before this script started; it was not run.")
			m.settle(s)
		case st.Format != stateFormat || (st.State == Running && st.Launch == nil):
			// Upstream's own, or unreadable: no supervisor of ours can be running it.
			m.recordUnknownResult(s)
			m.settle(s)
		case st.State == Pending:
			s.stage = stagePending
			pending = append(pending, resumable{s, st})
		default:
			s.stage = stageLaunched
			if m.checkSupervisor(s) {
				m.settle(s)
				continue
			}
			m.log.Info("re-attached to running script", "ticket", name)
			lockReq := m.locks.hold(mutexNameOf(st), st.Isolation, s.owner)
			m.wg.Add(1)
			go m.followSupervisor(s, lockReq)
		}
	}
	// Queue the waiting scripts in the order they were started.
	slices.SortFunc(pending, func(a, b resumable) int { return a.st.Created.Compare(b.st.Created) })
	for _, p := range pending {
		m.log.Info("resuming script waiting for its isolation mutex", "ticket", p.s.ticket)
		lockReq := m.locks.request(mutexNameOf(p.st), p.st.Isolation, p.s.owner)
		m.wg.Add(1)
		go m.drive(p.s, p.st, lockReq)
	}
	return nil
}

func mutexNameOf(st *scriptState) string {
	if st.MutexName == "" {
		return DefaultMutexName
	}
	return st.MutexName
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// Counts reports how many scripts are waiting for their isolation mutex and
// how many are running, for the agent's metrics.
func (m *Manager) Counts() (pending, running int) {
	m.mu.Lock()
	list := make([]*script, 0, len(m.scripts))
	for _, s := range m.scripts {
		list = append(list, s)
	}
	m.mu.Unlock()
	for _, s := range list {
		select {
		case <-s.done:
			continue
		default:
		}
		s.mu.Lock()
		switch s.stage {
		case stagePending:
			pending++
		case stageLaunched:
			running++
		}
		s.mu.Unlock()
	}
	return pending, running
}
