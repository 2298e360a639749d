// Package service installs, removes and controls a Tentacle instance as an
// operating-system service: a systemd unit on Linux (system-wide, or a user
// unit for a rootless instance run by a non-root user) and a Service Control
// Manager service on Windows. It also lets the agent run under the SCM.
//
// Names, the unit's path and the order in which actions combine are
// upstream's (tentacle-surface §6), so that automation written for upstream
// Tentacle works unchanged. Where upstream is weak this package does more,
// on purpose: restart back-off and KillMode=process in the unit (running
// scripts survive a restart or an upgrade), SCM recovery actions, a start
// that waits until the agent is actually serving, ownership of the instance's
// files when the agent runs as another user, and idempotent actions.
package service

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"sync"
)

// Description is the service description upstream uses on both systems.
const Description = "Octopus Deploy: Tentacle deployment agent"

// DefaultInstanceName is the instance whose Windows service has no suffix.
const DefaultInstanceName = "Tentacle"

// Spec is the service of one Tentacle instance.
type Spec struct {
	// Instance is the instance's name in the machine-wide index; "" for a
	// rootless instance, which the service then runs by its ConfigPath.
	Instance string
	// ConfigPath is the instance's configuration file (absolute).
	ConfigPath string
	// Home is the instance's home directory: it holds livez.heartbeat, which
	// Start and Restart watch, and is handed to Username with Install.
	Home string
	// Executable is the absolute path of the tentacle binary the service runs.
	Executable string
	// Username is the account the agent runs as. On Linux "" means root
	// (upstream), or the User= of an installed unit when one exists; on
	// Windows "" means LocalSystem.
	Username string
	// Password is the Windows account's password; unused on Linux.
	Password string
	// DependOn is an extra service the agent's service depends on.
	DependOn string
	// Protected are machine-wide paths (the instance index, the machine key)
	// that must stay root's: a home containing one is never handed to
	// Username.
	Protected []string
}

// runsAsOtherUser reports whether a system unit runs the agent as an
// account other than root.
func (s Spec) runsAsOtherUser() bool { return s.Username != "" && s.Username != "root" }

// Rootless reports whether the instance is not in the machine-wide index.
func (s Spec) Rootless() bool { return s.Instance == "" }

// Actions are the switches of `tentacle service`. Any mix is allowed; Steps
// orders them.
type Actions struct {
	Restart, Stop, Uninstall, Install, Reconfigure, Credentials, Start bool
}

// Step is one action of a service command.
type Step string

// The steps, in the order upstream applies them.
const (
	StepRestart     Step = "restart"
	StepStop        Step = "stop"
	StepUninstall   Step = "uninstall"
	StepInstall     Step = "install"
	StepReconfigure Step = "reconfigure"
	StepCredentials Step = "credentials"
	StepStart       Step = "start"
)

// Steps lists the chosen actions in upstream's fixed order: restart, stop,
// uninstall, install, reconfigure, credentials, start. So
// `--stop --uninstall --install --start` replaces a service cleanly whatever
// order the flags were written in.
func (a Actions) Steps() []Step {
	var out []Step
	for _, s := range []struct {
		on   bool
		step Step
	}{
		{a.Restart, StepRestart}, {a.Stop, StepStop}, {a.Uninstall, StepUninstall},
		{a.Install, StepInstall}, {a.Reconfigure, StepReconfigure},
		{a.Credentials, StepCredentials}, {a.Start, StepStart},
	} {
		if s.on {
			out = append(out, s.step)
		}
	}
	return out
}

// EveryInstanceAllowed reports whether the actions may apply to every
// instance at once (--instance=*): upstream's control actions, and, ours
// only, uninstall, which the MSI runs on uninstall to remove every
// instance's service. Installing needs a decision per instance.
func (a Actions) EveryInstanceAllowed() bool {
	return !a.Install && !a.Reconfigure && !a.Credentials
}

// Manager controls the services of one operating system. Every method is
// idempotent: installing an installed service brings its definition up to
// date, starting a running one says so and succeeds, and so on.
type Manager interface {
	Install(ctx context.Context, s Spec) error
	Reconfigure(ctx context.Context, s Spec) error
	Uninstall(ctx context.Context, s Spec) error
	Start(ctx context.Context, s Spec) error
	Stop(ctx context.Context, s Spec) error
	Restart(ctx context.Context, s Spec) error
	// SetCredentials makes the service run as s.Username (Windows; on Linux
	// the account is part of the unit, written by Install and Reconfigure).
	SetCredentials(ctx context.Context, s Spec) error
}

// Status is a service's state, as Install and Start and an upgrade's
// restart care about it.
type Status struct {
	// Installed: the definition exists; UpToDate: it is what Install writes.
	Installed, UpToDate bool
	// Enabled: it starts at boot; Running: it is active now.
	Enabled, Running bool
	// Failed: it failed, or waits to be restarted after the agent exited.
	Failed bool
	// MainPID is the agent's process (0 when none).
	MainPID int
	// Executable is the program the service runs.
	Executable string
	// State is the manager's own word for it ("inactive (dead)",
	// "Stopped"), for messages.
	State string
}

// Inspector is a Manager that can report Status without changing anything.
type Inspector interface {
	Status(ctx context.Context, s Spec) (Status, error)
}

// Apply runs the chosen actions on one instance's service in upstream order
// and stops at the first that fails.
func Apply(ctx context.Context, m Manager, s Spec, a Actions) error {
	for _, step := range a.Steps() {
		var err error
		switch step {
		case StepRestart:
			err = m.Restart(ctx, s)
		case StepStop:
			err = m.Stop(ctx, s)
		case StepUninstall:
			err = m.Uninstall(ctx, s)
		case StepInstall:
			err = m.Install(ctx, s)
		case StepReconfigure:
			err = m.Reconfigure(ctx, s)
		case StepCredentials:
			err = m.SetCredentials(ctx, s)
		case StepStart:
			err = m.Start(ctx, s)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// UserError is a failure the user can fix; its message says how. The CLI
// prints it alone and exits 1.
type UserError struct{ Msg string }

func (e *UserError) Error() string { return e.Msg }

func userf(format string, args ...any) error { return &UserError{Msg: fmt.Sprintf(format, args...)} }

var whitespace = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`\s`) })

// UnitName is the systemd unit of an instance, as upstream: the instance
// name with "/" removed and each whitespace character replaced by "-", plus
// ".service"; a rootless instance gets upstream's service name,
// "OctopusDeploy-Tentacle.service". Upstream stops there, so a name with
// any other character systemd does not allow gives a unit systemd refuses;
// those characters are escaped here the way systemd-escape does ("%" becomes
// "\x25"), which leaves every name upstream handles unchanged.
func UnitName(instance string) string {
	name := instance
	if name == "" {
		name = "OctopusDeploy Tentacle"
	}
	name = whitespace().ReplaceAllString(strings.ReplaceAll(name, "/", ""), "-")
	var b strings.Builder
	for i := 0; i < len(name); i++ {
		c := name[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == ':' || c == '.' && i > 0 {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, `\x%02x`, c)
		}
	}
	return b.String() + ".service"
}

// WindowsServiceName is the SCM service (and display) name, as upstream:
// "OctopusDeploy Tentacle" for the default instance and for a rootless one,
// "OctopusDeploy Tentacle: <instance>" otherwise.
func WindowsServiceName(instance string) string {
	if instance == "" || instance == DefaultInstanceName {
		return "OctopusDeploy Tentacle"
	}
	return "OctopusDeploy Tentacle: " + instance
}
