//go:build windows

package service

import (
	"context"
	"errors"
	"fmt"
	"time"

	"golang.org/x/sys/windows"
	"golang.org/x/sys/windows/svc"
)

// stopWaitHint tells the SCM how long a stop may take: the agent finishes
// requests in flight for up to 30 s.
const stopWaitHint = 45 * time.Second

// RunAsWindowsServiceIfNeeded runs the agent under the Windows Service
// Control Manager when the process was started by it: run gets a context
// that ends on Stop or Shutdown, and the service reports Stopped once run
// returns. It reports handled=false for an interactive process (the caller
// then runs the agent itself, stopping on Ctrl+C). name is the service's
// name (WindowsServiceName).
//
// startedBySCM is ServiceFlag on the command line, which the services this
// package installs carry. svc.IsWindowsService alone is not enough: it
// looks for a session-0 parent, and Wine runs services in session 1. A
// service installed by upstream (no flag) is still recognised by it. A
// flagged process that the SCM did not start (someone pasted the service's
// command line into a console) gets an error saying so, with handled=false:
// the caller runs in the foreground.
func RunAsWindowsServiceIfNeeded(name string, startedBySCM bool, run func(ctx context.Context) error) (handled bool, err error) {
	if !startedBySCM {
		isService, err := svc.IsWindowsService()
		if err != nil || !isService {
			return false, err
		}
	}
	h := &scmHandler{run: run}
	if err := svc.Run(name, h); err != nil {
		if errors.Is(err, windows.ERROR_FAILED_SERVICE_CONTROLLER_CONNECT) {
			return false, fmt.Errorf("%s was given but the Service Control Manager did not start this process: running in the foreground", ServiceFlag)
		}
		return true, err
	}
	return true, h.err
}

// scmHandler speaks the SCM's control protocol for one agent run.
type scmHandler struct {
	run func(ctx context.Context) error
	err error
}

func (h *scmHandler) Execute(args []string, requests <-chan svc.ChangeRequest, status chan<- svc.Status) (svcSpecificEC bool, exitCode uint32) {
	const accepted = svc.AcceptStop | svc.AcceptShutdown
	status <- svc.Status{State: svc.StartPending}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- h.run(ctx) }()
	status <- svc.Status{State: svc.Running, Accepts: accepted}
	for {
		select {
		case err := <-done:
			// The agent ended on its own: a non-zero service-specific exit
			// code makes it a failure the recovery actions answer.
			h.err = err
			if err != nil {
				return true, 1
			}
			return false, 0
		case r := <-requests:
			switch r.Cmd {
			case svc.Interrogate:
				status <- r.CurrentStatus
			case svc.Stop, svc.Shutdown:
				status <- svc.Status{State: svc.StopPending, WaitHint: uint32(stopWaitHint / time.Millisecond)}
				cancel()
				h.err = <-done
				return false, 0
			}
		}
	}
}
