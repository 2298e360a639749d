package scripts

import (
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"unsafe"

	"golang.org/x/sys/windows"
)

// detachedSysProcAttr starts a supervisor without a console and outside the agent's
// console process group, so closing the agent's console or Ctrl+C does not reach it.
func detachedSysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{
		CreationFlags: windows.CREATE_NEW_PROCESS_GROUP | windows.DETACHED_PROCESS,
		HideWindow:    true,
	}
}

// signalSupervisor does nothing on Windows: there is no signal to send, and the supervisor
// finds the cancel request file within Config.CancelPollInterval.
func signalSupervisor(*os.Process) error { return nil }

func notifyCancelSignals(chan<- os.Signal) {}

// processGroup is a job object holding the script and every process it starts. Closing
// the last handle (the supervisor dying) kills them all.
type processGroup struct {
	job windows.Handle
}

const processSuspendResume = 0x0800

var ntResumeProcess = windows.NewLazySystemDLL("ntdll.dll").NewProc("NtResumeProcess")

func startInGroup(cmd *exec.Cmd, spec *launchSpec) (*processGroup, error) {
	job, err := windows.CreateJobObject(nil, nil)
	if err != nil {
		return nil, fmt.Errorf("cannot create job object: %w", err)
	}
	g := &processGroup{job: job}
	info := windows.JOBOBJECT_EXTENDED_LIMIT_INFORMATION{
		BasicLimitInformation: windows.JOBOBJECT_BASIC_LIMIT_INFORMATION{
			LimitFlags: windows.JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE,
		},
	}
	if _, err := windows.SetInformationJobObject(job, windows.JobObjectExtendedLimitInformation,
		uintptr(unsafe.Pointer(&info)), uint32(unsafe.Sizeof(info))); err != nil {
		g.close()
		return nil, fmt.Errorf("cannot configure job object: %w", err)
	}
	cmd.Path = spec.Path
	cmd.Args = spec.Args
	// Started suspended so that it cannot start a child before it is in the job.
	cmd.SysProcAttr = &syscall.SysProcAttr{
		CmdLine:       spec.CommandLine,
		CreationFlags: windows.CREATE_NEW_PROCESS_GROUP | windows.CREATE_SUSPENDED,
		HideWindow:    true,
	}
	if err := cmd.Start(); err != nil {
		g.close()
		return nil, err
	}
	h, err := windows.OpenProcess(windows.PROCESS_SET_QUOTA|windows.PROCESS_TERMINATE|processSuspendResume, false, uint32(cmd.Process.Pid))
	if err == nil {
		err = windows.AssignProcessToJobObject(job, h)
		if err == nil {
			if r, _, callErr := ntResumeProcess.Call(uintptr(h)); r != 0 {
				err = fmt.Errorf("cannot resume process: %v (NTSTATUS %#x)", callErr, r)
			}
		}
		windows.CloseHandle(h)
	}
	if err != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		g.close()
		return nil, fmt.Errorf("cannot put the script in a job object: %w", err)
	}
	return g, nil
}

func (g *processGroup) terminate() { _ = windows.TerminateJobObject(g.job, 1) }
func (g *processGroup) kill()      { _ = windows.TerminateJobObject(g.job, 1) }

// jobAccounting is JOBOBJECT_BASIC_ACCOUNTING_INFORMATION.
type jobAccounting struct {
	TotalUserTime             int64
	TotalKernelTime           int64
	ThisPeriodTotalUserTime   int64
	ThisPeriodTotalKernelTime int64
	TotalPageFaultCount       uint32
	TotalProcesses            uint32
	ActiveProcesses           uint32
	TotalTerminatedProcesses  uint32
}

func (g *processGroup) empty() bool {
	var info jobAccounting
	err := windows.QueryInformationJobObject(g.job, windows.JobObjectBasicAccountingInformation,
		uintptr(unsafe.Pointer(&info)), uint32(unsafe.Sizeof(info)), nil)
	return err != nil || info.ActiveProcesses == 0
}

func (g *processGroup) close() {
	if g.job != 0 {
		windows.CloseHandle(g.job)
		g.job = 0
	}
}

func exitCodeOf(ps *os.ProcessState) int { return ps.ExitCode() }
