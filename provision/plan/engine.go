package plan

import (
	"context"
	"errors"
	"fmt"

	"github.com/tentacle-go/tentacle/agent/config"
	"github.com/tentacle-go/tentacle/agent/service"
	"github.com/tentacle-go/tentacle/firewall"
)

// Status is how a step ended.
type Status string

const (
	// Changed: the step changed the machine (or, in a dry run, would).
	Changed Status = "changed"
	// Unchanged: the machine already was as declared.
	Unchanged Status = "unchanged"
	// Failed: the step could not plan or apply; the run stopped there.
	Failed Status = "failed"
)

// StepResult is one step's outcome: one line of text output, one JSON
// object of --format json (Ansible's changed_when reads "changed").
type StepResult struct {
	Step     string `json:"step"`
	Instance string `json:"instance,omitempty"`
	Status   Status `json:"status"`
	// Changed is Status == Changed, for `changed_when: result.changed`.
	Changed bool `json:"changed"`
	// DryRun says the changes were planned, not made.
	DryRun bool `json:"dry_run,omitempty"`
	// Changes say what was (or would be) done, one sentence each.
	Changes []string `json:"changes,omitempty"`
	// Notes are things to know that are not changes.
	Notes []string `json:"notes,omitempty"`
	Error string   `json:"error,omitempty"`
}

// Result is a whole run.
type Result struct {
	Steps []StepResult
}

// ChangedCount is the number of steps that changed something.
func (r Result) ChangedCount() int {
	n := 0
	for _, s := range r.Steps {
		if s.Status == Changed {
			n++
		}
	}
	return n
}

// HealthChecker checks that an instance can serve, as `tentacle doctor`
// does. provision/doctor provides the full one; LivenessCheck is the
// minimal one used until it is wired in.
type HealthChecker interface {
	// Check returns nil when the instance serves, else an error saying what
	// is wrong and what to do.
	Check(ctx context.Context, in InstanceState) error
}

// InstanceState is what a health check needs to know of an instance.
type InstanceState struct {
	Name, ConfigPath, Home string
	// Port is the listening port (0 for a polling Tentacle), ListenIP its
	// address ("" for any).
	Port     int
	ListenIP string
	// Polling: the servers it polls and its subscription ids.
	Polling bool
	// ServiceStarted says the run started (or found running) its service,
	// so it must be serving now; without a service there is no agent to check.
	ServiceStarted bool
}

// Options are the machine and the means the steps act through. Root,
// Getenv and ServiceManager are needed; the rest have defaults.
type Options struct {
	// Root is the machine config root (/etc/octopus).
	Root string
	// Getenv reads the environment (${NAME}, the SDKs' variables).
	Getenv func(string) string
	// Cwd resolves relative paths in the file.
	Cwd string
	// DryRun plans every step and changes nothing.
	DryRun bool
	// Executable is the tentacle binary the service runs.
	Executable string
	// ServiceManager returns the OS's service manager for an instance.
	ServiceManager func(sel config.Selection) (service.Manager, error)
	// HostFirewall returns the host firewall backend (auto detects).
	HostFirewall func(ctx context.Context, backend string) (firewall.Firewall, string, error)
	// CurrentVersion is this binary's version: the release step changes
	// nothing when the feed's newest match is this version.
	CurrentVersion string
	// Health checks each instance at the end; nil is LivenessCheck.
	Health HealthChecker
	// AutoUpgradeAvailable says `service --install --auto-upgrade` exists
	// in this build (issue 15); until then the key is refused.
	AutoUpgradeAvailable bool
	// Progress, when set, is told each step's result as it ends.
	Progress func(StepResult)
	// SourceName and Source are the file f was parsed from, so that errors
	// found when resolving ${NAME} give its line and column (optional).
	SourceName string
	Source     []byte
	// Infof receives the detailed progress lines of the reused code.
	Infof func(format string, args ...any)
}

func (o *Options) infof(format string, args ...any) {
	if o.Infof != nil {
		o.Infof(format, args...)
	}
}

// change is one planned change and how to make it.
type change struct {
	what string
	do   func(context.Context) error
}

// planned is what one step will do.
type planned struct {
	changes []change
	notes   []string
}

func (p *planned) add(what string, do func(context.Context) error) {
	p.changes = append(p.changes, change{what, do})
}

func (p *planned) note(format string, args ...any) {
	p.notes = append(p.notes, fmt.Sprintf(format, args...))
}

// step reads the machine and plans; the engine applies what it planned.
type step struct {
	name, instance string
	plan           func(ctx context.Context) (*planned, error)
}

// StepError is a run that stopped: Step and Instance name where, Err why.
type StepError struct {
	Step, Instance string
	Err            error
}

func (e *StepError) Error() string {
	where := "step " + e.Step
	if e.Instance != "" {
		where += " of instance " + e.Instance
	}
	return fmt.Sprintf("provision stopped at %s: %v (the steps before it are in place; fix this and run again to continue)", where, e.Err)
}

func (e *StepError) Unwrap() error { return e.Err }

// Apply converges the machine to f: each step reads what is there, plans
// the difference and applies it, in order, and the run stops at the first
// step that fails (earlier steps stay in place; a re-run continues). With
// opts.DryRun every step is planned and nothing changes. The file is
// resolved (${NAME}) with opts.Getenv first.
func Apply(ctx context.Context, f *File, opts Options) (Result, error) {
	if opts.Getenv == nil {
		return Result{}, errors.New("plan.Apply: Options.Getenv is required")
	}
	name := opts.SourceName
	if name == "" {
		name = "the provision file"
	}
	if err := f.validate(); err != nil {
		return Result{}, locate(name, opts.Source, err)
	}
	resolved, err := Resolve(f, opts.Getenv, name, opts.Source)
	if err != nil {
		return Result{}, err
	}
	// Secrets are plain text now, by design; the values are checked again.
	resolved.AllowPlaintextSecrets = true
	if err := resolved.validate(); err != nil {
		return Result{}, locate(name, opts.Source, err)
	}
	if opts.Health == nil {
		opts.Health = LivenessCheck{}
	}
	r := &run{opts: opts, file: resolved}
	return r.apply(ctx, r.steps())
}

// run is one Apply.
type run struct {
	opts Options
	file *File
	// states are what the steps learned of each instance, for the health check.
	states map[string]*InstanceState
}

func (r *run) apply(ctx context.Context, steps []step) (Result, error) {
	var res Result
	for _, s := range steps {
		out := StepResult{Step: s.name, Instance: s.instance, DryRun: r.opts.DryRun}
		p, err := s.plan(ctx)
		if err == nil {
			out.Notes = p.notes
			for _, c := range p.changes {
				out.Changes = append(out.Changes, c.what)
				if r.opts.DryRun {
					continue
				}
				if err = c.do(ctx); err != nil {
					break
				}
			}
		}
		switch {
		case err != nil:
			out.Status, out.Error = Failed, err.Error()
		case len(out.Changes) > 0:
			out.Status, out.Changed = Changed, true
		default:
			out.Status = Unchanged
		}
		res.Steps = append(res.Steps, out)
		if r.opts.Progress != nil {
			r.opts.Progress(out)
		}
		if err != nil {
			return res, &StepError{Step: s.name, Instance: s.instance, Err: err}
		}
	}
	return res, nil
}

// steps are the whole run in order: the release, then per instance its
// files, certificate, settings, firewall, registration, service and health.
func (r *run) steps() []step {
	var out []step
	if r.file.Release != nil {
		out = append(out, r.releaseStep(r.file.Release))
	}
	r.states = map[string]*InstanceState{}
	for i := range r.file.Instances {
		in := &r.file.Instances[i]
		st := &InstanceState{Name: in.InstanceName(), Polling: in.IsPolling()}
		r.states[st.Name] = st
		out = append(out, r.instanceSteps(in, st)...)
	}
	return out
}
