package tentacleclient

import (
	"context"
	"time"

	"github.com/tentacle-go/tentacle/agent/contracts"
)

// How often a running script's status is asked for: soon after it starts
// (most scripts are short), then less often, up to once a second.
const (
	FirstStatusDelay = 50 * time.Millisecond
	MaxStatusDelay   = time.Second
)

// Observer hears about a running script; every field is optional.
type Observer struct {
	// Started is called once the Tentacle has accepted the script.
	Started func(*Script)
	// Logs receives the script's log lines, in order.
	Logs func([]contracts.ProcessOutput)
	// Cancelling is called once, when ctx ends and cancelling begins.
	Cancelling func()
}

// Result is how a script ended.
type Result struct {
	Service  ScriptService
	Ticket   contracts.ScriptTicket
	ExitCode int32
	// CompleteErr is set when the script ended but CompleteScript failed:
	// the Tentacle may keep its workspace; the exit code stands.
	CompleteErr error
}

// Run runs cmd to its end as an Octopus Server does: capabilities, then
// StartScript, GetStatus until the script is complete, CompleteScript, with
// the script service the Tentacle has. When ctx ends after the script has
// started, Run sends CancelScript (again at each poll, as upstream does)
// and still follows the script to its end, so that its last lines and exit
// code arrive; the RPCs themselves are never cut short. Errors are
// *StepError.
func (c Client) Run(ctx context.Context, cmd Command, obs Observer) (Result, error) {
	svc, err := c.PickScriptService(ctx)
	if err != nil {
		return Result{}, err
	}
	// From here the script may be running: a cut RPC would leave it behind,
	// so cancellation is a request of its own instead.
	rpc := context.WithoutCancel(ctx)
	s, st, err := c.Start(rpc, svc, cmd)
	if err != nil {
		return Result{}, err
	}
	res := Result{Service: svc, Ticket: s.Ticket}
	if obs.Started != nil {
		obs.Started(s)
	}
	logs := func(l []contracts.ProcessOutput) {
		if obs.Logs != nil && len(l) > 0 {
			obs.Logs(l)
		}
	}
	logs(st.Logs)
	delay := FirstStatusDelay
	cancelled := false
	for st.State != contracts.StateComplete {
		wait := time.NewTimer(delay)
		select {
		case <-wait.C:
		case <-doneUnless(ctx, cancelled):
			wait.Stop()
		}
		if !cancelled && ctx.Err() != nil {
			cancelled = true
			if obs.Cancelling != nil {
				obs.Cancelling()
			}
		}
		if cancelled {
			st, err = s.Cancel(rpc)
		} else {
			st, err = s.Status(rpc)
		}
		if err != nil {
			return res, err
		}
		logs(st.Logs)
		delay = min(delay*3/2, MaxStatusDelay)
	}
	res.ExitCode = st.ExitCode
	last, err := s.Complete(rpc)
	logs(last)
	res.CompleteErr = err
	return res, nil
}

// doneUnless is ctx.Done() until cancelling has begun, then nil (a channel
// that never fires), so that repeated cancels keep the polling pace.
func doneUnless(ctx context.Context, cancelled bool) <-chan struct{} {
	if cancelled {
		return nil
	}
	return ctx.Done()
}
