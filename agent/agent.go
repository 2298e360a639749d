// Package agent is the running Tentacle: it wires the Halibut listener and
// pollers to the script, file and capability services, and keeps them
// running until asked to stop. Scripts outlive it (see agent/scripts).
package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tentacle-go/tentacle/agent/config"
	"github.com/tentacle-go/tentacle/agent/contracts"
	"github.com/tentacle-go/tentacle/agent/files"
	"github.com/tentacle-go/tentacle/agent/halibut"
	"github.com/tentacle-go/tentacle/agent/scripts"
)

// Timings of the running agent.
const (
	// HeartbeatInterval is how often livez.heartbeat is touched (upstream: 10 s).
	HeartbeatInterval = 10 * time.Second
	// ShutdownGrace bounds how long stopping waits for requests in flight.
	ShutdownGrace = 30 * time.Second
	// MinFreeDiskBytes is kept free by uploads (upstream requires ~500 MiB
	// for workspaces).
	MinFreeDiskBytes = 100 << 20
)

// Options configure an agent.
type Options struct {
	// InstanceName is exported to scripts; "" for a rootless instance.
	InstanceName string
	Settings     *config.Settings
	Certificate  *config.Certificate
	MachineKey   config.MachineKey
	Logger       *slog.Logger
	Limits       halibut.Limits
	Getenv       func(string) string
	Version      string
	// Executable is the tentacle binary (for the supervisor and scripts).
	Executable string
	// SupervisorCommand overrides how scripts' supervisors are started; by default
	// scripts.FindSupervisor chooses (the tentacle-supervisor program or this binary).
	SupervisorCommand []string
	// LogCounter, when set, is the handler under Logger; metrics report it.
	LogCounter *LogCounter
	// WorkspaceCleanerClock is the workspace cleaner's time; nil is the real time.
	WorkspaceCleanerClock scripts.Clock
	// MachineConfigRoot, when set, is where the machine key and the instance
	// index live (/etc/octopus): their permissions are checked at start with
	// the configuration file's.
	MachineConfigRoot string
	// OnlyV1Services serves only IScriptService and IFileTransferService,
	// as a Tentacle older than mid-2023 does (no ICapabilitiesServiceV2, no
	// IScriptServiceV2). For tests of clients that must drive such
	// Tentacles; no command sets it.
	OnlyV1Services bool
}

// Agent is one running Tentacle instance.
type Agent struct {
	opts     Options
	log      *slog.Logger
	home     string
	trust    *halibut.TrustStore
	service  *halibut.Service
	manager  *scripts.Manager
	listener *halibut.Listener
	pollers  []*halibut.Poller
	cleaner  scripts.CleanerConfig
	// releaseHome ends this process's claim on home (scripts.ClaimHome),
	// when Run returns.
	releaseHome func()

	addrMu sync.Mutex
	addr   net.Addr
	ready  chan struct{}
}

// New prepares an agent from its configuration; Run starts it.
func New(opts Options) (*Agent, error) {
	if opts.Getenv == nil {
		opts.Getenv = os.Getenv
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	s := opts.Settings
	if err := checkPermissions(s.Path(), opts.MachineConfigRoot, opts.Logger); err != nil {
		return nil, err
	}
	home := s.Home()
	if _, err := config.EnsurePrivateDirAll(home); err != nil {
		return nil, err
	}
	servers, err := s.TrustedServers()
	if err != nil {
		return nil, err
	}
	trust := halibut.NewTrustStore()
	for _, srv := range servers {
		trust.Add(srv.Thumbprint)
	}
	release, err := scripts.ClaimHome(home)
	if err != nil {
		return nil, err
	}
	created := false
	defer func() {
		if !created {
			release()
		}
	}()
	a := &Agent{opts: opts, log: opts.Logger, home: home, trust: trust, ready: make(chan struct{}), releaseHome: release}

	env, err := a.scriptEnvironment()
	if err != nil {
		return nil, err
	}
	supervisor := opts.SupervisorCommand
	if len(supervisor) == 0 {
		// The small tentacle-supervisor program when it is installed and of this build.
		if exe, err := os.Executable(); err == nil {
			var note string
			supervisor, note = scripts.FindSupervisor(exe, opts.Version)
			a.log.Info(note)
		}
	}
	a.manager, err = scripts.NewManager(scripts.Config{
		Home:              home,
		SupervisorCommand: supervisor,
		Environment:       env,
		Logger:            opts.Logger.With("component", "scripts"),
	})
	if err != nil {
		return nil, err
	}
	cleaning, problems := s.WorkspaceCleaner(opts.Getenv)
	for _, p := range problems {
		a.log.Warn(p)
	}
	a.cleaner = scripts.CleanerConfig{Interval: cleaning.Delay, DeleteOlderThan: cleaning.DeleteOlderThan, Clock: opts.WorkspaceCleanerClock}
	spool := filepath.Join(home, ".spool") // data streams land on the home's disk, not a small /tmp
	if _, err := config.EnsurePrivateDir(spool); err != nil {
		return nil, err
	}
	a.service = &halibut.Service{TempDir: spool}
	journal := filepath.Join(home, ".upload-journal") // where in-flight uploads' temporary files are recorded
	if _, err := config.EnsurePrivateDir(journal); err != nil {
		return nil, err
	}
	a.sweepLeftovers(journal)
	var v1Tickets atomic.Int64
	contracts.RegisterScriptService(a.service, scriptServiceV1{m: a.manager, counter: &v1Tickets})
	contracts.RegisterFileTransferService(a.service, fileTransferService{store: &files.Store{Home: home, MinFreeBytes: MinFreeDiskBytes, Journal: journal}, log: opts.Logger})
	if !opts.OnlyV1Services {
		contracts.RegisterScriptServiceV2(a.service, scriptServiceV2{m: a.manager})
		contracts.RegisterCapabilitiesServiceV2(a.service, capabilities{})
	}

	noListen, err := s.NoListen()
	if err != nil {
		return nil, err
	}
	tlsCert := opts.Certificate.TLS()
	if !noListen {
		a.listener = &halibut.Listener{Certificate: &tlsCert, Trust: trust, Service: a.service, Limits: opts.Limits, Logger: opts.Logger.With("component", "listener")}
	}
	count := pollingConnectionCount(s, opts.Getenv)
	proxy, err := a.pollingProxy()
	if err != nil {
		return nil, err
	}
	// Entries that share an address and subscription are one server with
	// several trusted certificates (its next one, ahead of a rotation): one
	// poller that accepts any of them.
	byAddress := map[string]*halibut.Poller{}
	for _, srv := range servers {
		if !srv.Polling() || srv.Address == "" {
			continue
		}
		sub := srv.SubscriptionID
		if sub == "" {
			a.log.Warn("skipping a polling server with no subscription id; run `tentacle server-comms` or register again", "server", srv.Address)
			continue
		}
		key := strings.ToLower(srv.Address) + "|" + strings.ToLower(sub)
		if p, ok := byAddress[key]; ok {
			p.AlsoTrusted = append(p.AlsoTrusted, srv.Thumbprint)
			continue
		}
		p := &halibut.Poller{
			Certificate: &tlsCert, Service: a.service, Limits: opts.Limits, Logger: opts.Logger.With("component", "poller"),
			ServerAddress: srv.Address, ServerThumbprint: srv.Thumbprint, SubscriptionID: sub, Connections: count, Proxy: proxy,
		}
		byAddress[key] = p
		a.pollers = append(a.pollers, p)
	}
	if a.listener == nil && len(a.pollers) == 0 {
		return nil, config.Userf("This Tentacle has nothing to do: listening is off (NoListen) and no polling server is configured. Use `tentacle configure --noListen False` or `tentacle poll-server`.")
	}
	created = true
	return a, nil
}

// checkPermissions warns about the configuration (which holds the private
// key), its folder, the machine key and the instance index when others can
// read them, and refuses to start when others can change them: whoever can
// would choose the servers this agent trusts.
func checkPermissions(configPath, machineConfigRoot string, log *slog.Logger) error {
	findings := config.CheckPermissions(configPath, machineConfigRoot)
	for _, f := range findings {
		if !f.Fatal {
			log.Warn("file permissions: "+f.Path+" "+f.Problem, "path", f.Path, "fix", f.Fix)
		}
	}
	return config.RefusePermissions(findings)
}

// processStart is when this process started, near enough: every file it
// writes is newer.
var processStart = time.Now()

// sweepLeftovers removes the temporary files an earlier run left when it
// was killed mid-request: spooled data streams and half-written uploads.
// Only our own names, and only files older than this process.
func (a *Agent) sweepLeftovers(journal string) {
	spooled, spooledBytes, err := a.service.SweepTempDir(processStart)
	if err != nil {
		a.log.Warn("could not remove every leftover spooled data stream", "err", err)
	}
	uploads, uploadBytes, err := files.SweepInterruptedUploads(journal, processStart)
	if err != nil {
		a.log.Warn("could not remove every leftover of an interrupted upload", "err", err)
	}
	if len(spooled)+len(uploads) > 0 {
		a.log.Info("removed temporary files left by an interrupted run", "files", len(spooled)+len(uploads), "bytes", spooledBytes+uploadBytes, "uploads", uploads, "spooled", len(spooled))
	}
}

// pollingConnectionCount: TentaclePollingConnectionCount, else the setting,
// else 1; clamped to 1..512, as upstream.
func pollingConnectionCount(s *config.Settings, getenv func(string) string) int {
	n := 1
	if v, err := s.PollingConnectionCount(); err == nil && v > 0 {
		n = v
	}
	if v, err := strconv.Atoi(strings.TrimSpace(getenv("TentaclePollingConnectionCount"))); err == nil && v > 0 {
		n = v
	}
	return min(max(n, config.MinPollingConnectionCount), config.MaxPollingConnectionCount)
}

// pollingProxy turns the polling-proxy settings into a dialer policy: a
// configured host, else the environment (HTTPS_PROXY/NO_PROXY) when "use
// the default proxy" is on, else direct.
func (a *Agent) pollingProxy() (halibut.ProxyFunc, error) {
	p, err := a.opts.Settings.Proxy(config.PollingProxyKeys, a.opts.MachineKey)
	if err != nil {
		return nil, err
	}
	if u := p.URL(); u != nil {
		return halibut.FixedProxy(u), nil
	}
	if p.UseDefault {
		return halibut.EnvironmentProxy, nil
	}
	return nil, nil
}

// scriptEnvironment is what upstream exports to every script
// (tentacle-surface §8.3).
func (a *Agent) scriptEnvironment() ([]string, error) {
	s := a.opts.Settings
	exe := a.opts.Executable
	web, err := s.Proxy(config.WebProxyKeys, a.opts.MachineKey)
	if err != nil {
		return nil, err
	}
	env := []string{
		"TentacleHome=" + a.home,
		"TentacleApplications=" + s.ApplicationDirectory(),
		"TentacleJournal=" + filepath.Join(a.home, "DeploymentJournal.xml"),
		"CalamariPackageRetentionJournalPath=" + filepath.Join(a.home, "PackageRetentionJournal.json"),
		"TentacleInstanceName=" + a.opts.InstanceName,
		"TentacleVersion=" + a.opts.Version,
		"TentacleNetFrameworkDescription=Go " + strings.TrimPrefix(runtime.Version(), "go"),
		"TentacleExecutablePath=" + exe,
		"TentacleProgramDirectoryPath=" + filepath.Dir(exe),
		"AgentProgramDirectoryPath=" + filepath.Dir(exe),
		"TentacleCertificateSignatureAlgorithm=" + signatureAlgorithm(a.opts.Certificate),
		"TentacleUseDefaultProxy=" + strconv.FormatBool(web.UseDefault),
		"TentacleProxyHost=" + web.Host,
		"TentacleProxyPort=" + strconv.Itoa(web.Port),
		"TentacleProxyUsername=" + web.Username,
		"TentacleProxyPassword=" + web.Password,
	}
	return env, nil
}

func signatureAlgorithm(c *config.Certificate) string {
	switch c.Leaf.SignatureAlgorithm.String() {
	case "SHA256-RSA":
		return "sha256RSA"
	case "SHA1-RSA":
		return "sha1RSA"
	}
	return strings.ToLower(strings.ReplaceAll(c.Leaf.SignatureAlgorithm.String(), "-", ""))
}

// Addr is the listening address once Run has started listening (nil when
// not listening).
func (a *Agent) Addr() net.Addr {
	<-a.ready
	a.addrMu.Lock()
	defer a.addrMu.Unlock()
	return a.addr
}

// Pollers are the agent's polling clients, for health reporting.
func (a *Agent) Pollers() []*halibut.Poller { return a.pollers }

// close stops the script manager's goroutines (scripts keep running) and
// gives up the claim on the home: what Run does when it returns.
func (a *Agent) close() {
	a.manager.Close()
	a.releaseHome()
}

// Run serves until ctx ends, then stops accepting, finishes requests in
// flight and returns. Running scripts are left running: a new agent
// re-attaches to them.
func (a *Agent) Run(ctx context.Context) error {
	defer a.close()
	var wg sync.WaitGroup
	errc := make(chan error, 1)
	// Upstream's start-up lines, word for word: its tooling waits for them
	// and reads the chosen port from "listen://HOST:PORT/ ... Listener started".
	trusted := a.trust.List()
	for _, t := range trusted {
		a.log.Info("Agent will trust Octopus Servers with the thumbprint: " + t)
	}
	if len(trusted) == 0 {
		a.log.Info("The agent is not configured to trust any Octopus Servers.")
	}
	if a.listener != nil {
		ln, err := a.listen()
		if err != nil {
			close(a.ready)
			return err
		}
		a.addrMu.Lock()
		a.addr = ln.Addr()
		a.addrMu.Unlock()
		a.log.Info(fmt.Sprintf("%-30s  Listener started", "listen://"+ln.Addr().String()+"/"))
		a.log.Info("Agent listening on: "+ln.Addr().String(), "thumbprint", a.opts.Certificate.Thumbprint())
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := a.listener.Serve(ln); err != nil && !errors.Is(err, halibut.ErrListenerClosed) {
				select {
				case errc <- err:
				default:
				}
			}
		}()
	}
	a.beat() // before ready: a started agent is live at once
	close(a.ready)
	// Start-up (the CLI's model, certificates, configuration) peaks at a few
	// MB of heap that an idle agent never needs again; the runtime would keep
	// it resident for minutes. Give it back once (~1 MB of RSS).
	debug.FreeOSMemory()
	// Likewise the binary's pages that start-up mapped (package
	// initialisation of everything linked in); the agent maps back what it
	// runs (~4 MB of RSS).
	if _, err := releaseStartupPages(); err != nil {
		a.log.Debug("could not release the start-up pages", "err", err)
	}
	pollCtx, stopPolling := context.WithCancel(context.WithoutCancel(ctx))
	for _, p := range a.pollers {
		a.log.Info(fmt.Sprintf("Agent will poll Octopus Server at %s for subscription %s expecting thumbprint %s", p.ServerAddress, p.SubscriptionID, p.ServerThumbprint))
		a.log.Info(fmt.Sprintf("Starting %d polling connections", p.Connections))
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.Run(pollCtx)
		}()
	}
	if a.listener == nil {
		// Upstream's sign that a polling-only agent has started.
		a.log.Info("Agent will not listen on any TCP ports")
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		a.heartbeat(pollCtx)
	}()
	wg.Go(func() {
		// Workspaces of scripts the server never completed; the first pass runs at once.
		if err := a.manager.RunWorkspaceCleaner(pollCtx, a.cleaner); err != nil {
			a.log.Error("the workspace cleaner could not start", "err", err)
		}
	})
	if addr, ok := a.opts.Settings.Get(KeyMetricsListenAddress); ok {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := a.ServeMetrics(pollCtx, addr, a.opts.LogCounter); err != nil {
				a.log.Error("the metrics endpoint could not start", "err", err)
			}
		}()
	}

	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-errc:
	}
	a.log.Info("stopping: finishing requests in flight; running scripts keep running")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), ShutdownGrace)
	defer cancel()
	if a.listener != nil {
		_ = a.listener.Shutdown(shutdownCtx)
	}
	stopPolling()
	wg.Wait()
	a.log.Info("stopped")
	return runErr
}

func (a *Agent) listen() (net.Listener, error) {
	port, err := a.opts.Settings.Port()
	if err != nil {
		return nil, err
	}
	// An empty ListenIP binds every address, IPv4 and IPv6 (dual-stack).
	addr := net.JoinHostPort(a.opts.Settings.ListenIP(), strconv.Itoa(port))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, config.Userf("Cannot listen on %s: %v. Another program (or another Tentacle instance) may be using the port; choose another with `tentacle configure --port N`.", addr, unwrapOp(err))
	}
	return ln, nil
}

func unwrapOp(err error) error {
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Err != nil {
		return oe.Err
	}
	return err
}

// heartbeat touches <home>/livez.heartbeat, which `tentacle livez` checks.
func (a *Agent) heartbeat(ctx context.Context) {
	t := time.NewTicker(HeartbeatInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			a.beat()
		}
	}
}

// beat touches the heartbeat file that `tentacle livez` checks.
func (a *Agent) beat() {
	now := time.Now()
	path := filepath.Join(a.home, "livez.heartbeat")
	if err := os.WriteFile(path, []byte(now.UTC().Format(time.RFC3339)), 0o600); err == nil {
		_ = os.Chtimes(path, now, now)
	}
}

// Describe summarises what the agent will do, for its first log lines.
func (a *Agent) Describe() string {
	var parts []string
	if a.listener != nil {
		a.addrMu.Lock()
		addr := a.addr // not Addr(): that waits for Run
		a.addrMu.Unlock()
		switch port, _ := a.opts.Settings.Port(); {
		case addr != nil:
			parts = append(parts, "listening on "+addr.String())
		case port == 0:
			parts = append(parts, "listening on a free port the system chooses")
		default:
			parts = append(parts, fmt.Sprintf("listening on port %d", port))
		}
	}
	for _, p := range a.pollers {
		parts = append(parts, "polling "+p.ServerAddress)
	}
	return strings.Join(parts, ", ")
}
