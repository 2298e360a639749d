package firewall

import (
	"context"
	"errors"
	"fmt"
	"strings"
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

// UserError is an error the user can fix: a bad value, missing credentials
// or permissions, an unknown group. Msg is one sentence saying what was wrong
// and what to do; the CLI prints it and exits 1.
type UserError struct{ Msg string }

func (e *UserError) Error() string { return e.Msg }

// Userf makes a UserError.
func Userf(format string, args ...any) error {
	return &UserError{Msg: fmt.Sprintf(format, args...)}
}
