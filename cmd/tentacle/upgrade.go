package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"syscall"
	"time"

	"github.com/tentacle-go/tentacle/agent/config"
	"github.com/tentacle-go/tentacle/agent/service"
	"github.com/tentacle-go/tentacle/provision/release"
	"github.com/tentacle-go/tentacle/provision/upgrade"
)

// UpgradeCmd is `tentacle upgrade`: install a release from a feed and move
// every agent running this binary onto it, rolling back when one does not
// come healthy (provision/upgrade).
type UpgradeCmd struct {
	releaseFeedFlags
	releaseTrustFlags
	formatFlag
	Instance    string `name:"instance" help:"Restart only this instance's service (default: every instance whose service runs this binary)" placeholder:"NAME"`
	All         bool   `name:"all" help:"Every instance whose service runs this binary (the default)"`
	DryRun      bool   `name:"dry-run" help:"Download and check the release and print what would happen, changing nothing"`
	HealthWait  int    `name:"health-wait" default:"60" help:"Seconds each restarted agent has to come healthy before the upgrade is rolled back" placeholder:"SECONDS"`
	DownloadDir string `name:"download-dir" help:"Where the release is downloaded (a re-run continues a cut download). Default: /var/cache/tentacle/releases as root" placeholder:"DIR"`
}

func (c *UpgradeCmd) Run(e *Env) error {
	asJSON, err := c.json()
	if err != nil {
		return err
	}
	if runtime.GOOS != "linux" && runtime.GOOS != "windows" {
		return config.Userf("`tentacle upgrade` restarts systemd units or Windows services, and %s has neither; install with `tentacle release install --feed FEED`, then restart the agent under your own supervisor.", runtime.GOOS)
	}
	if c.Instance != "" && c.All {
		return config.Userf("Give --instance NAME or --all, not both.")
	}
	if c.HealthWait <= 0 {
		return config.Userf("--health-wait must be a positive number of seconds, not %d.", c.HealthWait)
	}
	if !service.Privileged() && !c.DryRun {
		if runtime.GOOS == "windows" {
			return config.Userf("`tentacle upgrade` installs the release and restarts services: run it from an elevated (Administrator) prompt. Nothing was changed.")
		}
		return config.Userf("`tentacle upgrade` replaces the binary and restarts services: run it as root (sudo tentacle upgrade ...). Nothing was changed.")
	}
	// The feed and key default to those of the instance named, else of the
	// default instance (configure --releases-feed/--releases-public-key).
	defaults, err := instanceReleaseDefaults(e, InstanceFlags{Instance: c.Instance})
	if err != nil {
		return err
	}
	if c.Feed == "" && e.Getenv("TENTACLE_RELEASES_FEED") == "" && defaults.Feed == "" {
		return config.Userf("No release feed: pass --feed (a directory, https:// URL or github:OWNER/REPO), set TENTACLE_RELEASES_FEED, or give the instance one with `tentacle configure --releases-feed`.")
	}
	feed, err := c.open(e, defaults)
	if err != nil {
		return err
	}
	instances, err := c.instances(e)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// Under --format json, progress and the package manager's output go to
	// stderr so stdout stays one JSON document.
	var out io.Writer = e.Stdout
	logf := e.Infof
	if asJSON {
		out = e.Stderr
		logf = func(format string, args ...any) { e.Errorf(format, args...) }
	}
	res, err := upgrade.Run(ctx, upgrade.Options{
		Fetch: release.FetchRequest{
			Feed: feed, Constraint: c.Version, Prerelease: c.Prerelease, Trust: c.trust(e, defaults),
			Dir: absFrom(e, c.DownloadDir), Progress: releaseProgress(e, asJSON),
		},
		Instances:  instances,
		Services:   &instanceServices{e: e, startupWait: time.Duration(c.HealthWait) * time.Second},
		HealthWait: time.Duration(c.HealthWait) * time.Second,
		DryRun:     c.DryRun,
		Output:     out,
		Logf:       logf,
	})
	if asJSON && (err == nil || errors.Is(err, upgrade.ErrRolledBack)) {
		if werr := writeJSON(e, res); werr != nil {
			return werr
		}
	}
	if err != nil {
		var ue *service.UserError
		if errors.As(err, &ue) || errors.Is(err, upgrade.ErrRolledBack) {
			return config.Userf("%s", upperFirst(err.Error()))
		}
		return releaseError(err)
	}
	if asJSON {
		return nil
	}
	switch {
	case res.UpToDate:
		e.Infof("%s is already version %s, the newest of %s matching %q; nothing to do.", res.Target, res.From, res.Feed, c.Version)
	case res.DryRun:
		e.Infof("Dry run: nothing was changed. Upgrading %s from %s to %s (%s install) would:", res.Target, orUnknownVersion(res.From), res.To, res.Method)
		for _, s := range res.Steps {
			e.Infof("  %s", s)
		}
	default:
		e.Infof("Upgraded %s from %s to %s (%s install).", res.Target, orUnknownVersion(res.From), res.To, res.Method)
	}
	for _, r := range res.Instances {
		if r.Detail != "" {
			e.Infof("  instance %s: %s (%s)", r.Name, r.Outcome, r.Detail)
		} else {
			e.Infof("  instance %s: %s", r.Name, r.Outcome)
		}
	}
	return nil
}

// instances are the candidates: the named one, or every instance of the
// machine-wide index.
func (c *UpgradeCmd) instances(e *Env) ([]upgrade.Instance, error) {
	var list []config.Instance
	if c.Instance != "" {
		in, err := e.Index().Get(c.Instance)
		if err != nil {
			return nil, err
		}
		list = []config.Instance{in}
	} else {
		var err error
		if list, err = e.Index().List(); err != nil {
			return nil, err
		}
	}
	out := make([]upgrade.Instance, 0, len(list))
	for _, in := range list {
		s, err := config.LoadSettings(in.ConfigurationFilePath)
		if err != nil {
			return nil, err
		}
		ui, err := upgrade.InstanceFromSettings(in.Name, s)
		if err != nil {
			return nil, err
		}
		out = append(out, ui)
	}
	return out, nil
}

// instanceServices lets the upgrade read and restart instances' services:
// systemd units on Linux, Windows services through the SCM.
type instanceServices struct {
	e *Env
	// startupWait bounds a restart's wait for the first heartbeat, so
	// --health-wait bounds the whole way back.
	startupWait time.Duration
	m           service.Manager
}

func (s *instanceServices) manager() (service.Manager, error) {
	if s.m != nil {
		return s.m, nil
	}
	// The upgrade prints its own progress; the manager's lines would repeat it.
	quiet := func(string, ...any) {}
	if runtime.GOOS == "windows" {
		m, err := service.NewSCM(quiet, s.e.Warnf)
		if err != nil {
			return nil, err
		}
		s.m = m
		return m, nil
	}
	mgr, err := newServiceManager(s.e, config.Selection{})
	if err != nil {
		return nil, err
	}
	m, ok := mgr.(*service.Systemd)
	if !ok {
		return nil, config.Userf("`tentacle upgrade` restarts systemd units only.")
	}
	m.Infof = quiet
	m.StartupWait = s.startupWait
	s.m = m
	return m, nil
}

func (s *instanceServices) spec(in upgrade.Instance) service.Spec {
	return service.Spec{Instance: in.Name, ConfigPath: in.ConfigPath, Home: in.Home}
}

func (s *instanceServices) Status(ctx context.Context, in upgrade.Instance) (upgrade.ServiceStatus, error) {
	m, err := s.manager()
	if err != nil {
		return upgrade.ServiceStatus{}, err
	}
	inspector, ok := m.(service.Inspector)
	if !ok {
		return upgrade.ServiceStatus{}, fmt.Errorf("the %T service manager cannot report a service's state", m)
	}
	st, err := inspector.Status(ctx, s.spec(in))
	return upgrade.ServiceStatus{Installed: st.Installed, Running: st.Running, Failed: st.Failed, MainPID: st.MainPID, Executable: st.Executable}, err
}

// Restart restarts the agent, starting it if it was stopped: systemd's
// restart does both and waits for the first heartbeat; the SCM's restart
// leaves a stopped service alone (as upstream's), and the MSI stops the
// services it replaces the binary of, so on Windows it is a stop, then a
// start that waits for Running (the health check waits for the rest).
func (s *instanceServices) Restart(ctx context.Context, in upgrade.Instance) error {
	m, err := s.manager()
	if err != nil {
		return err
	}
	if runtime.GOOS != "windows" {
		return m.Restart(ctx, s.spec(in))
	}
	if err := m.Stop(ctx, s.spec(in)); err != nil {
		return err
	}
	return m.Start(ctx, s.spec(in))
}
