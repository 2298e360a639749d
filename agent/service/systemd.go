package service

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Timings of service control, named after what they bound.
const (
	// StartupWait bounds how long Start and Restart wait for the agent to
	// touch its heartbeat (it does so as soon as it serves).
	StartupWait = 20 * time.Second
	// statePoll is how often a state is polled while waiting.
	statePoll = 100 * time.Millisecond
	// heartbeatClockSlack covers file time stamps lagging the wall clock.
	heartbeatClockSlack = 100 * time.Millisecond
)

// Systemd manages an instance as a systemd unit.
type Systemd struct {
	Scope Scope
	// UnitDir is where the unit file goes: SystemUnitDir, or the user's
	// ~/.config/systemd/user for UserScope.
	UnitDir string
	// Host makes the changes (Direct or Sudo).
	Host Host
	// Infof reports progress, one line per call.
	Infof func(format string, args ...any)
	// Warnf reports something the user should act on.
	Warnf func(format string, args ...any)
	// SystemdVersion is the running systemd's version (see DetectSystemdVersion).
	SystemdVersion int
	// LookupUser resolves --username (os/user by default; tests replace it).
	LookupUser func(name string) (*user.User, error)
	// StartupWait overrides the package's StartupWait when non-zero.
	StartupWait time.Duration
}

// NewSystemd returns a manager for scope with the default unit directory.
func NewSystemd(scope Scope, host Host) (*Systemd, error) {
	m := &Systemd{Scope: scope, UnitDir: SystemUnitDir, Host: host}
	if scope == UserScope {
		dir, err := UserUnitDir()
		if err != nil {
			return nil, err
		}
		m.UnitDir = dir
	}
	return m, nil
}

// UserUnitDir is $XDG_CONFIG_HOME/systemd/user, by default
// ~/.config/systemd/user.
func UserUnitDir() (string, error) {
	base := os.Getenv("XDG_CONFIG_HOME")
	if base == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", userf("Cannot find your home directory for a user unit (%v). Set HOME, or run as root for a system unit.", err)
		}
		base = filepath.Join(home, ".config")
	}
	return filepath.Join(base, "systemd", "user"), nil
}

var systemdVersionPattern = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^systemd (\d+)`) })

// DetectSystemdVersion asks systemctl for the running systemd's version; 0
// if it cannot tell.
func DetectSystemdVersion(ctx context.Context) int {
	out, err := runCommand(ctx, "systemctl", "--version")
	if err != nil {
		return 0
	}
	if m := systemdVersionPattern().FindStringSubmatch(out); m != nil {
		v, _ := strconv.Atoi(m[1])
		return v
	}
	return 0
}

func (m *Systemd) infof(format string, args ...any) {
	if m.Infof != nil {
		m.Infof(format, args...)
	}
}

func (m *Systemd) warnf(format string, args ...any) {
	if m.Warnf != nil {
		m.Warnf(format, args...)
	} else {
		m.infof(format, args...)
	}
}

func (m *Systemd) unitPath(s Spec) string { return filepath.Join(m.UnitDir, UnitName(s.Instance)) }

// systemctl runs systemctl in the manager's scope.
func (m *Systemd) systemctl(ctx context.Context, args ...string) (string, error) {
	if m.Scope == UserScope {
		args = append([]string{"--user"}, args...)
	}
	out, err := m.Host.Command(ctx, "systemctl", args...)
	if err != nil && m.Scope == UserScope && strings.Contains(out, "Failed to connect to bus") {
		return out, userf("systemctl --user cannot reach your user's systemd (%s). Log in with a session of your own (ssh, or `machinectl shell`), not `su`; or run as root to install a system unit.", strings.TrimSpace(out))
	}
	return out, err
}

// unitState is what systemctl says about a unit.
type unitState struct {
	Load, Active, Sub, UnitFileState, User string
	MainPID                                int
}

func (m *Systemd) state(ctx context.Context, s Spec) (unitState, error) {
	out, err := m.systemctl(ctx, "show", UnitName(s.Instance), "--property=LoadState,ActiveState,SubState,UnitFileState,User,MainPID")
	if err != nil {
		return unitState{}, err
	}
	var st unitState
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), "=")
		switch k {
		case "LoadState":
			st.Load = v
		case "ActiveState":
			st.Active = v
		case "SubState":
			st.Sub = v
		case "UnitFileState":
			st.UnitFileState = v
		case "User":
			st.User = v
		case "MainPID":
			st.MainPID, _ = strconv.Atoi(v)
		}
	}
	return st, nil
}

func (st unitState) running() bool { return st.Active == "active" || st.Active == "reloading" }

// installedUser is the User= of the installed unit file, "" if none.
func (m *Systemd) installedUser(s Spec) string {
	data, err := os.ReadFile(m.unitPath(s))
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "User="); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// Install writes the unit and enables it. On an installed service it is a
// reconfigure: the unit is brought up to date (a no-op when it already is).
func (m *Systemd) Install(ctx context.Context, s Spec) error {
	return m.write(ctx, s, "Installing")
}

// Reconfigure rewrites the unit from the current settings and enables it.
// Upstream stops, disables, deletes and rewrites, leaving the service
// stopped; here a running service is restarted onto the new definition
// instead (scripts keep running), and an unchanged one is left alone.
func (m *Systemd) Reconfigure(ctx context.Context, s Spec) error {
	return m.write(ctx, s, "Reconfiguring")
}

// effectiveSpec is s with the account the unit will really name.
func (m *Systemd) effectiveSpec(s Spec, say bool) (Spec, error) {
	if m.Scope == SystemScope && s.Username == "" {
		// Re-running an install from automation that does not repeat
		// --username must not silently turn an unprivileged agent into root.
		if u := m.installedUser(s); u != "" && u != "root" {
			if say {
				m.infof("Keeping User=%s from the installed unit (pass --username=root to change it).", u)
			}
			s.Username = u
		}
	}
	if m.Scope == UserScope && s.Username != "" {
		if cur, err := user.Current(); err != nil || cur.Username != s.Username {
			return s, userf("A user unit always runs as you; --username %s needs a system unit: run the command as root.", s.Username)
		}
		s.Username = ""
	}
	return s, nil
}

// Status reads the unit's state, changing nothing: `tentacle provision`
// plans with it (would Install and Start change anything?), `tentacle
// upgrade` follows a restart with it. UpToDate is only worked out for a spec
// that names the executable, as Install's does.
func (m *Systemd) Status(ctx context.Context, s Spec) (Status, error) {
	s, err := m.effectiveSpec(s, false)
	if err != nil {
		return Status{}, err
	}
	st, err := m.state(ctx, s)
	if err != nil {
		return Status{}, err
	}
	out := Status{
		Installed: st.Load != "not-found",
		Enabled:   st.UnitFileState == "enabled",
		Running:   st.running(),
		Failed:    st.Active == "failed" || st.Sub == "auto-restart",
		MainPID:   st.MainPID,
		State:     st.Active + " (" + st.Sub + ")",
	}
	old, readErr := os.ReadFile(m.unitPath(s))
	if readErr != nil {
		out.Installed = false
	}
	if out.Installed && s.Executable != "" {
		text, err := RenderUnit(s, UnitOptions{Scope: m.Scope, SystemdVersion: m.SystemdVersion})
		if err != nil {
			return Status{}, err
		}
		out.UpToDate = string(old) == text
	}
	if out.Installed {
		show, err := m.systemctl(ctx, "show", UnitName(s.Instance), "--property=ExecStart")
		if err != nil {
			return out, err
		}
		out.Executable = execStartPath(show)
	}
	return out, nil
}

func (m *Systemd) write(ctx context.Context, s Spec, verb string) error {
	name, path := UnitName(s.Instance), m.unitPath(s)
	s, err := m.effectiveSpec(s, true)
	if err != nil {
		return err
	}
	owner, err := m.prepareAccount(s)
	if err != nil {
		return err
	}
	text, err := RenderUnit(s, UnitOptions{Scope: m.Scope, SystemdVersion: m.SystemdVersion})
	if err != nil {
		return err
	}
	old, readErr := os.ReadFile(path)
	changed := readErr != nil || string(old) != text
	if changed {
		m.infof("%s service %s: writing %s", verb, name, path)
		if err := os.MkdirAll(m.UnitDir, 0o755); err != nil && !errors.Is(err, fs.ErrPermission) {
			return err
		}
		if err := m.Host.WriteFile(path, []byte(text), 0o644); err != nil {
			return userf("Cannot write the unit file %s: %v. Run the command as root (or with sudo).", path, err)
		}
	} else {
		m.infof("Service %s is already installed and up to date (%s).", name, path)
	}
	// Ownership last: the unit (which names the user) is in place, and a
	// failure here is reported with the unit not yet enabled.
	if owner != nil {
		if err := m.handOver(s, owner); err != nil {
			return err
		}
	}
	if changed {
		if _, err := m.systemctl(ctx, "daemon-reload"); err != nil {
			return err
		}
	}
	st, err := m.state(ctx, s)
	if err != nil {
		return err
	}
	if st.UnitFileState != "enabled" {
		if _, err := m.systemctl(ctx, "enable", name); err != nil {
			return err
		}
		m.infof("Service %s enabled: it starts at boot.", name)
	}
	if changed && st.running() && readErr == nil {
		// The running agent still has the old definition; restarting it is
		// harmless to scripts (KillMode=process) and makes the change real.
		m.infof("Service %s is running; restarting it onto the new definition.", name)
		return m.Restart(ctx, s)
	}
	if m.Scope == UserScope {
		m.lingerHint()
	}
	return nil
}

// account is the resolved --username.
type account struct {
	name     string
	uid, gid int
}

// prepareAccount resolves a non-root --username before anything is written,
// and checks that the agent will be able to reach its files as that user.
func (m *Systemd) prepareAccount(s Spec) (*account, error) {
	if s.Username == "" || s.Username == "root" || m.Scope == UserScope {
		return nil, nil
	}
	lookup := m.LookupUser
	if lookup == nil {
		lookup = user.Lookup
	}
	u, err := lookup(s.Username)
	if err != nil {
		return nil, userf("The user %s does not exist on this machine. Create it first (for example `useradd --system --home-dir %s --shell /usr/sbin/nologin %s`), then run this again.", s.Username, s.Home, s.Username)
	}
	uid, err1 := strconv.Atoi(u.Uid)
	gid, err2 := strconv.Atoi(u.Gid)
	if err1 != nil || err2 != nil {
		return nil, userf("The user %s has no numeric uid/gid (%s:%s).", s.Username, u.Uid, u.Gid)
	}
	if uid == 0 {
		return nil, nil
	}
	if err := checkHandOver(s); err != nil {
		return nil, err
	}
	if blocked := untraversableParent(s.Home); blocked != "" {
		return nil, userf("The agent would run as %s but could not reach its home %s: %s is not open to other users. Run `chmod o+x %s`, or give the instance a home elsewhere.", s.Username, s.Home, blocked, blocked)
	}
	return &account{name: s.Username, uid: uid, gid: gid}, nil
}

// checkHandOver refuses layouts in which handing the home to the agent's
// user would hand over more than the instance's own files.
func checkHandOver(s Spec) error {
	home := filepath.Clean(s.Home)
	// A home of "/" or "/var" is a configuration mistake; chown -R of it
	// would break the machine.
	if !filepath.IsAbs(home) || strings.Count(home, string(filepath.Separator)) < 2 {
		return userf("The instance's home directory is %s; giving it to %s (recursively) would change a system directory. Give the instance a directory of its own: `tentacle create-instance --instance NAME --config /var/lib/tentacle/NAME/tentacle.config`.", s.Home, s.Username)
	}
	// The agent rewrites its configuration (first-start certificate) with a
	// temp file beside it, so the file's directory must be the user's too.
	if !within(s.ConfigPath, home) {
		return userf("To run as %s the instance's configuration file must be inside its home directory %s (it is %s), so that the agent can update it and no one else can read it. Create the instance in a directory of its own: `tentacle create-instance --instance NAME --config /var/lib/tentacle/NAME/tentacle.config`.", s.Username, s.Home, s.ConfigPath)
	}
	// The instance index and the machine key belong to root: whoever owns
	// them (or a directory above them) can make other instances' agents,
	// which may run as root, load a configuration of their choosing.
	for _, p := range s.Protected {
		if within(p, home) {
			return userf("The home directory %s contains %s, which must stay root's: giving it to %s would let that user change other instances. Create the instance in a directory of its own: `tentacle create-instance --instance NAME --config /var/lib/tentacle/NAME/tentacle.config`.", s.Home, p, s.Username)
		}
	}
	return nil
}

// within reports whether p is dir or under it.
func within(p, dir string) bool {
	p, dir = filepath.Clean(p), filepath.Clean(dir)
	return p == dir || strings.HasPrefix(p, dir+string(filepath.Separator))
}

// untraversableParent is the first directory above dir that other users
// cannot traverse, or "".
func untraversableParent(dir string) string {
	for d := filepath.Dir(filepath.Clean(dir)); ; d = filepath.Dir(d) {
		if st, err := os.Stat(d); err == nil && st.Mode().Perm()&0o001 == 0 {
			return d
		}
		if filepath.Dir(d) == d {
			return ""
		}
	}
}

// handOver gives the instance's files to the agent's user and closes them to
// everyone else: the home tree (which holds the logs, workspaces and, by
// default, the configuration) 0700, and the configuration file, which holds
// the certificate and its private key, 0600.
func (m *Systemd) handOver(s Spec, a *account) error {
	if err := m.Host.ChownTree(s.Home, a.uid, a.gid, 0o700); err != nil {
		return userf("Cannot give %s to %s: %v.", s.Home, a.name, err)
	}
	// ChownTree covered the configuration (it is inside the home); its mode
	// may still be a umask's 0644.
	if err := m.Host.Chown(s.ConfigPath, a.uid, a.gid, 0o600); err != nil {
		return userf("Cannot give %s to %s: %v.", s.ConfigPath, a.name, err)
	}
	m.infof("%s and %s now belong to %s, readable by no one else.", s.Home, s.ConfigPath, a.name)
	return nil
}

// lingerHint warns that a user unit stops with the user's last session
// unless lingering is enabled.
func (m *Systemd) lingerHint() {
	u, err := user.Current()
	if err != nil {
		return
	}
	if _, err := os.Stat(filepath.Join("/var/lib/systemd/linger", u.Username)); err == nil {
		return
	}
	m.warnf("This is a user unit: it runs only while %s is logged in. To start it at boot and keep it running, run `sudo loginctl enable-linger %s` once.", u.Username, u.Username)
}

// Uninstall stops and disables the service and deletes its unit, leaving no
// trace in systemd (not even a failed state). Drop-ins the administrator
// wrote are kept.
func (m *Systemd) Uninstall(ctx context.Context, s Spec) error {
	name, path := UnitName(s.Instance), m.unitPath(s)
	st, err := m.state(ctx, s)
	if err != nil {
		return err
	}
	_, statErr := os.Stat(path)
	if st.Load == "not-found" && errors.Is(statErr, fs.ErrNotExist) {
		m.infof("Service %s is not installed; nothing to uninstall.", name)
		return nil
	}
	m.infof("Uninstalling service %s", name)
	if st.running() || st.Active == "activating" {
		if _, err := m.systemctl(ctx, "stop", name); err != nil {
			return err
		}
	}
	if st.UnitFileState == "enabled" {
		if _, err := m.systemctl(ctx, "disable", name); err != nil {
			return err
		}
	}
	if err := m.Host.Remove(path); err != nil {
		return userf("Cannot delete %s: %v. Run the command as root (or with sudo).", path, err)
	}
	if _, err := m.systemctl(ctx, "daemon-reload"); err != nil {
		return err
	}
	// A unit that once failed stays listed until its state is reset.
	_, _ = m.systemctl(ctx, "reset-failed", name)
	m.infof("Service %s uninstalled; %s deleted.", name, path)
	if _, err := os.Stat(path + ".d"); err == nil {
		m.infof("Your drop-ins in %s.d were kept.", path)
	}
	return nil
}

func (m *Systemd) requireInstalled(ctx context.Context, s Spec) (unitState, error) {
	st, err := m.state(ctx, s)
	if err != nil {
		return st, err
	}
	if st.Load == "not-found" {
		return st, userf("Service %s is not installed. Install it first: `tentacle service --instance %s --install --start`.", UnitName(s.Instance), instanceArg(s))
	}
	return st, nil
}

func instanceArg(s Spec) string {
	if s.Rootless() {
		return "<name> (or --config " + s.ConfigPath + ")"
	}
	if strings.ContainsAny(s.Instance, " \t'\"") {
		return strconv.Quote(s.Instance)
	}
	return s.Instance
}

// Start starts the service and waits until the agent serves.
func (m *Systemd) Start(ctx context.Context, s Spec) error {
	name := UnitName(s.Instance)
	st, err := m.requireInstalled(ctx, s)
	if err != nil {
		return err
	}
	if st.running() {
		m.infof("Service %s is already running.", name)
		return nil
	}
	m.infof("Starting service %s", name)
	since := time.Now()
	if _, err := m.systemctl(ctx, "start", name); err != nil {
		return m.failed(ctx, s, err)
	}
	return m.waitServing(ctx, s, since)
}

// Stop stops the agent; its running scripts keep running (KillMode=process)
// and the next agent re-attaches to them.
func (m *Systemd) Stop(ctx context.Context, s Spec) error {
	name := UnitName(s.Instance)
	st, err := m.state(ctx, s)
	if err != nil {
		return err
	}
	if st.Load == "not-found" {
		m.infof("Service %s is not installed; nothing to stop.", name)
		return nil
	}
	if !st.running() && st.Active != "activating" {
		m.infof("Service %s is already stopped.", name)
		return nil
	}
	m.infof("Stopping service %s", name)
	if _, err := m.systemctl(ctx, "stop", name); err != nil {
		return err
	}
	m.infof("Service %s stopped.", name)
	return nil
}

// Restart restarts the agent (starting it if stopped) and waits until the
// new one serves. Scripts keep running across it.
func (m *Systemd) Restart(ctx context.Context, s Spec) error {
	name := UnitName(s.Instance)
	if _, err := m.requireInstalled(ctx, s); err != nil {
		return err
	}
	m.infof("Restarting service %s", name)
	since := time.Now()
	if _, err := m.systemctl(ctx, "restart", name); err != nil {
		return m.failed(ctx, s, err)
	}
	return m.waitServing(ctx, s, since)
}

// SetCredentials has nothing to do on Linux: the account is the unit's
// User=, written by Install and Reconfigure.
func (m *Systemd) SetCredentials(ctx context.Context, s Spec) error { return nil }

// waitServing waits until the agent touches its heartbeat (it does as soon
// as it listens and polls), so that "started" means "serving", and fails
// early, with the journal's last lines, if the unit fails instead.
func (m *Systemd) waitServing(ctx context.Context, s Spec, since time.Time) error {
	name := UnitName(s.Instance)
	wait := m.StartupWait
	if wait == 0 {
		wait = StartupWait
	}
	heartbeat := ""
	if s.Home != "" {
		heartbeat = filepath.Join(s.Home, "livez.heartbeat")
	}
	// The kernel stamps files from a coarse clock (a few ms behind
	// time.Now), so a heartbeat written right after since can look older.
	since = since.Add(-heartbeatClockSlack)
	deadline := time.Now().Add(wait)
	for {
		st, err := m.state(ctx, s)
		if err != nil {
			return err
		}
		if st.Active == "failed" || st.Sub == "auto-restart" {
			return m.failed(ctx, s, fmt.Errorf("the agent exited (%s/%s)", st.Active, st.Sub))
		}
		if st.running() {
			if heartbeat == "" {
				m.infof("Service %s is running.", name)
				return nil
			}
			fi, err := os.Stat(heartbeat)
			switch {
			case err == nil && !fi.ModTime().Before(since):
				m.infof("Service %s is running and the agent is serving (pid %d).", name, st.MainPID)
				return nil
			case err != nil && !errors.Is(err, fs.ErrNotExist):
				// Not ours to read (sudo without root): trust systemd.
				m.infof("Service %s is running.", name)
				return nil
			}
		}
		if time.Now().After(deadline) {
			return m.failed(ctx, s, fmt.Errorf("the agent did not start serving within %s (state %s/%s)", wait, st.Active, st.Sub))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(statePoll):
		}
	}
}

// failed explains a start that did not work, with the journal's last lines.
func (m *Systemd) failed(ctx context.Context, s Spec, cause error) error {
	name := UnitName(s.Instance)
	args := []string{"-u", name, "-n", "15", "--no-pager", "-o", "cat"}
	journalCmd := "journalctl -u " + name
	if m.Scope == UserScope {
		args = append([]string{"--user"}, args...)
		journalCmd = "journalctl --user -u " + name
	}
	journal, _ := m.Host.Command(ctx, "journalctl", args...)
	msg := fmt.Sprintf("Service %s did not start: %s.", name, strings.TrimRight(strings.TrimSpace(cause.Error()), "."))
	if j := strings.TrimSpace(journal); j != "" && !strings.HasPrefix(j, "-- No entries --") {
		msg += "\nLast lines of its journal:\n" + j
	}
	msg += fmt.Sprintf("\nSee `%s` and the instance log under %s/Logs; fix the cause, then `tentacle service --instance %s --start`.", journalCmd, s.Home, instanceArg(s))
	return &UserError{Msg: msg}
}

// execStartPath is the path= of `systemctl show --property=ExecStart`
// ("ExecStart={ path=/usr/bin/tentacle ; argv[]=... }").
func execStartPath(show string) string {
	_, rest, ok := strings.Cut(show, "path=")
	if !ok {
		return ""
	}
	path, _, _ := strings.Cut(rest, " ;")
	return strings.TrimSpace(path)
}
