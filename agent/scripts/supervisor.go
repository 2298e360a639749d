package scripts

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"
)

// Supervise is the body of a script supervisor process: cmd/tentacle calls it, and exits
// with its result, when its first argument is SupervisorArg. args are the workspace
// directory and the launch token the agent appended to Config.SupervisorCommand.
//
// The supervisor owns the script from launch to completion: it holds the workspace's
// supervisor lock for its whole life (proof to any agent that it is alive), runs the shell
// in its own process group, appends every output line to the durable log, carries out
// cancellation, and records the exit code in the state file. It outlives the agent that
// started it. It returns 0 when it recorded a result (or found there was nothing to do).
func Supervise(args []string) int {
	if len(args) != 2 {
		fmt.Fprintf(os.Stderr, "usage: %s <workspace> <token>\n", SupervisorArg)
		return 2
	}
	dir, token := args[0], args[1]
	// Before anything else: a cancel signal must never kill the supervisor itself. The agent
	// only signals a supervisor that has written its PID, which happens after this.
	signals := make(chan os.Signal, 1)
	notifyCancelSignals(signals)

	lock, err := lockFile(filepath.Join(dir, supervisorLockName), true)
	if err != nil {
		fmt.Fprintf(os.Stderr, "script supervisor: %v\n", err)
		return 1
	}
	defer lock.unlock()
	st, err := readState(dir)
	if err != nil {
		fmt.Fprintf(os.Stderr, "script supervisor: %v\n", err)
		return 1
	}
	if st.State != Running || st.Launch == nil || st.Launch.Token != token {
		// An agent decided this launch's fate before we got the lock (it found no live
		// supervisor and recorded an unknown result); running the script now would be wrong.
		return 0
	}
	s := &supervisor{dir: dir, st: st, spec: st.Launch, signals: signals}
	return s.run()
}

type supervisor struct {
	dir     string
	st      *scriptState
	spec    *launchSpec
	signals chan os.Signal
	log     *logWriter
	logErr  error // a failure to write the log that lost lines; the result is then ExitCodeFatal
	logMu   sync.Mutex
	// Lines a write to the log failed for (a full disk), kept to be written once it works
	// again, up to maxUnwrittenLogBytes; past that, lines are counted as lost.
	unwritten      []logLine
	unwrittenBytes int
	lost           int
	writeErr       error // the last failure to write; nil once a write succeeds
	// shellStarted is set when the shell printed spec.StartMarker.
	shellStarted atomic.Bool
}

func (s *supervisor) run() int {
	s.st.SupervisorPID = os.Getpid()
	if err := writeState(s.dir, s.st, survivesProcessCrash); err != nil {
		fmt.Fprintf(os.Stderr, "script supervisor: %v\n", err)
	}
	w, err := openLogWriter(filepath.Join(s.dir, logFileName))
	if err != nil {
		fmt.Fprintf(os.Stderr, "script supervisor: %v\n", err)
		return s.finish(ExitCodeFatal, false)
	}
	s.log = w
	defer s.log.close()

	if s.cancelRequested() {
		s.write(StdErr, "Script execution canceled.")
		return s.finish(ExitCodeCanceled, false)
	}
	code, ran := s.runShell()
	// The lines a full disk held back: wait a while for space rather than lose them.
	s.writeLines(nil)
	for wait := time.Now().Add(maxWaitForLogSpace); s.hasUnwritten() && time.Now().Before(wait); {
		time.Sleep(unwrittenRetryInterval)
		s.writeLines(nil)
	}
	s.logMu.Lock()
	if len(s.unwritten) > 0 && s.logErr == nil {
		s.logErr = fmt.Errorf("%d lines of output could not be written to the log: %w", len(s.unwritten)+s.lost, s.writeErr)
	}
	s.logMu.Unlock()
	if err := s.log.sync(); err != nil && s.logErr == nil {
		s.logErr = err
	}
	if s.logErr != nil {
		fmt.Fprintf(os.Stderr, "script supervisor: %v\n", s.logErr)
		return s.finish(ExitCodeFatal, false)
	}
	return s.finish(code, ran)
}

// finish records the result; the state file is the last thing written, so anyone who sees
// Complete also sees every log line.
func (s *supervisor) finish(code int, ran bool) int {
	s.st.complete(code, ran)
	err := writeState(s.dir, s.st, survivesPowerLoss)
	// A full disk: the result is worth waiting for (until then the script reads as running).
	for wait := time.Now().Add(maxWaitForLogSpace); err != nil && time.Now().Before(wait); {
		time.Sleep(unwrittenRetryInterval)
		err = writeState(s.dir, s.st, survivesPowerLoss)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "script supervisor: cannot record exit code %d: %v\n", code, err)
		return 1
	}
	return 0
}

// write appends one line of the supervisor's own; a failure is remembered, not fatal.
func (s *supervisor) write(src Source, text string) {
	s.writeLines([]logLine{{source: src, at: time.Now().UTC(), text: text}})
}

// maxUnwrittenLogBytes bounds the output a supervisor holds while its log cannot be written
// (a full disk), waiting for space to come back.
const maxUnwrittenLogBytes = 4 << 20

// writeLines appends lines, after any that an earlier write failed for. A write that fails
// (a full disk) loses nothing at once: the lines are kept, up to maxUnwrittenLogBytes, and
// written, with the same sequence numbers, by writeLines(nil), which the supervisor calls
// every unwrittenRetryInterval while lines wait and once more when the script has ended. Lines past that
// bound are lost; the log then says how many and why, and the result is ExitCodeFatal,
// since the server cannot trust a log with a hole.
func (s *supervisor) writeLines(lines []logLine) {
	s.logMu.Lock()
	defer s.logMu.Unlock()
	if len(s.unwritten) == 0 && len(lines) > 0 {
		// The usual case: nothing held back, write straight through.
		err := s.log.append(lines...)
		if err == nil {
			return
		}
		s.writeErr = err
	}
	for _, l := range lines {
		if s.unwrittenBytes+len(l.text) > maxUnwrittenLogBytes && len(s.unwritten) > 0 {
			s.lost++
			continue
		}
		s.unwritten = append(s.unwritten, l)
		s.unwrittenBytes += len(l.text)
	}
	// While writing fails, new lines only join the queue: the retry timer (lines == nil)
	// tries again, so a full disk costs one attempt per interval, not one per line.
	if len(s.unwritten) == 0 || (s.writeErr != nil && lines != nil) {
		return
	}
	if err := s.log.append(s.unwritten...); err != nil {
		s.writeErr = err
		return
	}
	s.unwritten, s.unwrittenBytes = s.unwritten[:0], 0
	if s.lost > 0 {
		lost := fmt.Errorf("%d lines of the script's output were lost while its log could not be written: %w", s.lost, s.writeErr)
		if err := s.log.append(logLine{source: StdErr, at: time.Now().UTC(), text: lost.Error()}); err != nil {
			s.writeErr = err
			return
		}
		s.lost = 0
		if s.logErr == nil {
			s.logErr = lost
		}
	}
	s.writeErr = nil
}

// hasUnwritten says whether a failed write holds lines back.
func (s *supervisor) hasUnwritten() bool {
	s.logMu.Lock()
	defer s.logMu.Unlock()
	return len(s.unwritten) > 0
}

func (s *supervisor) cancelRequested() bool {
	_, err := os.Stat(filepath.Join(s.dir, cancelRequestName))
	return err == nil
}

// runShell runs the script to its end and returns its exit code and whether it came from
// the script's process.
func (s *supervisor) runShell() (int, bool) {
	spec := s.spec
	s.write(Debug, "Executable directory is "+filepath.Dir(spec.Path))
	s.write(Debug, "Executable name or full path: "+spec.Path)
	s.write(Debug, fmt.Sprintf("Starting %s in working directory '%s' using '%s' encoding running as '%s'",
		spec.Path, spec.Dir, spec.Encoding, currentUserName()))

	stdoutR, stdoutW, err := os.Pipe()
	if err != nil {
		s.write(StdErr, "Cannot create output pipe: "+err.Error())
		return ExitCodeLaunchFailed, false
	}
	stderrR, stderrW, err := os.Pipe()
	if err != nil {
		stdoutR.Close()
		stdoutW.Close()
		s.write(StdErr, "Cannot create output pipe: "+err.Error())
		return ExitCodeLaunchFailed, false
	}
	cmd := &exec.Cmd{Dir: spec.Dir, Env: os.Environ(), Stdout: stdoutW, Stderr: stderrW}
	run := *spec
	if !filepath.IsAbs(run.Path) {
		// A bare name such as PowerShell.exe is looked up on PATH.
		if found, err := exec.LookPath(run.Path); err == nil {
			run.Path = found
		}
	}
	group, err := startInGroup(cmd, &run)
	stdoutW.Close()
	stderrW.Close()
	if err != nil {
		stdoutR.Close()
		stderrR.Close()
		s.write(StdErr, fmt.Sprintf("Cannot start %s: %v", spec.Path, err))
		return ExitCodeLaunchFailed, false
	}
	defer group.close()
	started := time.Now().UTC()
	s.st.Started = &started
	s.st.ScriptPID = cmd.Process.Pid
	if err := writeState(s.dir, s.st, survivesProcessCrash); err != nil {
		fmt.Fprintf(os.Stderr, "script supervisor: %v\n", err)
	}

	// lines is never closed: on Windows a pump blocked reading a pipe that a background
	// child holds open cannot be interrupted, so pumps are told to stop (quit) instead.
	lines := make(chan logLine, 1024)
	quit := make(chan struct{})
	var pumps sync.WaitGroup
	for _, p := range []struct {
		r   *os.File
		src Source
	}{{stdoutR, StdOut}, {stderrR, StdErr}} {
		pumps.Add(1)
		go func() {
			defer pumps.Done()
			s.pump(p.r, p.src, lines, quit)
		}()
	}
	written := make(chan struct{})
	go func() {
		defer close(written)
		s.writeOutput(lines, quit)
	}()

	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	stopped := s.watchForCancel(group, exited)

	// Background children may hold the pipes open long after the shell is gone; give the
	// output a bounded time to arrive, then stop reading.
	pumped := make(chan struct{})
	go func() {
		pumps.Wait()
		close(pumped)
	}()
	select {
	case <-pumped:
	case <-time.After(spec.OutputDrainTimeout):
		// Unblocks the pumps where pipes support deadlines (Unix), keeping what they read.
		stdoutR.SetReadDeadline(time.Now())
		stderrR.SetReadDeadline(time.Now())
		select {
		case <-pumped:
		case <-time.After(time.Second):
		}
	}
	close(quit)
	<-written
	stdoutR.Close()
	stderrR.Close()
	if stopped != nil {
		<-stopped
	}
	code := exitCodeOf(cmd.ProcessState)
	s.write(Debug, fmt.Sprintf("Process %s in %s exited with code %d", spec.Path, spec.Dir, code))
	if spec.StartMarker != "" && !s.shellStarted.Load() && stopped == nil {
		s.write(StdErr, fmt.Sprintf("%s exited with code %d without running the script (it never printed its start marker), "+
			"so it is not a working PowerShell: Wine's powershell.exe, for one, is such a stub. "+
			"Install Windows PowerShell (%%SystemRoot%%\\System32\\WindowsPowerShell\\v1.0\\PowerShell.exe) or put a working PowerShell.exe on the agent's PATH, then run the step again.",
			run.Path, code))
		return ExitCodePowerShellNeverStarted, false
	}
	return code, true
}

// watchForCancel waits for the shell to exit, stopping the process group if a cancel
// request arrives first. It returns nil, or a channel closed once a cancelled group is gone.
func (s *supervisor) watchForCancel(group *processGroup, exited <-chan struct{}) <-chan struct{} {
	poll := time.NewTicker(s.spec.CancelPollInterval)
	defer poll.Stop()
	for {
		select {
		case <-exited:
			return nil
		case <-s.signals:
			if !s.cancelRequested() {
				// A SIGTERM from someone other than the agent is a cancel request all the same;
				// record it so it survives us.
				_ = os.WriteFile(filepath.Join(s.dir, cancelRequestName), nil, 0o600)
			}
		case <-poll.C:
			if !s.cancelRequested() {
				continue
			}
		}
		stopped := make(chan struct{})
		go func() {
			defer close(stopped)
			stopGroup(group, s.spec.KillGracePeriod)
		}()
		<-exited
		return stopped
	}
}

// stopGroup asks every process in the group to stop, then kills whatever is left after
// the grace period, and returns once the group is gone (or a last bounded wait passed).
func stopGroup(group *processGroup, grace time.Duration) {
	group.terminate()
	if waitEmpty(group, grace) {
		return
	}
	group.kill()
	waitEmpty(group, 5*time.Second)
}

func waitEmpty(group *processGroup, limit time.Duration) bool {
	deadline := time.Now().Add(limit)
	for !group.empty() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
	return true
}

// pump reads lines from one pipe, stamping each with the time it arrived.
func (s *supervisor) pump(r io.Reader, src Source, out chan<- logLine, quit <-chan struct{}) {
	sp := newLineSplitter(r, s.spec.MaxLineLength)
	for {
		line, err := sp.next()
		if err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, os.ErrDeadlineExceeded) && !errors.Is(err, os.ErrClosed) {
				s.write(Debug, fmt.Sprintf("Reading %s failed: %v", src, err))
			}
			return
		}
		if src == StdOut && s.spec.StartMarker != "" && !s.shellStarted.Load() && string(line) == s.spec.StartMarker {
			s.shellStarted.Store(true)
			continue
		}
		select {
		case out <- logLine{source: src, at: time.Now().UTC(), text: string(line)}:
		case <-quit:
			return
		}
	}
}

// unwrittenRetryInterval is how often lines a failed log write held back are tried again.
const unwrittenRetryInterval = 250 * time.Millisecond

// maxWaitForLogSpace bounds how long a supervisor whose script has ended waits for space to
// write the lines it holds and the result (a full disk), before it gives up on them.
const maxWaitForLogSpace = 10 * time.Minute

// writeOutput appends lines as they come, batching whatever is already queued into one
// write, and syncs the log at most LogSyncInterval after a write. Once quit is closed it
// writes what is still queued and returns.
func (s *supervisor) writeOutput(lines <-chan logLine, quit <-chan struct{}) {
	var batch []logLine
	syncTimer := time.NewTimer(time.Hour)
	syncTimer.Stop()
	syncPending := false
	// While a full disk holds lines back, try again now and then even if the script is quiet.
	retry := time.NewTimer(time.Hour)
	retry.Stop()
	retryPending := false
	armRetry := func() {
		if !retryPending && s.hasUnwritten() {
			retryPending = true
			retry.Reset(unwrittenRetryInterval)
		}
	}
	takeQueued := func() {
		for len(batch) < 512 {
			select {
			case l := <-lines:
				batch = append(batch, l)
			default:
				return
			}
		}
	}
	for {
		select {
		case <-quit:
			for {
				batch = batch[:0]
				takeQueued()
				if len(batch) == 0 {
					return
				}
				s.writeLines(batch)
			}
		case l := <-lines:
			batch = append(batch[:0], l)
			takeQueued()
			s.writeLines(batch)
			armRetry()
			if !syncPending {
				syncPending = true
				syncTimer.Reset(s.spec.LogSyncInterval)
			}
		case <-retry.C:
			retryPending = false
			s.writeLines(nil)
			armRetry()
		case <-syncTimer.C:
			syncPending = false
			s.logMu.Lock()
			if err := s.log.sync(); err != nil && s.logErr == nil {
				s.logErr = err
			}
			s.logMu.Unlock()
		}
	}
}

func currentUserName() string {
	if u, err := user.Current(); err == nil {
		return u.Username
	}
	return fmt.Sprintf("uid %d", os.Getuid())
}
