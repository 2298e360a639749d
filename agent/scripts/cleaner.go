package scripts

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// The workspace cleaner removes the workspaces of scripts that finished but were never
// completed by the server (it crashed, gave up, or lost the ticket), as upstream's
// WorkspaceCleaner does, so that a worker's disk does not fill up over months.
//
// Only a directory directly in Home/Work whose name is a valid ticket (ValidateTicket) and
// that holds a log (Output.seqlog, or upstream's Output.log) or a bootstrap script
// (Bootstrap.sh, Bootstrap.ps1) is a workspace; anything else there is left alone, as are
// symbolic links. A workspace is removed when the Manager has no live script for its
// ticket and its log (else its bootstrap script) was last written before the cut-off.
//
// Live means waiting for its mutex, being prepared or launched, running, or re-attached
// after a restart: the decision and the removal happen under the Manager's lock, the same
// lock under which Start registers a ticket, so a script can never start in a workspace
// being removed, and a script that was live when the decision was taken is never
// touched. As a last guard, a workspace whose supervisor lock is held is skipped.

// Clock is the workspace cleaner's time: what time it is, and a channel that delivers
// once d has passed. Tests substitute a clock they drive.
type Clock interface {
	Now() time.Time
	After(d time.Duration) <-chan time.Time
}

// SystemClock is the real time.
type SystemClock struct{}

func (SystemClock) Now() time.Time                         { return time.Now() }
func (SystemClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// CleanerConfig configures RunWorkspaceCleaner.
type CleanerConfig struct {
	// Interval is the time between two passes (upstream's TENTACLE_WORKSPACE_CLEANER_DELAY).
	// It must be positive.
	Interval time.Duration
	// DeleteOlderThan is how long a finished workspace is kept after its log was last
	// written (TENTACLE_WORKSPACE_CLEANER_DELETE_OLDER_THAN). Zero removes every finished
	// workspace at each pass; it may not be negative.
	DeleteOlderThan time.Duration
	// Clock defaults to SystemClock.
	Clock Clock
}

// RunWorkspaceCleaner cleans at once and then every cfg.Interval (counted from the end of
// a pass), until ctx ends or the Manager is closed. It returns an error only for a
// configuration that cannot work.
func (m *Manager) RunWorkspaceCleaner(ctx context.Context, cfg CleanerConfig) error {
	if cfg.Interval <= 0 {
		return fmt.Errorf("scripts: the workspace cleaner's interval is %v; it must be positive", cfg.Interval)
	}
	if cfg.DeleteOlderThan < 0 {
		return fmt.Errorf("scripts: the workspace cleaner's age limit is %v; it may not be negative", cfg.DeleteOlderThan)
	}
	clock := cfg.Clock
	if clock == nil {
		clock = SystemClock{}
	}
	m.log.Info("workspace cleaner started", "delete_older_than", cfg.DeleteOlderThan.String(), "interval", cfg.Interval.String())
	for {
		m.CleanWorkspaces(clock.Now(), cfg.DeleteOlderThan)
		select {
		case <-clock.After(cfg.Interval):
		case <-ctx.Done():
			return nil
		case <-m.closing:
			return nil
		}
	}
}

// CleanWorkspaces makes one pass of the workspace cleaner: it removes every workspace with
// no live script whose log (else bootstrap script) was last written before now minus
// olderThan, and returns their tickets. Removals are logged at Info, failures at Warn.
func (m *Manager) CleanWorkspaces(now time.Time, olderThan time.Duration) []string {
	cutoff := now.Add(-olderThan)
	entries, err := os.ReadDir(m.work)
	if err != nil {
		m.log.Warn("workspace cleaner cannot read the script work directory", "dir", m.work, "error", err)
		return nil
	}
	var removed []string
	for _, e := range entries {
		// DirEntry.IsDir is false for a symbolic link, whatever it points to.
		if !e.IsDir() || ValidateTicket(e.Name()) != nil {
			continue
		}
		ticket := e.Name()
		lastWrite, tomb, err := m.takeAbandonedWorkspace(ticket, cutoff)
		if err != nil {
			m.log.Warn("workspace cleaner cannot delete script workspace; retrying at the next pass", "ticket", ticket, "dir", m.workspace(ticket), "error", err)
			continue
		}
		if lastWrite.IsZero() {
			continue
		}
		if tomb != "" {
			if err := removeTree(tomb); err != nil {
				// The ticket's workspace is gone; the next NewManager deletes the rest.
				m.log.Warn("workspace cleaner cannot delete all of a script workspace", "ticket", ticket, "dir", tomb, "error", err)
			}
		}
		m.log.Info("workspace cleaner deleted script workspace", "ticket", ticket, "last_written", lastWrite.UTC().Format(time.RFC3339))
		removed = append(removed, ticket)
	}
	if len(removed) > 0 {
		m.log.Info("workspace cleaner deleted workspaces", "count", len(removed), "older_than", cutoff.UTC().Format(time.RFC3339))
	} else {
		m.log.Debug("workspace cleaner found no workspace to delete", "older_than", cutoff.UTC().Format(time.RFC3339))
	}
	return removed
}

// takeAbandonedWorkspace decides, under m.mu, whether ticket's workspace is abandoned and
// older than cutoff, and if so forgets the ticket and moves the workspace aside. It
// returns the workspace's last write (zero when it was left alone) and the tombstone to
// delete ("" when it was deleted in place or was already gone).
func (m *Manager) takeAbandonedWorkspace(ticket string, cutoff time.Time) (lastWrite time.Time, tomb string, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return time.Time{}, "", nil
	}
	s := m.scripts[ticket]
	if s != nil {
		select {
		case <-s.done:
			// Finished, and the server has not completed it (else it would be gone).
		default:
			return time.Time{}, "", nil // being prepared, waiting, launched or re-attached
		}
	}
	dir := m.workspace(ticket)
	at, ok := lastWorkspaceWrite(dir)
	if !ok || !at.Before(cutoff) {
		return time.Time{}, "", nil
	}
	if supervisorLockHeld(s, dir) {
		return time.Time{}, "", nil
	}
	if s != nil {
		delete(m.scripts, ticket)
	}
	tomb, err = m.takeWorkspaceAway(ticket)
	if err != nil {
		return time.Time{}, "", err
	}
	return at, tomb, nil
}

// lastWorkspaceWrite is when dir's script last wrote its log, else when its bootstrap
// script was written; ok is false when dir holds none of them, i.e. is not a workspace.
// In a workspace upstream left (no state file of ours), upstream's Output.log comes
// first: an Output.seqlog there holds only the line this package added on adopting it.
func lastWorkspaceWrite(dir string) (at time.Time, ok bool) {
	logs := []string{upstreamLogFileName, logFileName}
	if st, err := readState(dir); err == nil && st.Format == stateFormat {
		logs = []string{logFileName}
	}
	for _, name := range logs {
		if t, ok := regularFileModTime(filepath.Join(dir, name)); ok {
			return t, true
		}
	}
	for _, name := range []string{bashBootstrapName, powerShellBootstrapName} {
		if t, found := regularFileModTime(filepath.Join(dir, name)); found && (!ok || t.After(at)) {
			at, ok = t, true
		}
	}
	return at, ok
}

func regularFileModTime(path string) (time.Time, bool) {
	fi, err := os.Lstat(path)
	if err != nil || !fi.Mode().IsRegular() {
		return time.Time{}, false
	}
	return fi.ModTime(), true
}

// supervisorLockHeld reports whether a supervisor (of any agent process) holds dir's lock,
// or whether that cannot be told; either way the workspace must not be touched.
func supervisorLockHeld(s *script, dir string) bool {
	path := filepath.Join(dir, supervisorLockName)
	if _, err := os.Lstat(path); errors.Is(err, fs.ErrNotExist) {
		return false
	}
	if s != nil {
		s.probeMu.Lock()
		defer s.probeMu.Unlock()
	}
	lock, err := lockFile(path, false)
	if err != nil {
		return true
	}
	lock.unlock()
	return false
}
