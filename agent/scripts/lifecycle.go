package scripts

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// Who writes a workspace's log and state file, so that there is never more than one
// writer: the agent while the script is Pending; from the moment the agent writes the
// launch into the state file, the supervisor with that launch's token; and after that only
// whoever holds the supervisor lock, i.e. an agent that has proved the supervisor is gone.

// drive takes a new or resumed Pending script through its isolation wait and launch, then
// follows its supervisor. It owes one m.wg.Done.
func (m *Manager) drive(s *script, st *scriptState, lockReq *lockRequest) {
	ctx, stopWaiting := context.WithCancel(context.Background())
	defer stopWaiting()
	s.mu.Lock()
	s.stopWaiting = stopWaiting
	canceled := s.cancelRequested
	s.mu.Unlock()
	if canceled {
		stopWaiting()
	}

	switch m.acquireIsolation(ctx, s, st, lockReq) {
	case lockClosed:
		m.wg.Done()
		return
	case lockTimedOut:
		m.finishUnlaunched(s, st, ExitCodeTimeout, "Script execution timed out.")
		m.settle(s)
		m.wg.Done()
		return
	case lockCanceled:
		m.finishUnlaunched(s, st, ExitCodeCanceled, "Script execution canceled.")
		m.settle(s)
		m.wg.Done()
		return
	}
	if !m.launch(s, st) {
		lockReq.release()
		if !m.isClosed() {
			m.settle(s)
		}
		m.wg.Done()
		return
	}
	m.followSupervisor(s, lockReq)
}

type lockOutcome int

const (
	lockAcquired lockOutcome = iota
	lockTimedOut
	lockCanceled
	lockClosed
)

// acquireIsolation waits for the script's isolation mutex, logging what it waits for. The
// timeout runs from the script's creation, so a wait resumed after a restart keeps its
// original deadline.
func (m *Manager) acquireIsolation(ctx context.Context, s *script, st *scriptState, r *lockRequest) lockOutcome {
	name := mutexNameOf(st)
	acquired := func() lockOutcome {
		m.appendAgentLog(s, beforeLaunch(), StdOut,
			"##octopus[stdout-verbose]",
			fmt.Sprintf("Acquired isolation mutex %s with %s", name, st.Isolation),
			"##octopus[stdout-default]")
		return lockAcquired
	}
	select {
	case <-r.granted:
		return acquired()
	default:
	}
	m.appendAgentLog(s, beforeLaunch(), StdOut, waitingLines(r.blockers(), st.Isolation)...)
	var deadline <-chan time.Time
	if limit := st.MutexTimeout; limit > 0 && limit < MaxMutexTimeout {
		t := time.NewTimer(time.Until(st.Created.Add(limit)))
		defer t.Stop()
		deadline = t.C
	}
	tick := time.NewTicker(m.cfg.MutexWaitLogInterval)
	defer tick.Stop()
	for {
		select {
		case <-r.granted:
			return acquired()
		case <-deadline:
			r.release()
			return lockTimedOut
		case <-ctx.Done():
			r.release()
			return lockCanceled
		case <-m.closing:
			r.release()
			return lockClosed
		case <-tick.C:
			m.appendAgentLog(s, beforeLaunch(), StdOut, waitingLines(r.blockers(), st.Isolation)...)
		}
	}
}

// waitingLines are the service-message lines upstream writes while a script waits for its
// mutex; the server shows them as a "waiting" state with links to the blocking tasks.
func waitingLines(blockers []string, level Isolation) []string {
	links := make([]string, len(blockers))
	for i, b := range blockers {
		links[i] = fmt.Sprintf("[%s](~/app#/tasks/%s)", b, b)
	}
	var who string
	switch len(links) {
	case 0:
		who = "other scripts"
	case 1:
		who = "the script in task " + links[0]
	default:
		who = "the scripts in tasks " + strings.Join(links, ", ")
	}
	reason := "This script requires that no other scripts run on this machine at the same time."
	if level == NoIsolation {
		reason = "This script cannot run while a script that requires isolation is running on this machine."
	}
	return []string{
		"##octopus[stdout-wait]",
		fmt.Sprintf("Waiting for %s to finish. %s", who, reason),
		"##octopus[stdout-default]",
	}
}

// launch hands a script that holds its mutex to a supervisor. It returns false when the
// script did not get to one (it is then Complete, or the Manager is closing).
func (m *Manager) launch(s *script, st *scriptState) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if m.isClosed() {
		return false // still Pending on disk: the next Manager resumes it
	}
	if s.cancelRequested {
		m.finishUnlaunched(s, st, ExitCodeCanceled, "Script execution canceled.")
		return false
	}
	if err := m.startSupervisor(s, st); err != nil {
		m.log.Error("cannot start script supervisor", "ticket", s.ticket, "error", err)
		m.finishUnlaunched(s, st, ExitCodeLaunchFailed, "Cannot start the script: "+err.Error())
		return false
	}
	return true
}

// startSupervisor records a launch with a fresh token and starts a supervisor for it.
// Called with s.mu held, and with no supervisor of this script alive.
func (m *Manager) startSupervisor(s *script, st *scriptState) error {
	token := randomToken()
	st.State = Running
	st.Launch = m.launchSpec(s, st, token)
	st.SupervisorPID = 0
	if err := writeState(s.dir, st, beforeLaunch()); err != nil {
		return err
	}
	cmdArgs := append(append([]string{}, m.cfg.SupervisorCommand[1:]...), s.dir, token)
	cmd := exec.Command(m.cfg.SupervisorCommand[0], cmdArgs...)
	cmd.Env = append(os.Environ(), m.cfg.Environment...)
	cmd.Dir = m.work // not the workspace: a process's directory cannot be deleted on Windows
	cmd.SysProcAttr = detachedSysProcAttr()
	if errLog, err := os.OpenFile(filepath.Join(s.dir, supervisorErrName), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600); err == nil {
		cmd.Stdout, cmd.Stderr = errLog, errLog
		defer errLog.Close()
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("cannot start the script supervisor: %w", err)
	}
	s.stage = stageLaunched
	s.supervisor = cmd.Process
	exited := make(chan struct{})
	s.supervisorExited = exited
	go func() {
		_ = cmd.Wait() // reaps the supervisor even after this Manager is closed
		close(exited)
	}()
	return nil
}

func (m *Manager) launchSpec(s *script, st *scriptState, token string) *launchSpec {
	spec := &launchSpec{
		Token:              token,
		Dir:                s.dir,
		Encoding:           "utf-8",
		KillGracePeriod:    m.cfg.KillGracePeriod,
		OutputDrainTimeout: m.cfg.OutputDrainTimeout,
		MaxLineLength:      m.cfg.MaxLineLength,
		LogSyncInterval:    m.cfg.LogSyncInterval,
		CancelPollInterval: m.cfg.CancelPollInterval,
	}
	if m.flavor == powerShellFlavor {
		ps := m.cfg.PowerShellPath
		spec.Path, spec.Args = ps, []string{ps}
		spec.StartMarker = powerShellStartMarker(token)
		spec.CommandLine = powerShellCommandLine(ps, filepath.Join(s.dir, powerShellBootstrapName), spec.StartMarker, st.Arguments)
		return spec
	}
	spec.Path = m.cfg.BashPath
	spec.Args = bashArgv(m.cfg.BashPath, filepath.Join(s.dir, bashBootstrapName), st.Arguments)
	return spec
}

// followSupervisor waits until the script's supervisor is gone and its result recorded,
// then gives back the mutex. The exit of our own child is seen at once; a re-attached
// supervisor is checked every ReattachPollInterval. It owes one m.wg.Done.
func (m *Manager) followSupervisor(s *script, lockReq *lockRequest) {
	defer m.wg.Done()
	tick := time.NewTicker(m.cfg.ReattachPollInterval)
	defer tick.Stop()
	for {
		s.mu.Lock()
		exited := s.supervisorExited
		s.mu.Unlock()
		if exited != nil {
			select {
			case <-exited:
			case <-m.closing:
				return
			}
		}
		if m.checkSupervisor(s) {
			break
		}
		select {
		case <-tick.C:
		case <-m.closing:
			return
		}
	}
	lockReq.release()
	m.settle(s)
}

// checkSupervisor reports whether the script is finished, settling what a dead supervisor
// left behind. The supervisor lock decides who is alive: a supervisor holds it exactly as
// long as it lives, whatever becomes of its PID.
//
// A launch that no supervisor took charge of (no PID recorded) has not run the script: a
// re-attaching agent launches it again; if it was our own child that gave up, the launch
// failed. A supervisor that took charge and died leaves an unknown result.
func (m *Manager) checkSupervisor(s *script) (finished bool) {
	s.probeMu.Lock()
	defer s.probeMu.Unlock()
	lock, err := lockFile(filepath.Join(s.dir, supervisorLockName), false)
	if errors.Is(err, errLocked) {
		return false
	}
	if err != nil {
		m.log.Warn("cannot check script supervisor", "ticket", s.ticket, "error", err)
		return false
	}
	defer lock.unlock()
	st, err := readState(s.dir)
	if err == nil && st.State == Complete {
		return true
	}
	// A launch whose supervisor never started is retried, unless the machine has
	// restarted since: its workspace may be torn, and the server gave up on it.
	if err == nil && st.State == Running && st.Format == stateFormat && st.Launch != nil && st.SupervisorPID == 0 && !fromEarlierBoot(st) {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.supervisorExited != nil {
			m.finishUnlaunched(s, st, ExitCodeLaunchFailed,
				"The script supervisor ended before starting the script; see "+supervisorErrName+" in the workspace.")
			return true
		}
		if m.isClosed() {
			return false
		}
		// Any supervisor of the old launch still on its way finds a different token
		// once it gets the lock, and leaves.
		m.log.Info("relaunching script whose supervisor never started", "ticket", s.ticket)
		if err := m.startSupervisor(s, st); err != nil {
			m.log.Error("cannot start script supervisor", "ticket", s.ticket, "error", err)
			m.finishUnlaunched(s, st, ExitCodeLaunchFailed, "Cannot start the script: "+err.Error())
			return true
		}
		return false
	}
	// Not finished until the result is on disk (a full disk): the next check tries again.
	return m.recordUnknownResult(s)
}

// recordUnknownResult marks a script whose supervisor is gone (or never was ours) as
// Complete with ExitCodeUnknownResult, as upstream reports a script it lost track of, and
// says whether the result is recorded. The caller holds the supervisor lock or knows no
// supervisor of ours exists.
func (m *Manager) recordUnknownResult(s *script) bool {
	st, err := readState(s.dir)
	if err != nil {
		st = &scriptState{Created: time.Now().UTC()}
	}
	if st.State == Complete {
		return true
	}
	m.log.Warn("script supervisor ended without recording a result", "ticket", s.ticket)
	m.appendAgentLog(s, survivesPowerLoss, StdErr, "The process supervising this script ended without recording the script's result; its outcome is unknown.")
	st.complete(ExitCodeUnknownResult, false)
	if err := writeState(s.dir, st, survivesPowerLoss); err != nil {
		m.log.Error("cannot record script result", "ticket", s.ticket, "error", err)
		return false
	}
	return true
}

// finishUnlaunched records the end of a script that never reached a supervisor.
func (m *Manager) finishUnlaunched(s *script, st *scriptState, code int, message string) {
	m.appendAgentLog(s, survivesPowerLoss, StdErr, message)
	st.complete(code, false)
	if err := writeState(s.dir, st, survivesPowerLoss); err != nil {
		m.log.Error("cannot record script result", "ticket", s.ticket, "error", err)
	}
}

// settle marks a script finished, wakes whoever waits for it, and deletes its workspace
// if CompleteScript already asked for that.
func (m *Manager) settle(s *script) {
	s.mu.Lock()
	s.stage = stageFinished
	remove := s.completeRequested
	s.mu.Unlock()
	s.doneOnce.Do(func() { close(s.done) })
	if remove {
		m.forget(s)
	}
}

// appendAgentLog writes lines the agent itself adds to a script's log; see the ownership
// rules at the top of this file.
func (m *Manager) appendAgentLog(s *script, d durability, src Source, texts ...string) {
	now := time.Now().UTC()
	lines := make([]logLine, len(texts))
	for i, t := range texts {
		lines[i] = logLine{source: src, at: now, text: t}
	}
	if err := appendLogLines(filepath.Join(s.dir, logFileName), d, lines...); err != nil {
		m.log.Error("cannot write script log", "ticket", s.ticket, "error", err)
	}
}

func (m *Manager) isClosed() bool {
	select {
	case <-m.closing:
		return true
	default:
		return false
	}
}
