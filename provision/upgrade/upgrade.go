// Package upgrade installs a release and moves every agent that runs the
// upgraded binary onto it: each instance's service is restarted and must
// come healthy (heartbeat, and its listening port or a polling connection
// back) within a bound; when one does not, the previous version is put back
// and the services restarted on it. Running scripts are not touched: their
// supervisors outlive the agent and the new agent re-attaches to them
// (agent/scripts). On Linux the systemd unit stops only the agent
// (KillMode=process). On Windows the SCM ends only the service's own
// process; a supervisor is a detached process of its own, and the script's
// job object belongs to the supervisor, not to the agent, so stopping the
// agent kills nothing else; the supervisor runs from Tentacle.exe, which the
// MSI install moves aside first (provision/release) so that it is not a
// file in use.
package upgrade

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/tentacle-go/tentacle/agent/config"
	"github.com/tentacle-go/tentacle/provision/release"
)

// DefaultHealthWait bounds how long one restarted agent has to come healthy
// before the upgrade is rolled back. The agent serves within a second
// normally; a minute leaves room for a loaded machine and a slow first
// polling connection.
const DefaultHealthWait = 60 * time.Second

// Instance is one Tentacle instance whose service an upgrade may restart.
type Instance struct {
	Name       string
	ConfigPath string
	// Home holds livez.heartbeat.
	Home string
	// Listen is the address the agent listens on, to dial from this machine
	// ("" when it does not listen).
	Listen string
	// Polls are the host:port of the servers it polls.
	Polls []string
}

// InstanceFromSettings reads what the health check needs from an
// instance's configuration.
func InstanceFromSettings(name string, s *config.Settings) (Instance, error) {
	in := Instance{Name: name, ConfigPath: s.Path(), Home: s.Home()}
	servers, err := s.TrustedServers()
	if err != nil {
		return in, err
	}
	for _, ts := range servers {
		if ts.CommunicationStyle != config.StyleTentacleActive || ts.Address == "" {
			continue
		}
		if hp := hostPort(ts.Address); hp != "" {
			in.Polls = append(in.Polls, hp)
		}
	}
	noListen, err := s.NoListen()
	if err != nil {
		return in, err
	}
	if !noListen {
		port, err := s.Port()
		if err != nil {
			return in, err
		}
		if port != 0 {
			in.Listen = dialAddress(s.ListenIP(), port)
		}
	}
	return in, nil
}

// ServiceStatus is an instance's service as the OS's service manager sees it.
type ServiceStatus struct {
	Installed, Running, Failed bool
	MainPID                    int
	Executable                 string
}

// Services controls the instances' services (systemd on Linux).
type Services interface {
	Status(ctx context.Context, in Instance) (ServiceStatus, error)
	// Restart restarts the service and waits until the agent has started
	// serving (its heartbeat is touched), or fails saying why.
	Restart(ctx context.Context, in Instance) error
}

// Options are one upgrade.
type Options struct {
	Fetch release.FetchRequest
	// Instances are the candidates: every instance of the machine, or the
	// one named. Only those whose running service runs the upgraded binary
	// are restarted.
	Instances []Instance
	Services  Services
	// HealthWait bounds each agent's way back to healthy; 0 is
	// DefaultHealthWait.
	HealthWait time.Duration
	DryRun     bool
	// Output receives the package manager's output; nil discards it.
	Output io.Writer
	// Logf reports progress, one line per call; nil is silent.
	Logf func(format string, args ...any)
}

// Outcomes of one instance.
const (
	OutcomeUpgraded   = "upgraded"    // restarted on the new version and healthy
	OutcomeNotRunning = "not-running" // its service is stopped or not installed: left alone
	OutcomeOther      = "other-binary"
	OutcomeWouldRun   = "would-restart" // dry run
	OutcomeUnhealthy  = "unhealthy"     // did not come healthy: the upgrade was rolled back
	OutcomeRolledBack = "rolled-back"   // running the previous version again
)

// InstanceResult is what happened to one instance.
type InstanceResult struct {
	Name    string `json:"name"`
	Outcome string `json:"outcome"`
	Detail  string `json:"detail,omitempty"`
}

// Result says what the upgrade did.
type Result struct {
	Feed       string                `json:"feed"`
	From       string                `json:"from"`
	To         string                `json:"to"`
	Method     release.InstallMethod `json:"method"`
	Target     string                `json:"target"`
	DryRun     bool                  `json:"dryRun"`
	UpToDate   bool                  `json:"upToDate"`
	RolledBack bool                  `json:"rolledBack"`
	Steps      []string              `json:"steps"`
	Instances  []InstanceResult      `json:"instances"`
}

// ErrRolledBack marks an upgrade that was undone because an agent did not
// come healthy on the new version.
var ErrRolledBack = errors.New("upgrade rolled back")

type rolledBack struct{ msg string }

func (r *rolledBack) Error() string        { return r.msg }
func (r *rolledBack) Is(target error) bool { return target == ErrRolledBack }

// Run fetches the release, installs it, restarts the agents that run the
// upgraded binary and waits for each to come healthy; when one does not,
// it rolls back to the previous version and restarts them again. A dry run
// fetches and checks the artifact and says what it would do.
func Run(ctx context.Context, o Options) (Result, error) {
	logf := o.Logf
	if logf == nil {
		logf = func(string, ...any) {}
	}
	wait := o.HealthWait
	if wait == 0 {
		wait = DefaultHealthWait
	}
	res := Result{DryRun: o.DryRun, Steps: []string{}, Instances: []InstanceResult{}}
	if o.Fetch.Feed != nil {
		res.Feed = o.Fetch.Feed.String()
	}
	fetched, err := release.FetchForInstall(ctx, o.Fetch)
	res.From, res.To, res.Method, res.Target = fetched.Current, fetched.Version.Version, fetched.Method, fetched.Target
	if err != nil {
		return res, err
	}
	if fetched.UpToDate() {
		res.UpToDate = true
		return res, nil
	}

	// The agents to move: running, and running this binary.
	var affected []Instance
	pids := map[string]int{}
	for _, in := range o.Instances {
		st, err := o.Services.Status(ctx, in)
		if err != nil {
			return res, err
		}
		switch {
		case !st.Installed || !st.Running:
			res.Instances = append(res.Instances, InstanceResult{Name: in.Name, Outcome: OutcomeNotRunning, Detail: "its service is not running; it will start on the new version"})
		case !sameFile(st.Executable, fetched.Target):
			res.Instances = append(res.Instances, InstanceResult{Name: in.Name, Outcome: OutcomeOther, Detail: "its service runs " + st.Executable + ", not " + fetched.Target})
		default:
			affected = append(affected, in)
			pids[in.Name] = st.MainPID
		}
	}

	// A package install is rolled back by installing the previous
	// version's package again, which neither dpkg, rpm nor Windows
	// Installer keeps: it is downloaded now, into the download folder,
	// while the feed is known to answer.
	var previous *release.Fetched
	if !o.DryRun && fetched.Method != release.MethodBinary && fetched.Current != "" && len(affected) > 0 {
		prev, err := release.FetchVersion(ctx, o.Fetch, fetched, fetched.Current)
		if err != nil {
			logf("The %s package of the installed version %s cannot be fetched now (%s); a rollback would try the feed again.", fetched.Method, fetched.Current, firstLine(err.Error()))
		} else {
			previous = &prev
		}
	}

	installedAt := time.Now()
	inst, err := release.Install(ctx, fetched.Path, release.InstallOptions{Target: fetched.Target, DryRun: o.DryRun, Output: o.Output})
	res.Steps = append(res.Steps, inst.Steps...)
	if err != nil {
		return res, err
	}
	if o.DryRun {
		for _, in := range affected {
			res.Steps = append(res.Steps, "restart the service of instance "+in.Name+" and wait for it to be healthy")
			res.Instances = append(res.Instances, InstanceResult{Name: in.Name, Outcome: OutcomeWouldRun})
		}
		return res, nil
	}
	logf("Installed %s at %s (%s install).", res.To, fetched.Target, fetched.Method)

	if fetched.Method == release.MethodBinary {
		pids = nil // nothing but this upgrade restarts them
	}
	failed := moveAgents(ctx, o, affected, pids, installedAt, wait, logf)
	if failed == nil {
		for _, in := range affected {
			res.Instances = append(res.Instances, InstanceResult{Name: in.Name, Outcome: OutcomeUpgraded})
		}
		return res, nil
	}

	// Put the previous version back and move the agents again.
	logf("Instance %s did not come healthy on %s (%v); rolling back to %s.", failed.name, res.To, failed.err, orUnknown(res.From))
	res.RolledBack = true
	restoredAt := time.Now()
	if err := restorePrevious(ctx, o, fetched, previous); err != nil {
		return res, fmt.Errorf("instance %s did not come healthy on %s (%v), and the rollback to %s failed: %w", failed.name, res.To, failed.err, orUnknown(res.From), err)
	}
	for _, in := range affected {
		r := InstanceResult{Name: in.Name, Outcome: OutcomeRolledBack}
		if in.Name == failed.name {
			r.Outcome, r.Detail = OutcomeUnhealthy, failed.err.Error()
		}
		res.Instances = append(res.Instances, r)
	}
	// Restart every one of them whatever a package manager did: an agent
	// that keeps exiting changes pid on its own.
	if again := moveAgents(ctx, o, affected, nil, restoredAt, wait, logf); again != nil {
		return res, fmt.Errorf("version %s did not come healthy on instance %s (%v) and was rolled back to %s, but instance %s is not healthy on %s either (%v); check its journal", res.To, failed.name, failed.err, orUnknown(res.From), again.name, orUnknown(res.From), again.err)
	}
	return res, &rolledBack{msg: fmt.Sprintf("Version %s did not come healthy on instance %s (%v), so %s was rolled back to %s and its agents restarted; they are healthy. Check the new version's log before trying again.", res.To, failed.name, firstLine(failed.err.Error()), fetched.Target, orUnknown(res.From))}
}

type instanceFailure struct {
	name string
	err  error
}

// moveAgents restarts each affected agent onto the binary now in place
// (unless the package manager already did) and waits for it to be healthy.
// It stops at the first that is not.
// pids are the agents' pids before a package install: an agent whose pid
// changed was restarted by the package's scripts (nil: restart them all).
// installedAt is when the binary was put in place: a heartbeat older than
// that is the old agent's.
func moveAgents(ctx context.Context, o Options, affected []Instance, pids map[string]int, installedAt time.Time, wait time.Duration, logf func(string, ...any)) *instanceFailure {
	for _, in := range affected {
		since := time.Now()
		st, err := o.Services.Status(ctx, in)
		if err != nil {
			return &instanceFailure{in.Name, err}
		}
		restartedByPackage := pids != nil && st.Running && st.MainPID != 0 && st.MainPID != pids[in.Name]
		if !restartedByPackage {
			logf("Restarting the service of instance %s.", in.Name)
			if err := o.Services.Restart(ctx, in); err != nil {
				return &instanceFailure{in.Name, err}
			}
		} else {
			logf("The package manager restarted the service of instance %s.", in.Name)
			since = installedAt
		}
		if err := waitHealthy(ctx, o.Services, in, since, wait); err != nil {
			return &instanceFailure{in.Name, err}
		}
		logf("Instance %s is healthy.", in.Name)
	}
	return nil
}

// restorePrevious puts the version that ran before back: the binary kept
// beside the target, or the previous package (fetched before the install,
// else from the same feed now).
func restorePrevious(ctx context.Context, o Options, fetched release.Fetched, previous *release.Fetched) error {
	if fetched.Method == release.MethodBinary {
		_, err := release.Rollback(ctx, fetched.Target, false)
		return err
	}
	if previous == nil {
		if fetched.Current == "" {
			return fmt.Errorf("the version installed before is unknown, so its %s package cannot be fetched again", fetched.Method)
		}
		prev, err := release.FetchVersion(ctx, o.Fetch, fetched, fetched.Current)
		if err != nil {
			return err
		}
		previous = &prev
	}
	_, err := release.Install(ctx, previous.Path, release.InstallOptions{Target: fetched.Target, Output: o.Output, AllowDowngrade: true})
	return err
}

// sameFile reports whether two paths name the same file: by identity
// where both can be read (symlinks, Windows' case-blind and short names
// resolved), else by their cleaned paths.
func sameFile(a, b string) bool {
	if a == "" || b == "" {
		return false
	}
	fa, ea := os.Stat(a)
	fb, eb := os.Stat(b)
	if ea == nil && eb == nil {
		return os.SameFile(fa, fb)
	}
	if runtime.GOOS == "windows" {
		return strings.EqualFold(filepath.Clean(a), filepath.Clean(b))
	}
	return filepath.Clean(a) == filepath.Clean(b)
}

func orUnknown(v string) string {
	if v == "" {
		return "the previous version"
	}
	return v
}

// firstLine is the first line of a multi-line error, without its final
// full stop (it goes inside a sentence).
func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return strings.TrimSuffix(strings.TrimSpace(line), ".")
}
