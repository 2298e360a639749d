package scripts

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"time"
)

// A spare supervisor is a supervisor process started ahead of need: it has already paid
// for exec, the Go runtime's start and the initialisation of every package linked into
// the binary (the cloud SDKs' included), and waits on a pipe for a launch. Handing it a
// launch takes a write instead of a process start, which is most of the agent's share of
// a short script's latency, and on a busy machine most of its tail (docs/benchmarks.md).
//
// The spare holds nothing until it is handed a launch: no workspace, no lock. If the
// agent goes away (closed, or killed) the pipe ends and the spare exits; an idle one is
// also stopped after Config.SpareSupervisorIdle, so an agent that runs no scripts keeps
// no extra process. Once handed a launch it is an ordinary supervisor, started detached
// like any other, and everything in lifecycle.go applies unchanged.

// spareArg is the argument (after Config.SupervisorCommand) that starts a spare.
const spareArg = "spare"

// spareLaunchFD is the spare's end of the launch pipe (the first of ExtraFiles).
const spareLaunchFD = 3

type spareSupervisor struct {
	cmd    *exec.Cmd
	launch *os.File      // the agent's end of the launch pipe
	result *os.File      // the agent's end of the result pipe (resultpipe.go)
	exited chan struct{} // closed once the process has been reaped
	quiet  chan struct{} // closed once what it said before its launch is logged
}

// sparesSupported: os/exec passes extra file descriptors on Unix only.
const sparesSupported = extraFilesSupported

// takeSpare returns the idle spare, if there is one, for the caller to hand a launch to.
func (m *Manager) takeSpare() *spareSupervisor {
	m.spareMu.Lock()
	defer m.spareMu.Unlock()
	sp := m.spare
	m.spare = nil
	if m.spareIdle != nil {
		m.spareIdle.Stop()
	}
	return sp
}

// refillSpare starts a new spare in the background unless one is there, spares are off,
// or the Manager is closing.
func (m *Manager) refillSpare() {
	if !sparesSupported || m.cfg.SpareSupervisorIdle < 0 {
		return
	}
	m.spareMu.Lock()
	defer m.spareMu.Unlock()
	if m.spare != nil || m.spareStarting || m.isClosed() {
		return
	}
	m.spareStarting = true
	m.wg.Go(func() {
		sp, err := m.startSpare()
		m.spareMu.Lock()
		m.spareStarting = false
		if err != nil || m.isClosed() || m.spare != nil {
			m.spareMu.Unlock()
			if err != nil {
				m.log.Debug("cannot start a spare script supervisor", "error", err)
			} else {
				sp.stop()
			}
			return
		}
		m.spare = sp
		if m.spareIdle == nil {
			m.spareIdle = time.AfterFunc(m.cfg.SpareSupervisorIdle, m.retireSpare)
		} else {
			m.spareIdle.Reset(m.cfg.SpareSupervisorIdle)
		}
		m.spareMu.Unlock()
	})
}

// retireSpare stops the idle spare (after Config.SpareSupervisorIdle, or at Close).
func (m *Manager) retireSpare() {
	if sp := m.takeSpare(); sp != nil {
		sp.stop()
	}
}

func (m *Manager) startSpare() (*spareSupervisor, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	defer r.Close()
	resultR, resultW, err := os.Pipe()
	if err != nil {
		w.Close()
		return nil, err
	}
	defer resultW.Close()
	cmdArgs := append(append([]string{}, m.cfg.SupervisorCommand[1:]...), spareArg)
	cmd := exec.Command(m.cfg.SupervisorCommand[0], cmdArgs...)
	cmd.Env = append(os.Environ(), m.cfg.Environment...)
	cmd.Dir = m.work
	cmd.SysProcAttr = detachedSysProcAttr()
	cmd.ExtraFiles = []*os.File{r, resultW} // spareLaunchFD, spareResultFD
	// Until it has a workspace, the spare has nowhere of its own to report to: anything it
	// says before then (it says nothing when all is well) goes to the agent's log, through
	// a pipe, so that the work directory holds nothing but workspaces.
	outR, outW, err := os.Pipe()
	if err != nil {
		w.Close()
		resultR.Close()
		return nil, err
	}
	defer outW.Close()
	cmd.Stdout, cmd.Stderr = outW, outW
	if err := cmd.Start(); err != nil {
		w.Close()
		resultR.Close()
		outR.Close()
		return nil, fmt.Errorf("cannot start a spare script supervisor: %w", err)
	}
	sp := &spareSupervisor{cmd: cmd, launch: w, result: resultR, exited: make(chan struct{}), quiet: make(chan struct{})}
	go func() {
		m.logSpareOutput(cmd.Process.Pid, outR)
		close(sp.quiet)
	}()
	go func() {
		_ = cmd.Wait() // reaps it, even after this Manager is closed
		close(sp.exited)
	}()
	return sp, nil
}

// logSpareOutput copies what a spare says before its launch into the agent's log. It ends
// when the spare exits or, once launched, points its output at its workspace.
func (m *Manager) logSpareOutput(pid int, r *os.File) {
	defer r.Close()
	lines := bufio.NewScanner(r)
	for lines.Scan() {
		m.log.Warn("spare script supervisor", "pid", pid, "output", lines.Text())
	}
}

// hand gives the spare its launch. An error means the spare is gone (it is then
// stopped) and the launch must be started some other way.
func (sp *spareSupervisor) hand(dir, token string) error {
	_, err := io.WriteString(sp.launch, dir+"\n"+token+"\n")
	if cerr := sp.launch.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		select {
		case <-sp.exited:
			err = errors.New("the spare supervisor has exited")
		default:
		}
	}
	if err != nil {
		sp.stop()
	}
	return err
}

// stop ends an idle spare and returns once it has exited and been reaped, so that the
// agent's stopping leaves no process of its own behind. The spare holds nothing, so
// killing it loses nothing.
func (sp *spareSupervisor) stop() {
	sp.launch.Close()
	sp.result.Close()
	_ = sp.cmd.Process.Kill()
	<-sp.exited
	<-sp.quiet
}

// prepareForLaunch does, while no script waits, what a supervisor would otherwise do on
// the script's path the first time: Go's one-off probe of pidfd support before the first
// process start (on Linux it forks a child) and the user name the log names.
func prepareForLaunch() {
	if p, err := os.FindProcess(os.Getpid()); err == nil {
		_ = p.Release()
	}
	currentUserName()
}

// waitForLaunch is a spare's wait for its launch: the workspace and token, one a line,
// then the end of the pipe. ok is false when the agent went away without one.
func waitForLaunch() (dir, token string, ok bool) {
	f := os.NewFile(spareLaunchFD, "launch")
	if f == nil {
		return "", "", false
	}
	defer f.Close()
	b, err := io.ReadAll(bufio.NewReader(io.LimitReader(f, 64<<10)))
	if err != nil {
		return "", "", false
	}
	dir, rest, found := strings.Cut(string(b), "\n")
	token, _, found2 := strings.Cut(rest, "\n")
	if !found || !found2 || dir == "" || token == "" {
		return "", "", false
	}
	return dir, token, true
}
