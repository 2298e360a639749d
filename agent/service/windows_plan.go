package service

import (
	"path/filepath"
	"strings"
	"time"
)

// The decisions about a Windows service, kept free of Windows APIs so they
// are unit-tested on every platform; windows.go applies them through the SCM.

// WindowsRecoveryAction is one SCM failure action: restart after Delay.
type WindowsRecoveryAction struct {
	Delay time.Duration
}

// WindowsServiceConfig is everything the SCM is told about an instance.
type WindowsServiceConfig struct {
	Name        string // also the display name, as upstream
	DisplayName string
	Description string
	// BinaryPath is the full command line the SCM runs.
	BinaryPath string
	// Dependencies must be running before the agent starts.
	Dependencies []string
	// Recovery are the failure actions in order; the SCM repeats the last
	// one for every later failure. Upstream configures none and relies on
	// an optional watchdog task instead.
	Recovery []WindowsRecoveryAction
	// RecoveryResetPeriod is how long without a failure resets the count.
	RecoveryResetPeriod time.Duration
	// UnrestrictedSID gives the service its own SID (NT SERVICE\<name>)
	// in its token, so that files and keys can be granted to this service
	// alone. Upstream sets none.
	UnrestrictedSID bool
}

// ServiceFlag is the option of `agent` (`run`) that the installed command
// line carries: it tells the agent that the Service Control Manager started
// it, which svc.IsWindowsService (a session-0 test) cannot always tell:
// under Wine services run in session 1. A service installed by upstream,
// whose command line lacks it, is still recognised by that test.
const ServiceFlag = "--windows-service"

// Windows error codes with which an SCM says it does not implement a
// configuration level (Wine's answers ERROR_INVALID_LEVEL for failure
// actions and service SIDs), numbered here so the rule is tested on every
// platform.
const (
	errorNotSupported       = 50
	errorCallNotImplemented = 120
	errorInvalidLevel       = 124
)

// OptionalSettingRefused reports whether code is an SCM's way of saying it
// does not implement an optional setting (a service SID, failure actions):
// the service then works without it, and install warns instead of failing.
func OptionalSettingRefused(code uintptr) bool {
	return code == errorInvalidLevel || code == errorNotSupported || code == errorCallNotImplemented
}

// WindowsRecovery restarts the agent after a minute, twice, then every five
// minutes: quick recovery from a one-off crash without a restart storm when
// something is persistently wrong. The count resets after a day of health.
var (
	WindowsRecovery            = []WindowsRecoveryAction{{time.Minute}, {time.Minute}, {5 * time.Minute}}
	WindowsRecoveryResetPeriod = 24 * time.Hour
)

// WindowsConfig decides the SCM configuration of s, as upstream: binpath
// `"<exe>" run --instance="<name>"` (or --config="<path>") plus ServiceFlag, dependencies
// LanmanWorkstation and TCPIP plus --dependOn, the upstream description,
// automatic start (applied by the caller).
func WindowsConfig(s Spec) WindowsServiceConfig {
	name := WindowsServiceName(s.Instance)
	arg := `--instance="` + s.Instance + `"`
	if s.Rootless() {
		arg = `--config="` + s.ConfigPath + `"`
	}
	binpath := `"` + s.Executable + `" run ` + arg + " " + ServiceFlag
	if strings.EqualFold(filepath.Ext(s.Executable), ".dll") {
		// A framework-dependent build is started through the dotnet host,
		// as upstream does; ours never is, but the rule costs nothing.
		binpath = `dotnet "` + s.Executable + `" run ` + arg + " " + ServiceFlag
	}
	deps := []string{"LanmanWorkstation", "TCPIP"}
	if s.DependOn != "" {
		deps = append(deps, s.DependOn)
	}
	return WindowsServiceConfig{
		Name:                name,
		DisplayName:         name,
		Description:         Description,
		BinaryPath:          binpath,
		Dependencies:        deps,
		Recovery:            WindowsRecovery,
		RecoveryResetPeriod: WindowsRecoveryResetPeriod,
		UnrestrictedSID:     true,
	}
}

// WindowsAccount is how the service logs on.
type WindowsAccount struct {
	// StartName is the SCM's account name ("" keeps LocalSystem).
	StartName string
	Password  string
	// GrantLogonRight says the account needs "Log on as a service"
	// (SeServiceLogonRight) first; built-in and virtual accounts have it.
	GrantLogonRight bool
}

// builtinWindowsAccounts need no password and already may log on as a
// service; the value is the name the SCM expects.
var builtinWindowsAccounts = map[string]string{
	"localsystem":                  "LocalSystem",
	"system":                       "LocalSystem",
	`nt authority\system`:          "LocalSystem",
	".\\localsystem":               "LocalSystem",
	"localservice":                 `NT AUTHORITY\LocalService`,
	`nt authority\localservice`:    `NT AUTHORITY\LocalService`,
	"local service":                `NT AUTHORITY\LocalService`,
	`nt authority\local service`:   `NT AUTHORITY\LocalService`,
	"networkservice":               `NT AUTHORITY\NetworkService`,
	`nt authority\networkservice`:  `NT AUTHORITY\NetworkService`,
	"network service":              `NT AUTHORITY\NetworkService`,
	`nt authority\network service`: `NT AUTHORITY\NetworkService`,
}

// DecideWindowsAccount turns --username/--password into the SCM's logon
// account: a bare name is a local account (.\name); DOMAIN\name and
// name@domain are kept; LocalSystem, LocalService and NetworkService are the
// built-in accounts; NT SERVICE\* virtual accounts and group managed service
// accounts (name$) log on without a password; any other account needs one.
func DecideWindowsAccount(username, password string) (WindowsAccount, error) {
	u := strings.TrimSpace(username)
	if u == "" {
		if password != "" {
			return WindowsAccount{}, userf("--password was given without --username. Pass the account too, for example --username=DOMAIN\\svc-tentacle.")
		}
		return WindowsAccount{}, nil
	}
	if b, ok := builtinWindowsAccounts[strings.ToLower(u)]; ok {
		return WindowsAccount{StartName: b}, nil
	}
	if strings.HasPrefix(strings.ToLower(u), `nt service\`) {
		return WindowsAccount{StartName: u}, nil
	}
	if !strings.Contains(u, `\`) && !strings.Contains(u, "@") {
		u = `.\` + u
	}
	if strings.HasSuffix(u, "$") {
		if password != "" {
			return WindowsAccount{}, userf("%s is a managed service account, which Windows gives its own password; do not pass --password for it.", u)
		}
		return WindowsAccount{StartName: u, GrantLogonRight: true}, nil
	}
	if password == "" {
		return WindowsAccount{}, userf("The account %s needs its password: pass --password or set OCTOPUS_SERVICE_PASSWORD. (Only LocalSystem, LocalService, NetworkService, NT SERVICE\\* and managed service accounts ending in $ run without one.)", u)
	}
	return WindowsAccount{StartName: u, Password: password, GrantLogonRight: true}, nil
}

// WindowsServiceExecutable is the program of a service's command line
// (its ImagePath): the quoted first argument, or, unquoted, everything up
// to the first ".exe" that ends a word. Windows Installer quotes a path
// with spaces, but Wine's leaves it bare, and so may a hand-made service
// (sc create binPath= C:\Program Files\...\Tentacle.exe run ...).
func WindowsServiceExecutable(commandLine string) string {
	c := strings.TrimSpace(commandLine)
	if rest, ok := strings.CutPrefix(c, `"`); ok {
		exe, _, _ := strings.Cut(rest, `"`)
		return exe
	}
	lower := strings.ToLower(c)
	for from := 0; ; {
		i := strings.Index(lower[from:], ".exe")
		if i < 0 {
			break
		}
		end := from + i + len(".exe")
		if end == len(c) || c[end] == ' ' || c[end] == '\t' {
			return c[:end]
		}
		from = end
	}
	exe, _, _ := strings.Cut(c, " ")
	return exe
}
