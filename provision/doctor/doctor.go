// Package doctor checks why a Tentacle instance cannot talk to its Octopus
// Servers, the most common support problem: its configuration, certificate,
// service, listening port and firewall, then for each server it polls the
// name, the route (through the polling proxy when one is set), TLS, the
// server's thumbprint against the trusted one, the polling handshake and
// the clock, and last the free disk under its home. Each check says what it
// found and the one thing to do about it.
//
// `tentacle doctor` prints the results; `tentacle provision` runs the same
// checks as its final health check. Every network step is bounded
// (StepTimeout, and Budget for the whole run), so a dead server costs
// seconds, not minutes.
package doctor

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/tentacle-go/tentacle/agent/config"
	"github.com/tentacle-go/tentacle/firewall"
)

// Deadlines and thresholds of the checks, named after what they bound.
const (
	// StepTimeout bounds one network step (a lookup, a connect, a TLS
	// handshake, an identification, a GET).
	StepTimeout = 2 * time.Second
	// Budget bounds a whole run; servers are checked side by side.
	Budget = 8 * time.Second
	// CertificateWarning is how close to expiry a certificate is reported.
	CertificateWarning = 30 * 24 * time.Hour
	// ClockSkewWarning and ClockSkewFailure bound the difference between this
	// machine's clock and the server's Date header.
	ClockSkewWarning = 30 * time.Second
	ClockSkewFailure = 5 * time.Minute
	// DiskWarning and DiskFailure are the free space under the home below
	// which deployments start to fail (packages are staged there).
	DiskWarning = 2 << 30
	DiskFailure = 500 << 20
)

// Status is a check's verdict.
type Status string

const (
	OK   Status = "ok"
	Warn Status = "warn"
	Fail Status = "fail"
	// Skip is a check that could not run here (no service manager, a step
	// before it failed); it is not a pass.
	Skip Status = "skip"
)

// Result is one check's finding.
type Result struct {
	// Check names what was checked: config, permissions, certificate,
	// service, port, firewall, dns, tcp, tls, thumbprint, handshake, clock,
	// disk.
	Check string `json:"check"`
	// Server is the server address a per-server check is about.
	Server string `json:"server,omitempty"`
	Status Status `json:"status"`
	// Found says what the check saw.
	Found string `json:"found"`
	// Fix is the one thing to do; empty when nothing is.
	Fix string `json:"fix,omitempty"`
}

func (r Result) String() string {
	s := r.Check
	if r.Server != "" {
		s += " " + r.Server
	}
	s += ": " + r.Found
	if r.Fix != "" {
		s += " Fix: " + r.Fix
	}
	return s
}

// Failed reports whether any result is a failure: something to fix.
func Failed(results []Result) bool {
	for _, r := range results {
		if r.Status == Fail {
			return true
		}
	}
	return false
}

// ServiceState is what the service manager says about the instance's
// service.
type ServiceState struct {
	Name                       string // unit or Windows service name
	Installed, Enabled, Active bool
	State                      string // the manager's word: "inactive (dead)", "Stopped"
}

// Options say which instance to check and with what.
type Options struct {
	// ConfigPath is the instance's configuration file.
	ConfigPath string
	// Instance is its name in the instance index ("" for a rootless one); it
	// goes into the commands the fixes suggest.
	Instance string
	// MachineConfigRoot is the machine-wide configuration root (permissions
	// of the index and machine key are checked under it); "" skips that.
	MachineConfigRoot string
	// MachineKey decrypts the certificate and the proxy password.
	MachineKey config.MachineKey
	// Service reads the instance's service state; nil skips the check,
	// with ServiceWhy as the reason (no service manager here).
	Service    func(ctx context.Context) (ServiceState, error)
	ServiceWhy string
	// Firewall is the OS firewall in charge and FirewallWhy why it was
	// chosen; nil skips the check, with FirewallWhy as the reason.
	Firewall    firewall.Firewall
	FirewallWhy string
	// ServerURL is the Octopus Server's web address, when known: the clock
	// is compared with its Date header. Otherwise a WebSocket polling
	// endpoint's answer is used; a TCP polling endpoint sends no Date.
	ServerURL string
	// Now is the clock (time.Now when nil).
	Now func() time.Time
}

func (o *Options) now() time.Time {
	if o.Now != nil {
		return o.Now()
	}
	return time.Now()
}

// fixCmd is a tentacle command line for the instance checked.
func (o *Options) fixCmd(command string, args ...string) string {
	parts := []string{"tentacle", command}
	if o.Instance != "" {
		parts = append(parts, "--instance", quoteArg(o.Instance))
	} else if o.ConfigPath != "" {
		parts = append(parts, "--config", quoteArg(o.ConfigPath))
	}
	return strings.Join(append(parts, args...), " ")
}

func quoteArg(s string) string {
	if strings.ContainsAny(s, " \t\"'$") {
		return strconv.Quote(s)
	}
	return s
}

// Run checks one instance, in order, and returns every finding. It does
// not stop at the first failure, except that nothing can be checked
// without a readable configuration.
func Run(ctx context.Context, opts Options) []Result {
	ctx, cancel := context.WithTimeout(ctx, Budget)
	defer cancel()
	var out []Result
	s, res := checkConfig(&opts)
	out = append(out, res...)
	if s == nil {
		return out
	}
	cert, res1 := checkCertificate(&opts, s)
	out = append(out, res1)
	out = append(out, checkService(ctx, &opts))
	out = append(out, checkPort(ctx, &opts, s)...)
	out = append(out, checkServers(ctx, &opts, s, cert)...)
	out = append(out, checkDisk(&opts, s))
	return out
}

// checkConfig reads and validates the configuration file and the
// permissions of what the agent's security rests on.
func checkConfig(o *Options) (*config.Settings, []Result) {
	s, err := config.LoadSettings(o.ConfigPath)
	if err != nil {
		return nil, []Result{{Check: "config", Status: Fail, Found: err.Error(),
			Fix: "Create or repair the instance: " + o.fixCmd("create-instance") + " (or restore the file from a backup)."}}
	}
	var problems []string
	if _, err := s.Port(); err != nil {
		problems = append(problems, err.Error())
	}
	if _, err := s.NoListen(); err != nil {
		problems = append(problems, err.Error())
	}
	if _, err := s.PollingConnectionCount(); err != nil {
		problems = append(problems, err.Error())
	}
	servers, err := s.TrustedServers()
	if err != nil {
		problems = append(problems, err.Error())
	}
	if _, err := s.Proxy(config.PollingProxyKeys, o.MachineKey); err != nil {
		problems = append(problems, err.Error())
	}
	var out []Result
	switch {
	case len(problems) > 0:
		out = append(out, Result{Check: "config", Status: Fail, Found: fmt.Sprintf("%s is readable but not valid: %s", o.ConfigPath, strings.Join(problems, " ")),
			Fix: "Correct the settings named above with the commands they give."})
	case len(servers) == 0:
		out = append(out, Result{Check: "config", Status: Fail, Found: fmt.Sprintf("%s is valid but trusts no Octopus Server, so no server can talk to this Tentacle.", o.ConfigPath),
			Fix: "Register it (" + o.fixCmd("register-with", "--server", "https://your-octopus", "--apiKey", "API-...") + ") or trust the server: " + o.fixCmd("configure", "--trust", "<SERVER-THUMBPRINT>") + "."})
	default:
		out = append(out, Result{Check: "config", Status: OK, Found: fmt.Sprintf("%s is readable and valid; it trusts %d Octopus Server(s).", o.ConfigPath, len(servers))})
	}
	findings := config.CheckPermissions(o.ConfigPath, o.MachineConfigRoot)
	if len(findings) == 0 {
		out = append(out, Result{Check: "permissions", Status: OK, Found: "Only their owners can change the configuration, the certificate's key and the instance index."})
	}
	for _, f := range findings {
		st := Warn
		if f.Fatal {
			st = Fail
		}
		out = append(out, Result{Check: "permissions", Status: st, Found: f.Path + " " + f.Problem + ".", Fix: f.Fix})
	}
	return s, out
}

// checkCertificate loads the instance certificate and checks its dates.
func checkCertificate(o *Options, s *config.Settings) (*config.Certificate, Result) {
	cert, err := s.Certificate(o.MachineKey)
	if err != nil {
		return nil, Result{Check: "certificate", Status: Fail, Found: err.Error(), Fix: "Import the original certificate (" + o.fixCmd("import-certificate", "--from-file", "<pfx>") + ") or generate a new one (" + o.fixCmd("new-certificate") + ") and have the server trust it."}
	}
	if cert == nil {
		return nil, Result{Check: "certificate", Status: Fail, Found: "This Tentacle has no certificate, so it cannot prove who it is to a server.", Fix: o.fixCmd("new-certificate", "--if-blank") + ", then register it with the server."}
	}
	now := o.now()
	leaf := cert.Leaf
	day := "2006-01-02"
	switch {
	case now.After(leaf.NotAfter):
		return cert, Result{Check: "certificate", Status: Fail,
			Found: fmt.Sprintf("The certificate %s expired on %s; servers refuse it.", cert.Thumbprint(), leaf.NotAfter.UTC().Format(day)),
			Fix:   o.fixCmd("new-certificate") + ", then have the server trust the new thumbprint (re-register, or update the machine's thumbprint in Octopus)."}
	case now.Before(leaf.NotBefore):
		return cert, Result{Check: "certificate", Status: Fail,
			Found: fmt.Sprintf("The certificate %s is not valid until %s: this machine's clock is behind, or the certificate was made on a machine whose clock was ahead.", cert.Thumbprint(), leaf.NotBefore.UTC().Format(time.RFC3339)),
			Fix:   "Set the clock right (timedatectl set-ntp true), or generate a new certificate with " + o.fixCmd("new-certificate") + "."}
	case leaf.NotAfter.Sub(now) < CertificateWarning:
		return cert, Result{Check: "certificate", Status: Warn,
			Found: fmt.Sprintf("The certificate %s expires on %s, in less than 30 days.", cert.Thumbprint(), leaf.NotAfter.UTC().Format(day)),
			Fix:   o.fixCmd("new-certificate") + " before then, and have the server trust the new thumbprint."}
	}
	return cert, Result{Check: "certificate", Status: OK,
		Found: fmt.Sprintf("Certificate %s is valid until %s. The Octopus Server must trust this thumbprint.", cert.Thumbprint(), leaf.NotAfter.UTC().Format(day))}
}

// checkService asks the service manager about the instance's service.
func checkService(ctx context.Context, o *Options) Result {
	if o.Service == nil {
		why := o.ServiceWhy
		if why == "" {
			why = "there is no service manager to ask on this machine"
		}
		return Result{Check: "service", Status: Skip, Found: "Not checked: " + why + "."}
	}
	ctx, cancel := context.WithTimeout(ctx, StepTimeout)
	defer cancel()
	st, err := o.Service(ctx)
	if err != nil {
		return Result{Check: "service", Status: Fail, Found: fmt.Sprintf("The service manager could not be asked: %v", err), Fix: "Run doctor as root (or with sudo), or check the service by hand (systemctl status)."}
	}
	switch {
	case !st.Installed:
		return Result{Check: "service", Status: Fail, Found: fmt.Sprintf("The service %s is not installed, so nothing runs the Tentacle.", st.Name), Fix: o.fixCmd("service", "--install", "--start") + "."}
	case !st.Active:
		return Result{Check: "service", Status: Fail, Found: fmt.Sprintf("The service %s is installed but not running (%s).", st.Name, st.State), Fix: o.fixCmd("service", "--start") + " (its log says why it stopped: journalctl -u " + st.Name + ")."}
	case !st.Enabled:
		return Result{Check: "service", Status: Warn, Found: fmt.Sprintf("The service %s runs but does not start at boot.", st.Name), Fix: o.fixCmd("service", "--install") + " (which enables it)."}
	}
	return Result{Check: "service", Status: OK, Found: fmt.Sprintf("The service %s is installed, enabled and running.", st.Name)}
}

// checkPort checks that something accepts connections on the listening
// port and that the OS firewall lets the server in.
func checkPort(ctx context.Context, o *Options, s *config.Settings) []Result {
	noListen, _ := s.NoListen()
	if noListen {
		return []Result{{Check: "port", Status: OK, Found: "This Tentacle does not listen (polling only); no port needs to be open."}}
	}
	port, err := s.Port()
	if err != nil || port == 0 {
		return []Result{{Check: "port", Status: Skip, Found: "The port is chosen at start (port 0); check the agent's log for the one it got."}}
	}
	host := s.ListenIP()
	if host == "" || host == "0.0.0.0" || host == "::" || host == "*" {
		host = "127.0.0.1"
	}
	addr := net.JoinHostPort(host, strconv.Itoa(port))
	d := net.Dialer{Timeout: StepTimeout}
	var out []Result
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		out = append(out, Result{Check: "port", Status: Fail, Found: fmt.Sprintf("Nothing accepts connections on %s (%s), so a listening server cannot reach this Tentacle.", addr, netCause(err)),
			Fix: "Start the agent (" + o.fixCmd("service", "--start") + "); if it runs, its log says why it does not listen."})
	} else {
		c.Close()
		out = append(out, Result{Check: "port", Status: OK, Found: fmt.Sprintf("Something accepts connections on %s.", addr)})
	}
	if o.Firewall == nil {
		why := o.FirewallWhy
		if why == "" {
			why = "no firewall was detected"
		}
		return append(out, Result{Check: "firewall", Status: Skip, Found: "Not checked: " + why + "."})
	}
	ctx, cancel := context.WithTimeout(ctx, StepTimeout)
	defer cancel()
	plan, err := o.Firewall.PlanOpen(ctx, newOpenRule(port))
	switch {
	case err != nil:
		out = append(out, Result{Check: "firewall", Status: Skip, Found: fmt.Sprintf("%s could not be read: %v", o.Firewall.Name(), err), Fix: "Run doctor as root (or with sudo) to read the firewall."})
	case plan.Empty():
		out = append(out, Result{Check: "firewall", Status: OK, Found: fmt.Sprintf("%s allows TCP port %d from anywhere.", o.Firewall.Name(), port)})
	default:
		out = append(out, Result{Check: "firewall", Status: Warn, Found: fmt.Sprintf("%s has no rule allowing TCP port %d; if it filters incoming traffic, the server cannot connect.", o.Firewall.Name(), port),
			Fix: fmt.Sprintf("tentacle firewall open --port %d", port)})
	}
	return out
}

// newOpenRule is the rule `tentacle firewall open --port` makes: the port
// from anywhere, under the default name.
func newOpenRule(port int) firewall.Rule {
	return firewall.NewRule("", firewall.SinglePort(uint16(port)), nil)
}

// unwrapNet drops the "dial tcp 127.0.0.1:1: connect:" prefixes the
// message already says in its own words.
// netCause is the OS's own words for a network error, without the final
// period Windows puts there (the message adds its own).
func netCause(err error) string {
	return strings.TrimSuffix(unwrapNet(err).Error(), ".")
}

func unwrapNet(err error) error {
	var op *net.OpError
	if !errors.As(err, &op) || op.Err == nil {
		return err
	}
	var sys *os.SyscallError
	if errors.As(op.Err, &sys) {
		return sys.Err
	}
	return op.Err
}

// Healthy runs the checks and returns nil when none failed, else an error
// naming each failure and its fix: the health check `tentacle provision`
// ends with.
func Healthy(ctx context.Context, opts Options) error {
	var failed []string
	for _, r := range Run(ctx, opts) {
		if r.Status == Fail {
			failed = append(failed, r.String())
		}
	}
	if len(failed) == 0 {
		return nil
	}
	return config.Userf("The Tentacle cannot serve yet (as `tentacle doctor` checks): %s", strings.Join(failed, " "))
}
