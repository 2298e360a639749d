//go:build !windows

package scripts

import (
	"errors"
	"os"
	"os/exec"
	"os/signal"
	"syscall"
)

// detachedSysProcAttr starts a supervisor in its own session, so it has no controlling
// terminal and no signal aimed at the agent's process group or session reaches it.
func detachedSysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setsid: true}
}

// signalSupervisor asks a live supervisor to cancel its script now instead of at its next
// look for the cancel request file.
func signalSupervisor(p *os.Process) error {
	return p.Signal(syscall.SIGTERM)
}

// notifyCancelSignals routes the supervisor's cancel signal to ch and ignores the signals
// meant for interactive sessions.
func notifyCancelSignals(ch chan<- os.Signal) {
	signal.Notify(ch, syscall.SIGTERM)
	signal.Ignore(syscall.SIGINT, syscall.SIGHUP)
}

// processGroup is the script's process group: the shell leads it and everything it starts
// belongs to it unless it deliberately leaves (setsid), so one signal reaches them all.
type processGroup struct {
	pgid int
}

func startInGroup(cmd *exec.Cmd, spec *launchSpec) (*processGroup, error) {
	cmd.Path = spec.Path
	cmd.Args = spec.Args
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	setParentDeathSignal(cmd.SysProcAttr)
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	return &processGroup{pgid: cmd.Process.Pid}, nil
}

func (g *processGroup) terminate() { _ = syscall.Kill(-g.pgid, syscall.SIGTERM) }
func (g *processGroup) kill()      { _ = syscall.Kill(-g.pgid, syscall.SIGKILL) }

// empty reports whether no process is left in the group.
func (g *processGroup) empty() bool {
	return errors.Is(syscall.Kill(-g.pgid, 0), syscall.ESRCH)
}

func (g *processGroup) close() {}

// exitCodeOf reports a process killed by a signal the way shells and .NET on Unix do,
// 128 + the signal number, rather than Go's -1.
func exitCodeOf(ps *os.ProcessState) int {
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ps.ExitCode()
}
