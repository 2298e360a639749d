package service

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// The automatic upgrade is machine-wide: one binary serves every instance,
// and `tentacle upgrade --all` restarts each agent that runs it.
const (
	AutoUpgradeService = "tentacle-upgrade.service"
	AutoUpgradeTimer   = "tentacle-upgrade.timer"
	// AutoUpgradeEnvironmentFile is read by the upgrade unit when it exists:
	// HTTPS_PROXY, NO_PROXY, GITHUB_TOKEN for the feed.
	AutoUpgradeEnvironmentFile = "/etc/octopus/tentacle-upgrade.env"
)

// AutoUpgrade is what the daily upgrade runs.
type AutoUpgrade struct {
	// Executable is the tentacle binary (absolute).
	Executable string
	// Constraint is the --version of `tentacle upgrade` ("~> 1.4", latest).
	Constraint string
	// Feed is the release feed; PublicKey the minisign key ("" is the
	// built-in one or TENTACLE_RELEASES_PUBKEY from the environment file).
	Feed, PublicKey string
}

// RenderAutoUpgrade returns the oneshot service and the timer that runs it
// daily, at a random time of the day on each machine so that a fleet does
// not upgrade (and restart) at once, and at the next boot when a run was
// missed while the machine was off.
func RenderAutoUpgrade(a AutoUpgrade) (service, timer string, err error) {
	if !path.IsAbs(a.Executable) { // a systemd unit: Unix paths, whatever builds it
		return "", "", fmt.Errorf("the upgrade unit needs the absolute path of the tentacle binary, not %q", a.Executable)
	}
	if strings.TrimSpace(a.Constraint) == "" {
		return "", "", userf("--auto-upgrade needs a version constraint, such as latest or '~> 1.4'.")
	}
	if a.Feed == "" {
		return "", "", userf("--auto-upgrade needs a release feed: pass --auto-upgrade-feed (a directory, https:// URL or github:OWNER/REPO) or set TENTACLE_RELEASES_FEED.")
	}
	args := []string{a.Executable, "upgrade", "--all", "--version=" + a.Constraint, "--feed=" + a.Feed}
	if a.PublicKey != "" {
		args = append(args, "--pubkey="+a.PublicKey)
	}
	for _, s := range args {
		if strings.ContainsAny(s, "\n\r") {
			return "", "", userf("The automatic upgrade's settings cannot contain a line break.")
		}
	}
	quoted := make([]string, len(args))
	for i, s := range args {
		quoted[i] = quoteExecArg(s)
	}
	service = `# ` + AutoUpgradeService + `: written by ` + "`tentacle service --install --auto-upgrade`" + `;
# removed with the last instance's service or by ` + "`--auto-upgrade off`" + `.
[Unit]
Description=Octopus Deploy: Tentacle automatic upgrade
# The feed is usually remote.
Wants=network-online.target
After=network-online.target

[Service]
Type=oneshot
# HTTPS_PROXY, NO_PROXY and GITHUB_TOKEN for the feed go in this file.
EnvironmentFile=-` + AutoUpgradeEnvironmentFile + `
ExecStart=` + strings.Join(quoted, " ") + `
# A download, the install and a health check of every agent; the upgrade
# bounds each step itself.
TimeoutStartSec=30min
`
	timer = `# ` + AutoUpgradeTimer + `: written by ` + "`tentacle service --install --auto-upgrade`" + `.
[Unit]
Description=Daily automatic upgrade of Tentacle

[Timer]
OnCalendar=daily
# Each machine picks its own time in the day, so a fleet does not restart
# its agents at once.
RandomizedDelaySec=24h
# A run missed while the machine was off happens at the next boot.
Persistent=true

[Install]
WantedBy=timers.target
`
	return service, timer, nil
}

// InstallAutoUpgrade writes the upgrade service and its timer, and enables
// and starts the timer. It is idempotent.
func (m *Systemd) InstallAutoUpgrade(ctx context.Context, a AutoUpgrade) error {
	if m.Scope != SystemScope {
		return userf("--auto-upgrade needs a system unit (the upgrade replaces the binary and restarts every instance): run the command as root.")
	}
	svc, timer, err := RenderAutoUpgrade(a)
	if err != nil {
		return err
	}
	changed := false
	for name, text := range map[string]string{AutoUpgradeService: svc, AutoUpgradeTimer: timer} {
		path := filepath.Join(m.UnitDir, name)
		if old, err := os.ReadFile(path); err == nil && string(old) == text {
			continue
		}
		if err := m.Host.WriteFile(path, []byte(text), 0o644); err != nil {
			return userf("Cannot write the unit file %s: %v. Run the command as root (or with sudo).", path, err)
		}
		changed = true
	}
	if changed {
		if _, err := m.systemctl(ctx, "daemon-reload"); err != nil {
			return err
		}
	}
	if _, err := m.systemctl(ctx, "enable", "--now", AutoUpgradeTimer); err != nil {
		return err
	}
	m.infof("Automatic upgrade on: %s runs `tentacle upgrade --all --version %s` once a day (see `systemctl list-timers %s`).", AutoUpgradeTimer, a.Constraint, AutoUpgradeTimer)
	return nil
}

// AutoUpgradeUpToDate reports, changing nothing, whether InstallAutoUpgrade
// would change nothing: both units are as it writes them and the timer is
// enabled and active (`tentacle provision` plans with it).
func (m *Systemd) AutoUpgradeUpToDate(ctx context.Context, a AutoUpgrade) (bool, error) {
	svc, timer, err := RenderAutoUpgrade(a)
	if err != nil {
		return false, err
	}
	for name, text := range map[string]string{AutoUpgradeService: svc, AutoUpgradeTimer: timer} {
		if old, err := os.ReadFile(filepath.Join(m.UnitDir, name)); err != nil || string(old) != text {
			return false, nil
		}
	}
	show, err := m.systemctl(ctx, "show", AutoUpgradeTimer, "--property=UnitFileState,ActiveState")
	if err != nil {
		return false, err
	}
	return strings.Contains(show, "UnitFileState=enabled") && strings.Contains(show, "ActiveState=active"), nil
}

// UninstallAutoUpgrade stops and removes the timer and its service; it
// says so when there is nothing to remove.
func (m *Systemd) UninstallAutoUpgrade(ctx context.Context) error {
	timerPath := filepath.Join(m.UnitDir, AutoUpgradeTimer)
	if _, err := os.Stat(timerPath); errors.Is(err, fs.ErrNotExist) {
		if _, err := os.Stat(filepath.Join(m.UnitDir, AutoUpgradeService)); errors.Is(err, fs.ErrNotExist) {
			return nil
		}
	}
	_, _ = m.systemctl(ctx, "disable", "--now", AutoUpgradeTimer)
	for _, name := range []string{AutoUpgradeTimer, AutoUpgradeService} {
		if err := m.Host.Remove(filepath.Join(m.UnitDir, name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return userf("Cannot delete %s: %v. Run the command as root (or with sudo).", filepath.Join(m.UnitDir, name), err)
		}
	}
	if _, err := m.systemctl(ctx, "daemon-reload"); err != nil {
		return err
	}
	_, _ = m.systemctl(ctx, "reset-failed", AutoUpgradeService)
	m.infof("Automatic upgrade off: %s and %s removed.", AutoUpgradeTimer, AutoUpgradeService)
	return nil
}

// Installed reports whether the instance's unit file exists.
func (m *Systemd) Installed(s Spec) bool {
	_, err := os.Stat(m.unitPath(s))
	return err == nil
}
