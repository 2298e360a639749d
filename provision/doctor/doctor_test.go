package doctor

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tentacle-go/tentacle/agent/config"
	"github.com/tentacle-go/tentacle/agent/service"
	"github.com/tentacle-go/tentacle/agent/service/servicetest"
	"github.com/tentacle-go/tentacle/internal/proxytest"
	"github.com/tentacle-go/tentacle/provision/octopus/octopustest"
)

// instance writes a configuration with cert and whatever edit sets, and
// returns the options that check it.
func instance(t *testing.T, cert *config.Certificate, edit func(*config.Settings)) Options {
	t.Helper()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "Tentacle", "tentacle.config")
	if err := os.MkdirAll(filepath.Dir(cfg), 0o700); err != nil {
		t.Fatal(err)
	}
	mk := config.NewUnixMachineKey(dir)
	s := config.NewSettings(cfg)
	s.Set(config.KeyHome, filepath.Dir(cfg))
	if cert != nil {
		if _, err := s.SetCertificate(cert, mk); err != nil {
			t.Fatal(err)
		}
	}
	if edit != nil {
		edit(s)
	}
	if err := s.Save(); err != nil {
		t.Fatal(err)
	}
	return Options{ConfigPath: cfg, Instance: "Tentacle", MachineKey: mk,
		Service: func(context.Context) (ServiceState, error) {
			return ServiceState{Name: "Tentacle.service", Installed: true, Enabled: true, Active: true, State: "active (running)"}, nil
		}}
}

func newCert(t *testing.T) *config.Certificate {
	t.Helper()
	c, err := config.GenerateCertificate()
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// pollingInstance is a polling Tentacle of srv; registered says whether
// srv knows its certificate.
func pollingInstance(t *testing.T, srv *octopustest.Server, address, trusted string, registered bool, edit func(*config.Settings)) (Options, *config.Certificate) {
	t.Helper()
	cert := newCert(t)
	sub := config.NewSubscriptionID()
	if registered {
		srv.AddMachine(octopustest.Machine{Name: "web01", Endpoint: octopustest.Endpoint{CommunicationStyle: "TentacleActive", URI: sub, Thumbprint: cert.Thumbprint()}})
	}
	opts := instance(t, cert, func(s *config.Settings) {
		s.Set(config.KeyNoListen, "true")
		s.SetTrustedServers([]config.TrustedServer{{Thumbprint: trusted, CommunicationStyle: config.StyleTentacleActive, Address: address, SubscriptionID: sub}})
		if edit != nil {
			edit(s)
		}
	})
	return opts, cert
}

// find returns the result of one check, failing the test if absent.
func find(t *testing.T, results []Result, check string) Result {
	t.Helper()
	for _, r := range results {
		if r.Check == check {
			return r
		}
	}
	t.Fatalf("no %s check in:\n%s", check, dump(results))
	return Result{}
}

func dump(results []Result) string {
	var b strings.Builder
	for _, r := range results {
		b.WriteString("  [" + string(r.Status) + "] " + r.String() + "\n")
	}
	return b.String()
}

func expect(t *testing.T, results []Result, check string, st Status, found, fix string) {
	t.Helper()
	r := find(t, results, check)
	if r.Status != st || !strings.Contains(r.Found, found) || !strings.Contains(r.Fix, fix) {
		t.Errorf("%s: got [%s] %q fix %q; want [%s] containing %q, fix containing %q\nall:\n%s", check, r.Status, r.Found, r.Fix, st, found, fix, dump(results))
	}
}

// A polling Tentacle its server knows passes every check, over TCP and
// WebSocket polling, with the clock compared to the server's Date header.
func TestHealthyPollingTentacle(t *testing.T) {
	srv := octopustest.NewServer(t)
	for _, address := range []string{srv.PollingAddress, srv.WebSocketAddress} {
		opts, cert := pollingInstance(t, srv, address, srv.Thumbprint(), true, nil)
		opts.ServerURL = srv.URL
		results := Run(context.Background(), opts)
		if Failed(results) {
			t.Fatalf("%s: failures:\n%s", address, dump(results))
		}
		for _, check := range []string{"config", "certificate", "service", "port", "dns", "tcp", "tls", "thumbprint", "handshake", "clock", "disk"} {
			if r := find(t, results, check); r.Status != OK {
				t.Errorf("%s: %s is %s, not ok: %s", address, check, r.Status, r)
			}
		}
		expect(t, results, "thumbprint", OK, "The server must trust this Tentacle's thumbprint "+cert.Thumbprint(), "")
		expect(t, results, "handshake", OK, "The server accepted a polling connection", "")
	}
}

func TestWrongThumbprint(t *testing.T) {
	srv := octopustest.NewServer(t)
	wrong := strings.Repeat("AB", 20)
	opts, cert := pollingInstance(t, srv, srv.PollingAddress, wrong, true, nil)
	results := Run(context.Background(), opts)
	expect(t, results, "thumbprint", Fail,
		"The server presented certificate "+srv.Thumbprint()+", but this Tentacle trusts "+wrong+" for it, so every connection is refused. The server, for its part, must trust this Tentacle's thumbprint "+cert.Thumbprint(),
		"--oldThumbprint "+wrong+" --newThumbprint "+srv.Thumbprint())
	expect(t, results, "handshake", Skip, "Not tried: the thumbprint check failed.", "")
	if !Failed(results) {
		t.Error("a wrong thumbprint is not a failure")
	}
}

// A server that does not know this Tentacle's certificate refuses the
// polling connection.
func TestServerDoesNotKnowThisTentacle(t *testing.T) {
	srv := octopustest.NewServer(t)
	opts, cert := pollingInstance(t, srv, srv.PollingAddress, srv.Thumbprint(), false, nil)
	results := Run(context.Background(), opts)
	expect(t, results, "thumbprint", OK, "", "")
	expect(t, results, "handshake", Fail, "it does not know thumbprint "+cert.Thumbprint(), "or update the machine's thumbprint in Octopus to "+cert.Thumbprint())
}

// closedAddress is a loopback port nothing listens on.
func closedAddress(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func TestUnreachableServer(t *testing.T) {
	srv := octopustest.NewServer(t)
	addr := closedAddress(t)
	opts, _ := pollingInstance(t, srv, "https://"+addr+"/", srv.Thumbprint(), true, nil)
	start := time.Now()
	results := Run(context.Background(), opts)
	expect(t, results, "dns", OK, "127.0.0.1 is an IP address", "")
	expect(t, results, "tcp", Fail, addr+" cannot be reached: "+refused(t, addr)+".", "Check that the Octopus Server listens for polling Tentacles on port")
	for _, check := range []string{"tls", "thumbprint", "handshake", "clock"} {
		expect(t, results, check, Skip, "Not tried: the tcp check failed.", "")
	}
	for _, r := range results {
		if strings.Contains(r.Found, "..") {
			t.Errorf("a doubled period in %q", r.Found)
		}
	}
	if d := time.Since(start); d > Budget+time.Second {
		t.Errorf("doctor took %v, more than its budget %v", d, Budget)
	}
}

func setPollingProxy(hostport string) func(*config.Settings) {
	return func(s *config.Settings) {
		host, port, _ := net.SplitHostPort(hostport)
		s.Set(config.PollingProxyKeys.UseDefault, "false")
		s.Set(config.PollingProxyKeys.Host, host)
		s.Set(config.PollingProxyKeys.Port, port)
	}
}

func TestProxyRefusingTheTunnel(t *testing.T) {
	srv := octopustest.NewServer(t)
	proxy := proxytest.Start(t, proxytest.Options{Refuse: true}).URL.Host
	opts, _ := pollingInstance(t, srv, srv.PollingAddress, srv.Thumbprint(), true, setPollingProxy(proxy))
	results := Run(context.Background(), opts)
	target := strings.TrimSuffix(strings.TrimPrefix(srv.PollingAddress, "https://"), "/")
	expect(t, results, "dns", OK, "127.0.0.1 is resolved by the polling proxy http://"+proxy, "")
	expect(t, results, "tcp", Fail, "cannot be reached through the polling proxy http://"+proxy+": proxy http://"+proxy+" refused the tunnel to "+target+": 403 Forbidden.",
		"Have the proxy allow CONNECT to "+target+", or correct the proxy settings: tentacle polling-proxy --instance Tentacle")
}

func TestThroughAWorkingProxy(t *testing.T) {
	srv := octopustest.NewServer(t)
	proxy := proxytest.Start(t, proxytest.Options{}).URL.Host
	opts, _ := pollingInstance(t, srv, srv.PollingAddress, srv.Thumbprint(), true, setPollingProxy(proxy))
	results := Run(context.Background(), opts)
	expect(t, results, "tcp", OK, "accepts connections (through the polling proxy http://"+proxy+")", "")
	expect(t, results, "handshake", OK, "The server accepted a polling connection", "")
}

// A listening Tentacle whose port nothing accepts on.
func TestClosedListeningPort(t *testing.T) {
	_, port, _ := net.SplitHostPort(closedAddress(t))
	opts := instance(t, newCert(t), func(s *config.Settings) {
		s.Set(config.KeyPortNumber, port)
		s.SetTrustedServers([]config.TrustedServer{{Thumbprint: strings.Repeat("C", 40), CommunicationStyle: config.StyleTentaclePassive}})
	})
	results := Run(context.Background(), opts)
	expect(t, results, "port", Fail, "Nothing accepts connections on 127.0.0.1:"+port+" ("+refused(t, "127.0.0.1:"+port)+"), so a listening server cannot reach this Tentacle.", "tentacle service --instance Tentacle --start")
	expect(t, results, "server", OK, "connects to this Tentacle (listening)", "")

	// And open: something accepts.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	_, open, _ := net.SplitHostPort(l.Addr().String())
	opts = instance(t, newCert(t), func(s *config.Settings) {
		s.Set(config.KeyPortNumber, open)
		s.SetTrustedServers([]config.TrustedServer{{Thumbprint: strings.Repeat("C", 40), CommunicationStyle: config.StyleTentaclePassive}})
	})
	expect(t, Run(context.Background(), opts), "port", OK, "Something accepts connections on 127.0.0.1:"+open, "")
}

// certificateValid makes a certificate valid between two times.
func certificateValid(t *testing.T, from, until time.Time) *config.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: config.CertificateSubject}, NotBefore: from, NotAfter: until}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &config.Certificate{Leaf: leaf, Key: key}
}

func TestCertificateDates(t *testing.T) {
	now := time.Now()
	trusted := func(s *config.Settings) {
		s.Set(config.KeyNoListen, "true")
		s.SetTrustedServers([]config.TrustedServer{{Thumbprint: strings.Repeat("C", 40), CommunicationStyle: config.StyleTentaclePassive}})
	}
	expired := certificateValid(t, now.AddDate(-2, 0, 0), now.AddDate(0, 0, -3))
	results := Run(context.Background(), instance(t, expired, trusted))
	expect(t, results, "certificate", Fail, "The certificate "+expired.Thumbprint()+" expired on "+now.AddDate(0, 0, -3).UTC().Format("2006-01-02")+"; servers refuse it.", "tentacle new-certificate --instance Tentacle, then have the server trust the new thumbprint")
	if !Failed(results) {
		t.Error("an expired certificate is not a failure")
	}

	soon := certificateValid(t, now.AddDate(-1, 0, 0), now.AddDate(0, 0, 10))
	expect(t, Run(context.Background(), instance(t, soon, trusted)), "certificate", Warn, "expires on "+now.AddDate(0, 0, 10).UTC().Format("2006-01-02")+", in less than 30 days", "tentacle new-certificate --instance Tentacle before then")

	expect(t, Run(context.Background(), instance(t, nil, trusted)), "certificate", Fail, "This Tentacle has no certificate", "tentacle new-certificate --instance Tentacle --if-blank")
}

// The service state as systemctl reports it, read by agent/service's
// Systemd.Status against servicetest's simulated systemctl (the real
// systemd is exercised by the nspawn test in cmd/tentacle).
func TestStoppedService(t *testing.T) {
	unitDir := t.TempDir()
	fake := servicetest.New(unitDir)
	m := &service.Systemd{Scope: service.SystemScope, UnitDir: unitDir, Host: fake}
	spec := service.Spec{Instance: "Tentacle", ConfigPath: "/etc/octopus/Tentacle/tentacle.config", Executable: "/usr/bin/tentacle"}
	inspect := func(ctx context.Context) (ServiceState, error) {
		st, err := m.Status(ctx, spec)
		return ServiceState{Name: service.UnitName(spec.Instance), Installed: st.Installed, Enabled: st.Enabled, Active: st.Running, State: st.State}, err
	}
	trusted := func(s *config.Settings) {
		s.Set(config.KeyNoListen, "true")
		s.SetTrustedServers([]config.TrustedServer{{Thumbprint: strings.Repeat("C", 40), CommunicationStyle: config.StyleTentaclePassive}})
	}
	opts := instance(t, newCert(t), trusted)
	opts.Service = inspect
	expect(t, Run(context.Background(), opts), "service", Fail, "The service Tentacle.service is not installed, so nothing runs the Tentacle.", "tentacle service --instance Tentacle --install --start")

	unit := filepath.Join(unitDir, service.UnitName("Tentacle"))
	if err := os.WriteFile(unit, []byte("[Service]\nExecStart=/bin/true\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := fake.Command(context.Background(), "systemctl", "enable", "Tentacle.service"); err != nil {
		t.Fatal(err)
	}
	expect(t, Run(context.Background(), opts), "service", Fail, "The service Tentacle.service is installed but not running (inactive (dead)).", "tentacle service --instance Tentacle --start (its log says why it stopped: journalctl -u Tentacle.service)")

	if _, err := fake.Command(context.Background(), "systemctl", "start", "Tentacle.service"); err != nil {
		t.Fatal(err)
	}
	expect(t, Run(context.Background(), opts), "service", OK, "The service Tentacle.service is installed, enabled and running.", "")
}

func TestClockSkew(t *testing.T) {
	srv := octopustest.NewServer(t)
	opts, _ := pollingInstance(t, srv, srv.PollingAddress, srv.Thumbprint(), true, nil)
	opts.ServerURL = srv.URL
	opts.Now = func() time.Time { return time.Now().Add(10 * time.Minute) }
	// The Date header has whole seconds, so the figure is the skew give or
	// take a second.
	results := Run(context.Background(), opts)
	expect(t, results, "clock", Fail, "This machine's clock is ", "timedatectl set-ntp true")
	if found := find(t, results, "clock").Found; !strings.Contains(found, " ahead of the server's. Certificates and sign-ins fail with a clock this far off.") ||
		!strings.Contains(found, " is 10m0s ") && !strings.Contains(found, " is 9m59s ") && !strings.Contains(found, " is 10m1s ") {
		t.Errorf("clock: %s", found)
	}

	opts.ServerURL = ""
	expect(t, Run(context.Background(), opts), "clock", Skip, "a TCP polling endpoint sends no Date header", "Pass --server")
}

func TestConfigProblems(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "nope.config")
	results := Run(context.Background(), Options{ConfigPath: missing, Instance: "Tentacle"})
	if len(results) != 1 {
		t.Fatalf("checks ran without a configuration:\n%s", dump(results))
	}
	expect(t, results, "config", Fail, "The configuration file "+missing+" does not exist.", "tentacle create-instance --instance Tentacle")

	opts := instance(t, newCert(t), func(s *config.Settings) { s.Set(config.KeyPortNumber, "ten") })
	expect(t, Run(context.Background(), opts), "config", Fail, `Tentacle.Services.PortNumber in `+opts.ConfigPath+` is "ten", which is not a TCP port.`, "Correct the settings named above")

	opts = instance(t, newCert(t), nil)
	expect(t, Run(context.Background(), opts), "config", Fail, "trusts no Octopus Server", "tentacle configure --instance Tentacle --trust <SERVER-THUMBPRINT>")
}

func TestResultString(t *testing.T) {
	r := Result{Check: "tcp", Server: "https://octopus:10943/", Status: Fail, Found: "x cannot be reached.", Fix: "Open it."}
	if got, want := r.String(), "tcp https://octopus:10943/: x cannot be reached. Fix: Open it."; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

// Healthy is what provision's final health check uses: nil when nothing
// failed, else every failure with its fix.
func TestHealthy(t *testing.T) {
	srv := octopustest.NewServer(t)
	opts, _ := pollingInstance(t, srv, srv.PollingAddress, srv.Thumbprint(), true, nil)
	if err := Healthy(context.Background(), opts); err != nil {
		t.Errorf("a healthy polling Tentacle: %v", err)
	}
	opts, _ = pollingInstance(t, srv, srv.PollingAddress, srv.Thumbprint(), false, nil)
	err := Healthy(context.Background(), opts)
	if err == nil || !strings.Contains(err.Error(), "The Tentacle cannot serve yet (as `tentacle doctor` checks): handshake "+srv.PollingAddress+": The server did not accept this Tentacle's polling connection") {
		t.Errorf("an unregistered polling Tentacle: %v", err)
	}
}

// refused is how this OS words a refused connection to addr ("connection
// refused" on Linux; Windows says it in its own words), as doctor quotes it.
func refused(t *testing.T, addr string) string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err == nil {
		c.Close()
		t.Fatalf("%s accepts connections", addr)
	}
	return netCause(err)
}
