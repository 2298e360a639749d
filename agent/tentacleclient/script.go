package tentacleclient

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"strings"
	"time"

	"github.com/tentacle-go/tentacle/agent/contracts"
)

// ScriptService is the script service a script runs under.
type ScriptService int

const (
	// ScriptServiceV1 is the legacy IScriptService: the Tentacle chooses the
	// ticket, StartScript returns only that, CompleteScript returns a status.
	ScriptServiceV1 ScriptService = 1
	// ScriptServiceV2 is IScriptServiceV2 (Tentacles from mid-2023): the
	// client chooses the ticket and StartScript may wait for a short script.
	ScriptServiceV2 ScriptService = 2
)

// String is the service's Halibut name.
func (s ScriptService) String() string {
	if s == ScriptServiceV1 {
		return contracts.ScriptServiceName
	}
	return contracts.ScriptServiceV2Name
}

// PickScriptService chooses as upstream's client does: V2 when listed,
// else V1.
func PickScriptService(caps Capabilities) (ScriptService, error) {
	switch {
	case caps.Has(contracts.ScriptServiceV2Name):
		return ScriptServiceV2, nil
	case caps.Has(contracts.ScriptServiceName):
		return ScriptServiceV1, nil
	}
	return 0, fmt.Errorf("the Tentacle has neither %s nor %s (it lists: %s)", contracts.ScriptServiceV2Name, contracts.ScriptServiceName,
		strings.Join(caps.SupportedCapabilities, ", "))
}

// Command is a script to run, in terms both script services understand.
type Command struct {
	Body      string
	Files     []contracts.ScriptFile
	Arguments []string
	// Scripts are the body's variants by syntax ("Bash", "PowerShell").
	Scripts   map[string]string
	Isolation contracts.ScriptIsolationLevel
	// MutexName defaults to contracts.DefaultIsolationMutexName.
	MutexName string
	// MutexTimeout is how long to wait for the isolation mutex; zero means
	// for ever (contracts.NoMutexTimeout).
	MutexTimeout time.Duration
	// TaskID is the Octopus task the script belongs to; a V1 Tentacle builds
	// its ticket from it. Default: "Remote-" and the start of the ticket.
	TaskID string
	// Ticket is the V2 ticket the client chooses; default: a random one as
	// Octopus makes them. V1 Tentacles choose their own.
	Ticket string
	// WaitForFinish is how long a V2 StartScript may wait for the script to
	// end before answering, so that a short script takes one round trip.
	WaitForFinish time.Duration
}

// Status is a script's state, in either service's terms.
type Status struct {
	State    contracts.ProcessState
	ExitCode int32
	// Logs are the lines since the previous status.
	Logs []contracts.ProcessOutput
}

// Script is one script started on a Tentacle.
type Script struct {
	Service ScriptService
	Ticket  contracts.ScriptTicket

	caller          contracts.Caller
	nextLogSequence int64
}

// StepError says which step of running a script failed.
type StepError struct {
	Step string // e.g. "starting the script with IScriptServiceV2"
	Err  error
}

func (e *StepError) Error() string { return e.Step + ": " + e.Err.Error() }
func (e *StepError) Unwrap() error { return e.Err }

// PickScriptService asks the Tentacle for its capabilities and chooses its
// script service.
func (c Client) PickScriptService(ctx context.Context) (ScriptService, error) {
	caps, err := c.Capabilities(ctx)
	if err != nil {
		return 0, &StepError{Step: "asking the Tentacle for its capabilities", Err: err}
	}
	svc, err := PickScriptService(caps)
	if err != nil {
		return 0, &StepError{Step: "choosing a script service", Err: err}
	}
	return svc, nil
}

// Start starts cmd with svc and returns the script with its first status
// (for V1, which answers with a ticket only: pending, no logs).
func (c Client) Start(ctx context.Context, svc ScriptService, cmd Command) (*Script, Status, error) {
	mutex := cmd.MutexName
	if mutex == "" {
		mutex = contracts.DefaultIsolationMutexName
	}
	mutexTimeout := cmd.MutexTimeout
	if mutexTimeout == 0 {
		mutexTimeout = contracts.NoMutexTimeout
	}
	ticket := cmd.Ticket
	if ticket == "" {
		ticket = NewTicket()
	}
	task := cmd.TaskID
	if task == "" {
		task = "Remote-" + ticket[:min(8, len(ticket))]
	}
	files := cmd.Files
	if files == nil {
		files = []contracts.ScriptFile{}
	}
	args := cmd.Arguments
	if args == nil {
		args = []string{}
	}
	scripts := cmd.Scripts
	if scripts == nil {
		scripts = map[string]string{}
	}
	step := "starting the script with " + svc.String()
	s := &Script{Service: svc, caller: c.Caller}
	switch svc {
	case ScriptServiceV1:
		t, err := contracts.ScriptServiceClient{Caller: c.Caller}.StartScript(ctx, contracts.StartScriptCommand{
			ScriptBody: cmd.Body, Isolation: cmd.Isolation, Scripts: scripts, Files: files, Arguments: args,
			TaskID: &task, ScriptIsolationMutexTimeout: mutexTimeout, IsolationMutexName: &mutex,
		})
		if err != nil {
			return nil, Status{}, &StepError{Step: step, Err: err}
		}
		if t.TaskID == "" {
			return nil, Status{}, &StepError{Step: step, Err: fmt.Errorf("the Tentacle answered with an empty ticket")}
		}
		s.Ticket = t
		return s, Status{State: contracts.StatePending}, nil
	case ScriptServiceV2:
		var wait *time.Duration
		if cmd.WaitForFinish > 0 {
			wait = &cmd.WaitForFinish
		}
		s.Ticket = contracts.ScriptTicket{TaskID: ticket}
		st, err := contracts.ScriptServiceV2Client{Caller: c.Caller}.StartScript(ctx, contracts.StartScriptCommandV2{
			ScriptTicket: s.Ticket, ScriptBody: cmd.Body, TaskID: task, DurationToWaitForScriptToFinish: wait,
			Isolation: cmd.Isolation, ScriptIsolationMutexTimeout: mutexTimeout, IsolationMutexName: &mutex,
			Scripts: scripts, Files: files, Arguments: args,
		})
		if err != nil {
			return nil, Status{}, &StepError{Step: step, Err: err}
		}
		return s, s.fromV2(st), nil
	}
	return nil, Status{}, fmt.Errorf("unknown script service %d", svc)
}

func (s *Script) fromV1(st contracts.ScriptStatusResponse) Status {
	s.nextLogSequence = st.NextLogSequence
	return Status{State: st.State, ExitCode: st.ExitCode, Logs: st.Logs}
}

func (s *Script) fromV2(st contracts.ScriptStatusResponseV2) Status {
	s.nextLogSequence = st.NextLogSequence
	return Status{State: st.State, ExitCode: st.ExitCode, Logs: st.Logs}
}

// Status asks for the script's state and the log lines since the last call.
func (s *Script) Status(ctx context.Context) (Status, error) {
	var err error
	var st Status
	if s.Service == ScriptServiceV1 {
		var r contracts.ScriptStatusResponse
		r, err = contracts.ScriptServiceClient{Caller: s.caller}.GetStatus(ctx, contracts.ScriptStatusRequest{Ticket: s.Ticket, LastLogSequence: s.nextLogSequence})
		st = s.fromV1(r)
	} else {
		var r contracts.ScriptStatusResponseV2
		r, err = contracts.ScriptServiceV2Client{Caller: s.caller}.GetStatus(ctx, contracts.ScriptStatusRequestV2{Ticket: s.Ticket, LastLogSequence: s.nextLogSequence})
		st = s.fromV2(r)
	}
	if err != nil {
		return Status{}, &StepError{Step: "following the script with " + s.Service.String(), Err: err}
	}
	return st, nil
}

// Cancel asks the Tentacle to cancel the script and returns its state; a
// cancelled script still has to be followed to its end.
func (s *Script) Cancel(ctx context.Context) (Status, error) {
	var err error
	var st Status
	if s.Service == ScriptServiceV1 {
		var r contracts.ScriptStatusResponse
		r, err = contracts.ScriptServiceClient{Caller: s.caller}.CancelScript(ctx, contracts.CancelScriptCommand{Ticket: s.Ticket, LastLogSequence: s.nextLogSequence})
		st = s.fromV1(r)
	} else {
		var r contracts.ScriptStatusResponseV2
		r, err = contracts.ScriptServiceV2Client{Caller: s.caller}.CancelScript(ctx, contracts.CancelScriptCommandV2{Ticket: s.Ticket, LastLogSequence: s.nextLogSequence})
		st = s.fromV2(r)
	}
	if err != nil {
		return Status{}, &StepError{Step: "cancelling the script with " + s.Service.String(), Err: err}
	}
	return st, nil
}

// Complete tells the Tentacle the script's result has been collected, so
// that it removes the workspace. V1 answers with a last status, whose log
// lines (any since the last call) are returned; V2 answers with nothing.
func (s *Script) Complete(ctx context.Context) ([]contracts.ProcessOutput, error) {
	step := "completing the script with " + s.Service.String()
	if s.Service == ScriptServiceV1 {
		r, err := contracts.ScriptServiceClient{Caller: s.caller}.CompleteScript(ctx, contracts.CompleteScriptCommand{Ticket: s.Ticket, LastLogSequence: s.nextLogSequence})
		if err != nil {
			return nil, &StepError{Step: step, Err: err}
		}
		return s.fromV1(r).Logs, nil
	}
	if err := (contracts.ScriptServiceV2Client{Caller: s.caller}).CompleteScript(ctx, contracts.CompleteScriptCommandV2{Ticket: s.Ticket}); err != nil {
		return nil, &StepError{Step: step, Err: err}
	}
	return nil, nil
}

// NewTicket is a V2 script ticket as Octopus makes them: a random GUID's
// base64 without punctuation.
func NewTicket() string {
	var b [16]byte
	rand.Read(b[:])
	return strings.NewReplacer("+", "", "/", "", "=", "").Replace(base64.StdEncoding.EncodeToString(b[:]))
}
