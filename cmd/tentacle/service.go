package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/tentacle-go/tentacle/agent/config"
	"github.com/tentacle-go/tentacle/agent/service"
	"github.com/tentacle-go/tentacle/provision/release"
)

// ServiceCmd is upstream's service: install, remove and control the
// instance's OS service (tentacle-surface §6).
type ServiceCmd struct {
	Instance    string `name:"instance" help:"Name of the instance; * for every instance (with --start, --stop, --restart and --uninstall only)" placeholder:"NAME|*"`
	Config      string `name:"config" help:"Configuration file of a rootless instance" placeholder:"PATH"`
	Start       bool   `name:"start" help:"Start the service if it is not already running"`
	Stop        bool   `name:"stop" help:"Stop the service if it is running (running scripts keep running)"`
	Restart     bool   `name:"restart" help:"Restart the service (running scripts keep running)"`
	Install     bool   `name:"install" help:"Install the service (an installed one is brought up to date)"`
	Uninstall   bool   `name:"uninstall" help:"Stop and uninstall the service"`
	Reconfigure bool   `name:"reconfigure" help:"Rewrite the service definition from the current settings"`
	Username    string `name:"username" aliases:"user" help:"Account the service runs as (default: root on Linux, LocalSystem on Windows); also OCTOPUS_SERVICE_USERNAME" placeholder:"USER"`
	Password    string `name:"password" help:"Password of the account (Windows only); also OCTOPUS_SERVICE_PASSWORD" placeholder:"PASSWORD" sensitive:""`
	DependOn    string `name:"dependOn" help:"Another service this one depends on" placeholder:"SERVICE"`
	AutoUpgrade string `name:"auto-upgrade" help:"With --install or --reconfigure: a daily systemd timer runs 'tentacle upgrade --all --version CONSTRAINT' at a random time of day (off by default; off removes it). Linux only" placeholder:"CONSTRAINT|off"`
	UpgradeFeed string `name:"auto-upgrade-feed" help:"The release feed of --auto-upgrade. Default: $TENTACLE_RELEASES_FEED" placeholder:"FEED"`
	UpgradeKey  string `name:"auto-upgrade-pubkey" help:"The minisign public key the --auto-upgrade feed is signed with. Default: $TENTACLE_RELEASES_PUBKEY, else the key built into release binaries" placeholder:"KEY"`
}

// serviceExecutable is the binary the service runs: this one.
var serviceExecutable = func() (string, error) {
	exe, err := os.Executable()
	if err != nil {
		return "", err
	}
	return filepath.Abs(exe)
}

// errNeedsRoot keeps upstream's wording, then says what to do.
var errNeedsRoot = config.Userf("Requires elevated privileges. Please run command as sudo: `sudo tentacle service ...` (or as root; a non-root user needs passwordless sudo). Nothing was changed.")

// newServiceManager picks the service manager and how it may change the
// machine. It fails, before anything is written, when the command cannot
// do what it must: no systemd, or neither root nor passwordless sudo.
var newServiceManager = func(e *Env, sel config.Selection) (service.Manager, error) {
	switch runtime.GOOS {
	case "windows":
		return service.NewSCM(e.Infof, e.Warnf)
	case "linux":
	default:
		return nil, config.Userf("`tentacle service` manages systemd units (Linux) and Windows services. On %s, run `tentacle agent --instance NAME` under your own supervisor (for example launchd).", runtime.GOOS)
	}
	if _, err := os.Stat("/run/systemd/system"); err != nil {
		return nil, config.Userf("systemd is not running on this machine (no /run/systemd/system), so there is no service to install. Run `tentacle agent --instance NAME` under your init system or container runtime instead.")
	}
	if _, err := exec.LookPath("systemctl"); err != nil {
		return nil, config.Userf("systemctl is not on the PATH; install systemd or run `tentacle agent` under your own supervisor.")
	}
	ctx := context.Background()
	var (
		scope = service.SystemScope
		host  service.Host
	)
	switch {
	case os.Geteuid() == 0:
		host = service.Direct{}
	case sel.Rootless:
		// A rootless instance of a non-root user: a user unit it may
		// manage itself.
		scope, host = service.UserScope, service.Direct{}
	case service.CanSudo(ctx):
		host = service.Sudo{}
	default:
		return nil, errNeedsRoot
	}
	m, err := service.NewSystemd(scope, host)
	if err != nil {
		return nil, err
	}
	m.Infof, m.Warnf = e.Infof, e.Warnf
	m.SystemdVersion = service.DetectSystemdVersion(ctx)
	return m, nil
}

func (c *ServiceCmd) actions() service.Actions {
	return service.Actions{
		Restart: c.Restart, Stop: c.Stop, Uninstall: c.Uninstall, Install: c.Install,
		Reconfigure: c.Reconfigure, Start: c.Start,
		// Windows sets the account in a step of its own; on Linux it is a
		// line of the unit.
		Credentials: runtime.GOOS == "windows" && c.Username != "",
	}
}

func (c *ServiceCmd) Run(e *Env) error {
	if c.Username == "" {
		c.Username = e.Getenv("OCTOPUS_SERVICE_USERNAME")
	}
	if c.Password == "" {
		c.Password = e.Getenv("OCTOPUS_SERVICE_PASSWORD")
	}
	acts := c.actions()
	if len(acts.Steps()) == 0 {
		return config.Userf("Nothing to do: pass one or more of --install, --start, --stop, --restart, --reconfigure, --uninstall. For example `tentacle service --instance Tentacle --install --start`.")
	}
	autoUpgrade, err := c.autoUpgrade(e, acts)
	if err != nil {
		return err
	}
	if c.Password != "" && runtime.GOOS != "windows" {
		e.Warnf("--password is only used on Windows; systemd needs none.")
	}
	sels, err := c.selections(e, acts)
	if err != nil {
		// A user who cannot read the machine-wide index usually lacks the
		// privileges for the whole command: say that, not a detail of it.
		if runtime.GOOS == "linux" && os.Geteuid() != 0 && !service.CanSudo(context.Background()) {
			return errNeedsRoot
		}
		return err
	}
	exe, err := serviceExecutable()
	if err != nil {
		return fmt.Errorf("cannot find the tentacle binary: %w", err)
	}
	var failures []string
	for _, sel := range sels {
		if err := c.applyOne(e, sel, exe, acts); err != nil {
			if len(sels) == 1 {
				return serviceError(err)
			}
			// With --instance=* every instance is tried; failures are
			// reported together at the end, as upstream.
			failures = append(failures, fmt.Sprintf("%s: %s", displayName(sel), serviceError(err).Error()))
		}
	}
	if len(failures) > 0 {
		return config.Userf("The service of %d of %d instances could not be changed:\n%s", len(failures), len(sels), strings.Join(failures, "\n"))
	}
	return serviceError(c.applyAutoUpgrade(e, sels[0], acts, autoUpgrade))
}

// autoUpgrade checks --auto-upgrade before anything is changed; nil means
// no timer is to be written.
func (c *ServiceCmd) autoUpgrade(e *Env, acts service.Actions) (*service.AutoUpgrade, error) {
	if c.AutoUpgrade == "" {
		return nil, nil
	}
	if runtime.GOOS != "linux" {
		return nil, config.Userf("--auto-upgrade is a systemd timer and is not there yet on %s; upgrade with `tentacle release install --feed FEED` and restart the service.", runtime.GOOS)
	}
	if !acts.Install && !acts.Reconfigure {
		return nil, config.Userf("--auto-upgrade goes with --install or --reconfigure, for example `tentacle service --instance Tentacle --install --auto-upgrade '~> 1.4' --auto-upgrade-feed https://example.com/tentacle`.")
	}
	if c.Instance == "*" || c.Config != "" {
		return nil, config.Userf("--auto-upgrade is machine-wide and needs an instance of the machine-wide index (--instance NAME), run as root.")
	}
	if strings.EqualFold(c.AutoUpgrade, "off") {
		return nil, nil
	}
	if _, err := release.Select(nil, c.AutoUpgrade, false); err != nil {
		return nil, releaseError(err)
	}
	a := &service.AutoUpgrade{Constraint: c.AutoUpgrade, Feed: c.UpgradeFeed, PublicKey: c.UpgradeKey}
	if a.Feed == "" {
		a.Feed = e.Getenv("TENTACLE_RELEASES_FEED")
	}
	if a.PublicKey == "" {
		a.PublicKey = e.Getenv("TENTACLE_RELEASES_PUBKEY")
	}
	if a.Feed == "" {
		return nil, config.Userf("--auto-upgrade needs a release feed: pass --auto-upgrade-feed (a directory, https:// URL or github:OWNER/REPO) or set TENTACLE_RELEASES_FEED.")
	}
	if _, err := release.Open(a.Feed, release.Options{}); err != nil {
		return nil, releaseError(err)
	}
	return a, nil
}

// applyAutoUpgrade writes or removes the machine-wide upgrade timer: written
// with --auto-upgrade CONSTRAINT, removed with --auto-upgrade off and when
// --uninstall removed the last instance's service.
func (c *ServiceCmd) applyAutoUpgrade(e *Env, sel config.Selection, acts service.Actions, a *service.AutoUpgrade) error {
	off := strings.EqualFold(c.AutoUpgrade, "off")
	if a == nil && !off && !acts.Uninstall {
		return nil
	}
	if runtime.GOOS != "linux" || sel.Rootless {
		return nil
	}
	mgr, err := newServiceManager(e, sel)
	if err != nil {
		return err
	}
	m, ok := mgr.(*service.Systemd)
	if !ok || m.Scope != service.SystemScope {
		return nil
	}
	ctx := context.Background()
	if a != nil {
		exe, err := serviceExecutable()
		if err != nil {
			return err
		}
		a.Executable = exe
		return m.InstallAutoUpgrade(ctx, *a)
	}
	if acts.Uninstall && !off {
		list, err := e.Index().List()
		if err != nil {
			return err
		}
		for _, in := range list {
			if m.Installed(service.Spec{Instance: in.Name}) {
				return nil // another instance's agent still runs this binary
			}
		}
	}
	return m.UninstallAutoUpgrade(ctx)
}

// selections are the instances the command acts on.
func (c *ServiceCmd) selections(e *Env, acts service.Actions) ([]config.Selection, error) {
	if c.Instance != "*" {
		sel, err := e.Index().Select(c.Instance, c.Config, e.Cwd)
		if err != nil {
			return nil, err
		}
		return []config.Selection{sel}, nil
	}
	if !acts.EveryInstanceAllowed() {
		return nil, config.Userf("--instance=* can only be used with --start, --stop, --restart and --uninstall; name the instance to install or reconfigure.")
	}
	list, err := e.Index().List()
	if err != nil {
		return nil, err
	}
	if len(list) == 0 {
		return nil, config.Userf("There are no instances on this machine. Create one with `tentacle create-instance`.")
	}
	sels := make([]config.Selection, len(list))
	for i, in := range list {
		sels[i] = config.Selection{Name: in.Name, ConfigPath: in.ConfigurationFilePath}
	}
	return sels, nil
}

func (c *ServiceCmd) applyOne(e *Env, sel config.Selection, exe string, acts service.Actions) error {
	spec := service.Spec{
		Instance:   sel.Name,
		ConfigPath: sel.ConfigPath,
		Executable: exe,
		Username:   c.Username,
		Password:   c.Password,
		DependOn:   c.DependOn,
		Protected:  []string{e.Index().Dir, filepath.Join(e.Root(), "machinekey")},
	}
	if sel.Rootless {
		spec.Instance = ""
	}
	s, err := config.LoadSettings(sel.ConfigPath)
	switch {
	case err == nil:
		spec.Home = s.Home()
	case acts.Install || acts.Reconfigure || acts.Start || acts.Restart:
		// The service would run an agent that cannot start.
		return err
	}
	if runtime.GOOS == "linux" && (acts.Install || acts.Reconfigure) && spec.Username != "" && spec.Username != "root" && !machineIDUsable() {
		e.Warnf("This machine has no usable /etc/machine-id, so the certificate is encrypted with %s, which only root can read: the agent running as %s will not be able to load it. Give the machine an id (`systemd-machine-id-setup`) and run `tentacle new-certificate`.", filepath.Join(e.Root(), "machinekey"), spec.Username)
	}
	m, err := newServiceManager(e, sel)
	if err != nil {
		return err
	}
	return service.Apply(context.Background(), m, spec, acts)
}

// machineIDUsable reports whether upstream's machine-id key source works
// (it is world-readable, unlike the generated key).
func machineIDUsable() bool {
	data, err := os.ReadFile("/etc/machine-id")
	if err != nil {
		return false
	}
	line, _, _ := strings.Cut(string(data), "\n")
	return len(strings.TrimSpace(line)) == 32
}

func displayName(sel config.Selection) string {
	if sel.Rootless {
		return sel.ConfigPath
	}
	return sel.Name
}

// serviceError turns the service package's user errors into the CLI's.
func serviceError(err error) error {
	var ue *service.UserError
	if errors.As(err, &ue) {
		return config.Userf("%s", ue.Msg)
	}
	var ce *service.CommandError
	if errors.As(err, &ce) {
		return config.Userf("%s failed: %s", ce.Command, strings.TrimSpace(firstNonEmpty(ce.Output, ce.Err.Error())))
	}
	return err
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if strings.TrimSpace(v) != "" {
			return v
		}
	}
	return ""
}
