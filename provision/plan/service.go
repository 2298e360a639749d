package plan

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/tentacle-go/tentacle/agent/config"
	"github.com/tentacle-go/tentacle/agent/service"
	"github.com/tentacle-go/tentacle/provision/release"
)

// planService installs (or brings up to date) and starts the OS service.
func (r *run) planService(ctx context.Context, in *Instance, p instancePaths, st *InstanceState) (*planned, error) {
	sv := in.Service
	if r.opts.ServiceManager == nil {
		return nil, errors.New("plan: Options.ServiceManager is not set")
	}
	out := &planned{}
	sel := config.Selection{Name: p.name, ConfigPath: p.config}
	spec := service.Spec{
		Instance: p.name, ConfigPath: p.config, Home: p.home, Executable: r.opts.Executable,
		Username: sv.Username, Password: string(sv.Password),
		Protected: []string{config.NewIndex(r.opts.Root).Dir, filepath.Join(r.opts.Root, "machinekey")},
	}
	install, start := enabled(sv.Install), enabled(sv.Start)
	var m service.Manager
	manager := func() (service.Manager, error) {
		if m != nil {
			return m, nil
		}
		var err error
		m, err = r.opts.ServiceManager(sel)
		return m, err
	}
	mgr, err := manager()
	if err != nil {
		return nil, err
	}
	status := service.Status{}
	inspector, canInspect := mgr.(service.Inspector)
	if canInspect {
		if status, err = inspector.Status(ctx, spec); err != nil {
			return nil, err
		}
	}
	if install && (!canInspect || !status.UpToDate || !status.Enabled) {
		what := "install and enable the service"
		if status.Installed {
			what = "bring the installed service up to date and enable it"
		}
		out.add(what, func(ctx context.Context) error { return mgr.Install(ctx, spec) })
	}
	if start {
		st.ServiceStarted = true
		if !canInspect || !status.Running {
			out.add("start the service and wait until the agent serves", func(ctx context.Context) error { return mgr.Start(ctx, spec) })
		}
	}
	if sv.AutoUpgrade {
		if err := r.planAutoUpgrade(ctx, mgr, out); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// autoUpgrader is a service manager that can install the daily upgrade
// timer (systemd).
type autoUpgrader interface {
	InstallAutoUpgrade(ctx context.Context, a service.AutoUpgrade) error
	AutoUpgradeUpToDate(ctx context.Context, a service.AutoUpgrade) (bool, error)
}

// planAutoUpgrade installs the machine's daily `tentacle upgrade`, following
// the file's release section (feed, version constraint, key).
func (r *run) planAutoUpgrade(ctx context.Context, mgr service.Manager, out *planned) error {
	rel := r.file.Release
	if rel == nil {
		return config.Userf("service.auto-upgrade needs the release section: the feed and version constraint the daily upgrade follows.")
	}
	au, ok := mgr.(autoUpgrader)
	if !ok {
		return config.Userf("service.auto-upgrade needs systemd (it is a daily timer); this machine's service manager has none yet.")
	}
	if err := release.CheckFeedSpec(rel.Feed); err != nil {
		return config.Userf("release.feed: %v", err)
	}
	a := service.AutoUpgrade{Executable: r.opts.Executable, Constraint: rel.Version, Feed: rel.Feed, PublicKey: rel.PublicKey}
	if a.Constraint == "" {
		a.Constraint = "latest"
	}
	upToDate, err := au.AutoUpgradeUpToDate(ctx, a)
	if err != nil {
		return err
	}
	if !upToDate {
		out.add(fmt.Sprintf("install the daily automatic upgrade (%s: tentacle upgrade --all --version %s)", service.AutoUpgradeTimer, a.Constraint), func(ctx context.Context) error {
			return au.InstallAutoUpgrade(ctx, a)
		})
	}
	return nil
}

// planHealth checks the instance can serve; it changes nothing.
func (r *run) planHealth(ctx context.Context, st *InstanceState) (*planned, error) {
	out := &planned{}
	if r.opts.DryRun {
		out.note("the health check runs after a real run")
		return out, nil
	}
	if !st.ServiceStarted {
		out.note("no service is started by this file, so no running agent is checked")
		return out, nil
	}
	if err := r.opts.Health.Check(ctx, *st); err != nil {
		return nil, err
	}
	return out, nil
}

// HealthCheckTimeout bounds the minimal health check.
const HealthCheckTimeout = 10 * time.Second

// LivenessCheck is the minimal health check, until provision/doctor is
// wired in: the agent's heartbeat in its home is fresh, and a listening
// Tentacle accepts TCP on its port.
type LivenessCheck struct{}

// Check implements HealthChecker.
func (LivenessCheck) Check(ctx context.Context, in InstanceState) error {
	heartbeat := filepath.Join(in.Home, "livez.heartbeat")
	info, err := os.Stat(heartbeat)
	if err != nil {
		return config.Userf("The agent of instance %s is not running: %s is missing. Look at `journalctl -u %s` (or the service's log) for why.", in.Name, heartbeat, service.UnitName(in.Name))
	}
	if age := time.Since(info.ModTime()); age > time.Minute {
		return config.Userf("The agent of instance %s has not written its heartbeat for %s: it is stuck or stopped. Look at `journalctl -u %s`.", in.Name, age.Round(time.Second), service.UnitName(in.Name))
	}
	if in.Port == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, HealthCheckTimeout)
	defer cancel()
	var d net.Dialer
	host := in.ListenIP
	if host == "" {
		host = "localhost"
	}
	conn, err := d.DialContext(ctx, "tcp", net.JoinHostPort(host, strconv.Itoa(in.Port)))
	if err != nil {
		return config.Userf("The agent of instance %s runs but does not accept connections on port %d (%v). Check the listen settings and `journalctl -u %s`.", in.Name, in.Port, err, service.UnitName(in.Name))
	}
	return conn.Close()
}

// releaseStep installs the newest release that matches the constraint,
// unless this binary already is that version.
func (r *run) releaseStep(rel *Release) step {
	return step{name: "release", plan: func(ctx context.Context) (*planned, error) {
		out := &planned{}
		feed, err := release.Open(rel.Feed, release.Options{GitHubToken: r.opts.Getenv("GITHUB_TOKEN")})
		if err != nil {
			return nil, config.Userf("release.feed: %v", err)
		}
		all, err := feed.Versions(ctx)
		if err != nil {
			return nil, config.Userf("Cannot read the release feed %s: %v", rel.Feed, err)
		}
		constraint := rel.Version
		if constraint == "" {
			constraint = "latest"
		}
		v, err := release.Newest(all, constraint, false)
		if err != nil {
			return nil, config.Userf("release.version: %v", err)
		}
		if v.Version == r.opts.CurrentVersion {
			return out, nil
		}
		target, err := release.ResolveTarget(rel.Target)
		if err != nil {
			return nil, err
		}
		method, _, err := release.DetectInstall(ctx, target)
		if err != nil {
			return nil, err
		}
		name, err := release.ArtifactName(release.KindFor(method), v.Version, release.HostPlatform())
		if err != nil {
			return nil, config.Userf("release: %v", err)
		}
		trust := release.Trust{PublicKey: release.ChooseKey(rel.PublicKey, r.opts.Getenv("TENTACLE_RELEASES_PUBKEY"))}
		if trust.PublicKey == "" {
			return nil, config.Userf("release: no public key to verify the feed with: set release.public-key (RW...) or TENTACLE_RELEASES_PUBKEY.")
		}
		out.add(fmt.Sprintf("install tentacle %s (%s) from %s over %s (now %s)", v.Version, name, feed, target, r.opts.CurrentVersion), func(ctx context.Context) error {
			// The exact version planned, downloaded (resumably) and verified.
			fetched, err := release.FetchForInstall(ctx, release.FetchRequest{Feed: feed, Constraint: v.Version, Prerelease: v.Prerelease, Trust: trust, Target: target})
			if err != nil {
				return config.Userf("release: %v", err)
			}
			if fetched.UpToDate() {
				return nil // the target (not this binary) already is that version
			}
			_, err = release.Install(ctx, fetched.Path, release.InstallOptions{Target: target})
			return err
		})
		return out, nil
	}}
}
