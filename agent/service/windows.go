//go:build windows

package service

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unsafe"

	"golang.org/x/sys/windows"
	"golang.org/x/sys/windows/svc"
	"golang.org/x/sys/windows/svc/mgr"
)

// SCM manages an instance as a Windows service.
type SCM struct {
	// Infof reports progress, one line per call.
	Infof func(format string, args ...any)
	// Warnf reports an optional setting this SCM does not implement.
	Warnf func(format string, args ...any)
}

// Windows service control timings, named after what they bound.
const (
	// scmStartAttempts and scmStartBackoff: the SCM can refuse a start
	// briefly (a dependency still starting, a stop still pending); retried
	// as upstream does.
	scmStartAttempts = 5
	scmStartBackoff  = 2 * time.Second
	// scmStateWait bounds waiting for Running or Stopped (upstream: ~45 s).
	scmStateWait = 60 * time.Second
)

func (w *SCM) infof(format string, args ...any) {
	if w.Infof != nil {
		w.Infof(format, args...)
	}
}

func (w *SCM) warnf(format string, args ...any) {
	if w.Warnf != nil {
		w.Warnf(format, args...)
	}
}

func connect() (*mgr.Mgr, error) {
	m, err := mgr.Connect()
	if errors.Is(err, windows.ERROR_ACCESS_DENIED) {
		return nil, userf("Requires elevated privileges: run the command from an elevated (Administrator) prompt.")
	}
	return m, err
}

// open returns the service, or nil if it is not installed.
func open(m *mgr.Mgr, name string) (*mgr.Service, error) {
	s, err := m.OpenService(name)
	if errors.Is(err, windows.ERROR_SERVICE_DOES_NOT_EXIST) {
		return nil, nil
	}
	if errors.Is(err, windows.ERROR_ACCESS_DENIED) {
		return nil, userf("Requires elevated privileges: run the command from an elevated (Administrator) prompt.")
	}
	return s, err
}

// Install creates the service, or brings an existing one up to date (as
// upstream, an install of an installed service is a reconfigure).
func (w *SCM) Install(ctx context.Context, s Spec) error {
	return w.write(s, "Installing")
}

// Reconfigure rewrites the service's definition.
func (w *SCM) Reconfigure(ctx context.Context, s Spec) error {
	return w.write(s, "Reconfiguring")
}

func (w *SCM) write(s Spec, verb string) error {
	c := WindowsConfig(s)
	m, err := connect()
	if err != nil {
		return err
	}
	defer m.Disconnect()
	if s.DependOn != "" {
		dep, err := open(m, s.DependOn)
		if err != nil {
			return err
		}
		if dep == nil {
			return userf("--dependOn %s: there is no such service on this machine.", s.DependOn)
		}
		dep.Close()
	}
	cfg := mgr.Config{
		ServiceType:    windows.SERVICE_WIN32_OWN_PROCESS,
		StartType:      mgr.StartAutomatic,
		ErrorControl:   mgr.ErrorNormal,
		BinaryPathName: c.BinaryPath,
		Dependencies:   c.Dependencies,
		DisplayName:    c.DisplayName,
		Description:    c.Description,
	}
	svcHandle, err := open(m, c.Name)
	if err != nil {
		return err
	}
	if svcHandle == nil {
		w.infof("%s service %s", verb, c.Name)
		svcHandle, err = create(m, c.Name, cfg)
		if err != nil {
			return fmt.Errorf("creating service %s: %w", c.Name, err)
		}
	} else {
		w.infof("Service %s exists; updating its definition", c.Name)
		cur, err := currentConfig(svcHandle)
		if err != nil {
			svcHandle.Close()
			return err
		}
		// Keep the account: credentials are their own step.
		cfg.ServiceStartName = cur.ServiceStartName
		if err := changeConfig(svcHandle, cfg); err != nil {
			svcHandle.Close()
			return fmt.Errorf("updating service %s: %w", c.Name, err)
		}
	}
	defer svcHandle.Close()
	recovery := w.harden(svcHandle, c)
	if recovery {
		w.infof("Service %s installed: starts automatically; restarts after 1 min, 1 min, then every 5 min if it fails.", c.Name)
	} else {
		w.infof("Service %s installed: starts automatically.", c.Name)
	}
	return nil
}

// harden applies the optional settings: the service's own SID and the
// failure actions. An SCM that does not implement one (Wine's answers
// ERROR_INVALID_LEVEL) leaves a service that works without it, so that is
// a warning, not a failed install; any other refusal is a warning too,
// since the service is installed and runs. It reports whether the
// recovery actions are in place.
func (w *SCM) harden(h *mgr.Service, c WindowsServiceConfig) (recovery bool) {
	optional := func(what string, err error) bool {
		if err == nil {
			return true
		}
		var errno windows.Errno
		if errors.As(err, &errno) && OptionalSettingRefused(uintptr(errno)) {
			w.warnf("Warning: this Service Control Manager does not support %s (%v); service %s works without it.", what, err, c.Name)
		} else {
			w.warnf("Warning: setting %s of service %s failed (%v); the service works without it.", what, c.Name, err)
		}
		return false
	}
	if c.UnrestrictedSID {
		sidType := uint32(windows.SERVICE_SID_TYPE_UNRESTRICTED)
		optional("a service SID", windows.ChangeServiceConfig2(h.Handle, windows.SERVICE_CONFIG_SERVICE_SID_INFO, (*byte)(unsafe.Pointer(&sidType))))
	}
	actions := make([]mgr.RecoveryAction, len(c.Recovery))
	for i, a := range c.Recovery {
		actions[i] = mgr.RecoveryAction{Type: mgr.ServiceRestart, Delay: a.Delay}
	}
	recovery = optional("recovery (failure) actions", h.SetRecoveryActions(actions, uint32(c.RecoveryResetPeriod/time.Second)))
	// An agent that exits with an error (not only one that crashes) is a
	// failure the recovery actions answer.
	if recovery {
		recovery = optional("recovery actions on non-crash failures", h.SetRecoveryActionsOnNonCrashFailures(true))
	}
	return recovery
}

// Status says, changing nothing, whether Install and Start would change
// anything: the definition Install writes (command line, names, start
// type, dependencies) and whether the service runs.
func (w *SCM) Status(ctx context.Context, s Spec) (Status, error) {
	c := WindowsConfig(s)
	m, err := connect()
	if err != nil {
		return Status{}, err
	}
	defer m.Disconnect()
	h, err := open(m, c.Name)
	if err != nil || h == nil {
		return Status{}, err
	}
	defer h.Close()
	cur, err := currentConfig(h)
	if err != nil {
		return Status{}, err
	}
	st, err := h.Query()
	if err != nil {
		return Status{}, err
	}
	upToDate := strings.EqualFold(cur.BinaryPathName, c.BinaryPath) && cur.DisplayName == c.DisplayName &&
		cur.Description == c.Description && cur.StartType == mgr.StartAutomatic && slices.Equal(cur.Dependencies, c.Dependencies)
	out := Status{Installed: true, UpToDate: upToDate, Enabled: cur.StartType == mgr.StartAutomatic, Running: st.State == svc.Running,
		State: scmStateName(st.State), Executable: WindowsServiceExecutable(cur.BinaryPathName)}
	if st.State != svc.Stopped {
		out.MainPID = int(st.ProcessId)
	}
	// A service that stopped with an error code (the agent exited, or
	// the SCM could not start it) has failed; one stopped on request
	// reports 0.
	out.Failed = st.State == svc.Stopped && st.Win32ExitCode != 0 && st.Win32ExitCode != uint32(windows.ERROR_SERVICE_NEVER_STARTED)
	return out, nil
}

// changeConfig sets what every SCM implements: the command line, start
// type, dependencies, account and display name (ChangeServiceConfig), and
// the description. Unlike mgr's UpdateConfig it sets no service SID type
// (an optional setting: see harden).
func changeConfig(h *mgr.Service, c mgr.Config) error {
	ptr := func(s string) *uint16 {
		if s == "" {
			return nil
		}
		return windows.StringToUTF16Ptr(s)
	}
	if err := windows.ChangeServiceConfig(h.Handle, c.ServiceType, c.StartType, c.ErrorControl,
		ptr(c.BinaryPathName), nil, nil, multiSZ(c.Dependencies), ptr(c.ServiceStartName), ptr(c.Password), ptr(c.DisplayName)); err != nil {
		return err
	}
	d := windows.SERVICE_DESCRIPTION{Description: windows.StringToUTF16Ptr(c.Description)}
	return windows.ChangeServiceConfig2(h.Handle, windows.SERVICE_CONFIG_DESCRIPTION, (*byte)(unsafe.Pointer(&d)))
}

// currentConfig reads what changeConfig writes. Unlike mgr's Config it
// does not ask for the delayed-start and SID settings, which not every SCM
// answers (Wine's refuses QueryServiceConfig2 level 3); a description it
// cannot read is left empty.
func currentConfig(h *mgr.Service) (mgr.Config, error) {
	n := uint32(1024)
	var p *windows.QUERY_SERVICE_CONFIG
	for {
		b := make([]byte, n)
		p = (*windows.QUERY_SERVICE_CONFIG)(unsafe.Pointer(&b[0]))
		err := windows.QueryServiceConfig(h.Handle, p, n, &n)
		if err == nil {
			break
		}
		if !errors.Is(err, windows.ERROR_INSUFFICIENT_BUFFER) || n <= uint32(len(b)) {
			return mgr.Config{}, err
		}
	}
	c := mgr.Config{
		ServiceType:      p.ServiceType,
		StartType:        p.StartType,
		ErrorControl:     p.ErrorControl,
		BinaryPathName:   windows.UTF16PtrToString(p.BinaryPathName),
		LoadOrderGroup:   windows.UTF16PtrToString(p.LoadOrderGroup),
		Dependencies:     fromMultiSZ(p.Dependencies),
		ServiceStartName: windows.UTF16PtrToString(p.ServiceStartName),
		DisplayName:      windows.UTF16PtrToString(p.DisplayName),
	}
	n = 1024
	for {
		b := make([]byte, n)
		err := windows.QueryServiceConfig2(h.Handle, windows.SERVICE_CONFIG_DESCRIPTION, &b[0], n, &n)
		if err == nil {
			c.Description = windows.UTF16PtrToString((*windows.SERVICE_DESCRIPTION)(unsafe.Pointer(&b[0])).Description)
			break
		}
		if !errors.Is(err, windows.ERROR_INSUFFICIENT_BUFFER) || n <= uint32(len(b)) {
			break
		}
	}
	return c, nil
}

// fromMultiSZ reads a double-NUL-terminated string list.
func fromMultiSZ(p *uint16) []string {
	var out []string
	for p != nil && *p != 0 {
		s := windows.UTF16PtrToString(p)
		out = append(out, s)
		p = (*uint16)(unsafe.Add(unsafe.Pointer(p), (len(windows.StringToUTF16(s)))*2))
	}
	return out
}

// create is windows.CreateService with our exact command line: mgr quotes
// each argument its own way, and upstream's binpath is `"exe" run
// --instance="x"`. A service whose required settings cannot be written is
// deleted again; optional ones never get that far (harden).
func create(m *mgr.Mgr, name string, c mgr.Config) (*mgr.Service, error) {
	h, err := windows.CreateService(m.Handle, windows.StringToUTF16Ptr(name), windows.StringToUTF16Ptr(c.DisplayName),
		windows.SERVICE_ALL_ACCESS, c.ServiceType, c.StartType, c.ErrorControl,
		windows.StringToUTF16Ptr(c.BinaryPathName), nil, nil, multiSZ(c.Dependencies), nil, nil)
	if err != nil {
		return nil, err
	}
	s := &mgr.Service{Name: name, Handle: h}
	// The description, which CreateService cannot set.
	if err := changeConfig(s, c); err != nil {
		_ = s.Delete()
		s.Close()
		return nil, err
	}
	return s, nil
}

// multiSZ is a Windows double-NUL-terminated string list.
func multiSZ(list []string) *uint16 {
	if len(list) == 0 {
		return nil
	}
	var b []uint16
	for _, s := range list {
		b = append(b, windows.StringToUTF16(s)...)
	}
	b = append(b, 0)
	return &b[0]
}

// Uninstall stops and deletes the service.
func (w *SCM) Uninstall(ctx context.Context, s Spec) error {
	name := WindowsServiceName(s.Instance)
	m, err := connect()
	if err != nil {
		return err
	}
	defer m.Disconnect()
	h, err := open(m, name)
	if err != nil {
		return err
	}
	if h == nil {
		w.infof("Service %s is not installed; nothing to uninstall.", name)
		return nil
	}
	defer h.Close()
	if err := stopAndWait(ctx, h); err != nil {
		return err
	}
	if err := h.Delete(); err != nil && !errors.Is(err, windows.ERROR_SERVICE_MARKED_FOR_DELETE) {
		return fmt.Errorf("deleting service %s: %w", name, err)
	}
	w.infof("Service %s uninstalled.", name)
	return nil
}

func (w *SCM) control(s Spec, fn func(h *mgr.Service, name string) error) error {
	name := WindowsServiceName(s.Instance)
	m, err := connect()
	if err != nil {
		return err
	}
	defer m.Disconnect()
	h, err := open(m, name)
	if err != nil {
		return err
	}
	if h == nil {
		return nil
	}
	defer h.Close()
	return fn(h, name)
}

// Start starts the service (retrying while the SCM refuses) and waits for
// Running.
func (w *SCM) Start(ctx context.Context, s Spec) error {
	name := WindowsServiceName(s.Instance)
	found := false
	err := w.control(s, func(h *mgr.Service, name string) error {
		found = true
		st, err := h.Query()
		if err != nil {
			return err
		}
		if st.State == svc.Running {
			w.infof("Service %s is already running.", name)
			return nil
		}
		w.infof("Starting service %s", name)
		return startAndWait(ctx, h)
	})
	if err == nil && !found {
		return userf("Service %s is not installed. Install it first: `tentacle service --instance %s --install --start`.", name, instanceArg(s))
	}
	return err
}

// Stop stops the service and waits for Stopped.
func (w *SCM) Stop(ctx context.Context, s Spec) error {
	found := false
	err := w.control(s, func(h *mgr.Service, name string) error {
		found = true
		w.infof("Stopping service %s", name)
		return stopAndWait(ctx, h)
	})
	if err == nil && !found {
		w.infof("Service %s is not installed; nothing to stop.", WindowsServiceName(s.Instance))
	}
	return err
}

// Restart is stop then start, and only for a running service, as upstream.
func (w *SCM) Restart(ctx context.Context, s Spec) error {
	found := false
	err := w.control(s, func(h *mgr.Service, name string) error {
		found = true
		st, err := h.Query()
		if err != nil {
			return err
		}
		if st.State != svc.Running {
			w.infof("Service %s is not running; not restarting it.", name)
			return nil
		}
		w.infof("Restarting service %s", name)
		if err := stopAndWait(ctx, h); err != nil {
			return err
		}
		return startAndWait(ctx, h)
	})
	if err == nil && !found {
		return userf("Service %s is not installed. Install it first: `tentacle service --instance %s --install --start`.", WindowsServiceName(s.Instance), instanceArg(s))
	}
	return err
}

// SetCredentials makes the service log on as s.Username, first granting a
// password account "Log on as a service".
func (w *SCM) SetCredentials(ctx context.Context, s Spec) error {
	acct, err := DecideWindowsAccount(s.Username, s.Password)
	if err != nil || acct.StartName == "" {
		return err
	}
	name := WindowsServiceName(s.Instance)
	found := false
	err = w.control(s, func(h *mgr.Service, name string) error {
		found = true
		if acct.GrantLogonRight {
			if err := grantServiceLogonRight(acct.StartName); err != nil {
				return fmt.Errorf("granting %s the right to log on as a service: %w", acct.StartName, err)
			}
		}
		cfg, err := currentConfig(h)
		if err != nil {
			return err
		}
		cfg.ServiceStartName = acct.StartName
		cfg.Password = acct.Password
		if err := changeConfig(h, cfg); err != nil {
			return fmt.Errorf("setting the account of %s: %w", name, err)
		}
		w.infof("Service %s runs as %s.", name, acct.StartName)
		return nil
	})
	if err == nil && !found {
		return userf("Service %s is not installed. Install it first: `tentacle service --install --username %s`.", name, s.Username)
	}
	return err
}

func startAndWait(ctx context.Context, h *mgr.Service) error {
	var err error
	for attempt := 1; attempt <= scmStartAttempts; attempt++ {
		if err = h.Start(); err == nil || errors.Is(err, windows.ERROR_SERVICE_ALREADY_RUNNING) {
			err = nil
			break
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Duration(attempt) * scmStartBackoff):
		}
	}
	if err != nil {
		return fmt.Errorf("starting service %s: %w", h.Name, err)
	}
	return waitState(ctx, h, svc.Running)
}

func stopAndWait(ctx context.Context, h *mgr.Service) error {
	st, err := h.Query()
	if err != nil {
		return err
	}
	if st.State == svc.Stopped {
		return nil
	}
	if st.State != svc.StopPending {
		if _, err := h.Control(svc.Stop); err != nil && !errors.Is(err, windows.ERROR_SERVICE_NOT_ACTIVE) {
			return fmt.Errorf("stopping service %s: %w", h.Name, err)
		}
	}
	return waitState(ctx, h, svc.Stopped)
}

func waitState(ctx context.Context, h *mgr.Service, want svc.State) error {
	deadline := time.Now().Add(scmStateWait)
	for {
		st, err := h.Query()
		if err != nil {
			return err
		}
		if st.State == want {
			return nil
		}
		if want == svc.Running && st.State == svc.Stopped {
			return userf("Service %s stopped right after starting (exit code %d). See the instance log under <home>\\Logs.", h.Name, st.ServiceSpecificExitCode)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("service %s did not reach the wanted state within %s (state %d)", h.Name, scmStateWait, st.State)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(300 * time.Millisecond):
		}
	}
}

// LSA, which x/sys/windows does not wrap: the "Log on as a service" right.
var (
	advapi32               = windows.NewLazySystemDLL("advapi32.dll")
	procLsaOpenPolicy      = advapi32.NewProc("LsaOpenPolicy")
	procLsaAddAccountRight = advapi32.NewProc("LsaAddAccountRights")
	procLsaClose           = advapi32.NewProc("LsaClose")
	procLsaNtStatusToWin   = advapi32.NewProc("LsaNtStatusToWinError")
)

const (
	policyCreateAccount = 0x00000010
	policyLookupNames   = 0x00000800
)

type lsaUnicodeString struct {
	Length        uint16
	MaximumLength uint16
	Buffer        *uint16
}

type lsaObjectAttributes struct {
	Length                   uint32
	RootDirectory            windows.Handle
	ObjectName               *lsaUnicodeString
	Attributes               uint32
	SecurityDescriptor       uintptr
	SecurityQualityOfService uintptr
}

func lsaError(status uintptr) error {
	if status == 0 {
		return nil
	}
	code, _, _ := procLsaNtStatusToWin.Call(status)
	return windows.Errno(code)
}

func grantServiceLogonRight(account string) error {
	sid, _, _, err := windows.LookupSID("", account)
	if err != nil {
		return fmt.Errorf("looking up %s: %w", account, err)
	}
	var attrs lsaObjectAttributes
	attrs.Length = uint32(unsafe.Sizeof(attrs))
	var policy windows.Handle
	st, _, _ := procLsaOpenPolicy.Call(0, uintptr(unsafe.Pointer(&attrs)), policyCreateAccount|policyLookupNames, uintptr(unsafe.Pointer(&policy)))
	if err := lsaError(st); err != nil {
		return err
	}
	defer procLsaClose.Call(uintptr(policy))
	right := windows.StringToUTF16("SeServiceLogonRight")
	us := lsaUnicodeString{
		Length:        uint16((len(right) - 1) * 2),
		MaximumLength: uint16(len(right) * 2),
		Buffer:        &right[0],
	}
	st, _, _ = procLsaAddAccountRight.Call(uintptr(policy), uintptr(unsafe.Pointer(sid)), uintptr(unsafe.Pointer(&us)), 1)
	return lsaError(st)
}

// NewSCM returns the Windows service manager.
func NewSCM(infof, warnf func(format string, args ...any)) (Manager, error) {
	return &SCM{Infof: infof, Warnf: warnf}, nil
}

// scmStateName is the SCM's word for a state, for messages.
func scmStateName(s svc.State) string {
	switch s {
	case svc.Stopped:
		return "Stopped"
	case svc.StartPending:
		return "StartPending"
	case svc.StopPending:
		return "StopPending"
	case svc.Running:
		return "Running"
	case svc.ContinuePending:
		return "ContinuePending"
	case svc.PausePending:
		return "PausePending"
	case svc.Paused:
		return "Paused"
	}
	return fmt.Sprintf("state %d", s)
}
