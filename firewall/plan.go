package firewall

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Firewall is one backend: a host firewall, a set of security groups, a
// network security group.
type Firewall interface {
	// Name says which firewall this is ("nftables", "aws security group sg-…").
	Name() string
	// PlanOpen reads the current state and returns what has to change for
	// rule to be in place; an empty plan means it already is.
	PlanOpen(ctx context.Context, rule Rule) (*Plan, error)
	// PlanClose returns what has to change for rule to be gone; an empty
	// plan means it already is.
	PlanClose(ctx context.Context, rule Rule) (*Plan, error)
	// List returns the rules this backend manages (or, for cloud groups,
	// the inbound TCP rules), merged per name, ports and location.
	List(ctx context.Context) ([]Rule, error)
}

// Action is what a plan does to its rule.
type Action string

const (
	Open  Action = "open"
	Close Action = "close"
)

// Plan is what one open or close will do: the exact commands or API calls,
// in order, computed from the state read while planning.
type Plan struct {
	Action Action
	Rule   Rule
	// Firewall names the backend, as Firewall.Name.
	Firewall string
	Steps    []Step
	// Notes are things the user must know that are not errors: the rule
	// is in place but something else may still block the port, a tool is
	// installed but inactive, and the like.
	Notes []string
	// Settle is how long the backend's reads may lag behind its writes
	// (a cloud API that is eventually consistent); Verify keeps reading
	// for that long before it calls a change missing. Zero for the host
	// firewalls, whose tools read back what they just wrote.
	Settle time.Duration
}

// Step is one change: a command line or an API call.
type Step struct {
	// Description is exactly what will be done, for --dry-run and for the
	// progress lines: a command line a user could paste, or an API call
	// with its parameters.
	Description string
	do          func(context.Context) error
}

// NewStep makes a step that runs do.
func NewStep(description string, do func(context.Context) error) Step {
	return Step{Description: description, do: do}
}

// Empty reports whether the plan changes nothing (already open or closed).
func (p *Plan) Empty() bool { return len(p.Steps) == 0 }

// Note adds a note.
func (p *Plan) Note(format string, args ...any) {
	p.Notes = append(p.Notes, fmt.Sprintf(format, args...))
}

// Apply runs the steps in order, calling progress before each one. It stops
// at the first failure; because every step was planned against the state it
// changes, running the same command again picks up where this one stopped.
func (p *Plan) Apply(ctx context.Context, progress func(Step)) error {
	for i, s := range p.Steps {
		if progress != nil {
			progress(s)
		}
		if err := s.do(ctx); err != nil {
			if i == 0 {
				return err
			}
			done := fmt.Sprintf(" (the %d step(s) before it were done; running the same command again continues from here)", i)
			var ue *UserError
			if errors.As(err, &ue) {
				return &UserError{Msg: strings.TrimSuffix(ue.Msg, ".") + done + "."}
			}
			return fmt.Errorf("%w%s", err, done)
		}
	}
	return nil
}

// ApplyAndVerify applies plan, then reads the firewall's state back: planning
// the same action again must find nothing left to do. A tool that reports
// success without making the change (Wine's netsh.exe is a stub that exits
// 0; a firewall service that is stopped or managed by someone else) is a
// failure here, never a success.
func ApplyAndVerify(ctx context.Context, fw Firewall, plan *Plan, progress func(Step)) error {
	if err := plan.Apply(ctx, progress); err != nil {
		return err
	}
	return Verify(ctx, fw, plan)
}

// verifyPoll is how often Verify reads again while a backend settles.
const verifyPoll = time.Second

// Verify reports whether the change plan made is in place, by planning the
// same action again against the state the backend reads now. It reads for
// up to plan.Settle before it decides.
func Verify(ctx context.Context, fw Firewall, plan *Plan) error {
	deadline := time.Now().Add(plan.Settle)
	for {
		var again *Plan
		var err error
		if plan.Action == Open {
			again, err = fw.PlanOpen(ctx, plan.Rule)
		} else {
			again, err = fw.PlanClose(ctx, plan.Rule)
		}
		if err != nil {
			return fmt.Errorf("reading %s back after the change: %w", fw.Name(), err)
		}
		if again.Empty() {
			return nil
		}
		if !time.Now().Before(deadline) {
			missing := make([]string, len(again.Steps))
			for i, s := range again.Steps {
				missing[i] = s.Description
			}
			what := "the rule is not there"
			if plan.Action == Close {
				what = "the rule is still there"
			}
			return Userf("%s reported success, but reading its rules back shows %s (still to do: %s). Something else manages this firewall or the tool did not do what it said: check with `tentacle firewall list` and the firewall's own tools, then run the same command again.",
				fw.Name(), what, strings.Join(missing, "; "))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(verifyPoll):
		}
	}
}

// UserError is an error the user can fix: a bad value, missing credentials
// or permissions, an unknown group. Msg is one sentence saying what was wrong
// and what to do; the CLI prints it and exits 1.
type UserError struct{ Msg string }

func (e *UserError) Error() string { return e.Msg }

// Userf makes a UserError.
func Userf(format string, args ...any) error {
	return &UserError{Msg: fmt.Sprintf(format, args...)}
}
