package doctor

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/tentacle-go/tentacle/agent/config"
	"github.com/tentacle-go/tentacle/agent/halibut"
)

// checkServers runs the per-server checks for every trusted server, side by
// side, and returns their results in the configuration's order.
func checkServers(ctx context.Context, o *Options, s *config.Settings, cert *config.Certificate) []Result {
	servers, _ := s.TrustedServers()
	proxy, proxyDesc := pollingProxy(o, s)
	results := make([][]Result, len(servers))
	var wg sync.WaitGroup
	for i, ts := range servers {
		if !ts.Polling() || ts.Address == "" {
			results[i] = []Result{{Check: "server", Server: ts.Thumbprint, Status: OK,
				Found: fmt.Sprintf("Server %s connects to this Tentacle (listening); there is nothing to dial from here, so the port and firewall checks above are what matter.", ts.Thumbprint)}}
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			sc := serverCheck{o: o, server: ts, cert: cert, proxy: proxy, proxyDesc: proxyDesc, subscription: ts.SubscriptionID}
			results[i] = sc.run(ctx)
		}()
	}
	wg.Wait()
	var out []Result
	for _, r := range results {
		out = append(out, r...)
	}
	return out
}

// pollingProxy is the proxy polling connections use, as the agent picks it:
// the configured polling proxy, else the environment's when "use the
// default proxy" is on, else none.
func pollingProxy(o *Options, s *config.Settings) (halibut.ProxyFunc, string) {
	p, err := s.Proxy(config.PollingProxyKeys, o.MachineKey)
	if err != nil {
		return nil, ""
	}
	if u := p.URL(); u != nil {
		return halibut.FixedProxy(u), "the polling proxy " + u.Redacted()
	}
	if p.UseDefault {
		return halibut.EnvironmentProxy, "the system proxy (HTTPS_PROXY/NO_PROXY), if one applies"
	}
	return nil, ""
}

type serverCheck struct {
	o            *Options
	server       config.TrustedServer
	cert         *config.Certificate
	proxy        halibut.ProxyFunc
	proxyDesc    string
	subscription string
}

func (c *serverCheck) result(check string, st Status, found, fix string) Result {
	return Result{Check: check, Server: c.server.Address, Status: st, Found: found, Fix: fix}
}

// skipRest marks the checks after a failed one as not run.
func (c *serverCheck) skipRest(out []Result, failed string, rest ...string) []Result {
	for _, name := range rest {
		out = append(out, c.result(name, Skip, "Not tried: the "+failed+" check failed.", ""))
	}
	return out
}

// proxyFor is the proxy for addr, or nil.
func (c *serverCheck) proxyFor(addr string) *url.URL {
	if c.proxy == nil {
		return nil
	}
	u, err := c.proxy(addr)
	if err != nil {
		return nil
	}
	return u
}

func (c *serverCheck) run(ctx context.Context) []Result {
	u, err := url.Parse(c.server.Address)
	if err != nil || u.Host == "" {
		return []Result{c.result("dns", Fail, fmt.Sprintf("The server address %q is not a URL.", c.server.Address),
			"Set it again: "+c.o.fixCmd("poll-server", "--server", "https://your-octopus", "--apiKey", "API-..."))}
	}
	host, port := u.Hostname(), u.Port()
	if port == "" {
		port = "443"
	}
	addr := net.JoinHostPort(host, port)
	var out []Result
	rest := []string{"tcp", "tls", "thumbprint", "handshake", "clock"}

	// DNS: the proxy resolves the name when one is used.
	viaProxy := c.proxyFor(addr)
	switch {
	case viaProxy != nil:
		out = append(out, c.result("dns", OK, fmt.Sprintf("%s is resolved by %s.", host, c.proxyDesc), ""))
	case net.ParseIP(host) != nil:
		out = append(out, c.result("dns", OK, fmt.Sprintf("%s is an IP address; nothing to resolve.", host), ""))
	default:
		lctx, cancel := context.WithTimeout(ctx, StepTimeout)
		addrs, err := net.DefaultResolver.LookupHost(lctx, host)
		cancel()
		if err != nil {
			out = append(out, c.result("dns", Fail, fmt.Sprintf("%s cannot be resolved: %v.", host, err),
				"Check the name in the server address and this machine's DNS (resolvectl query "+host+")."))
			return c.skipRest(out, "dns", rest...)
		}
		out = append(out, c.result("dns", OK, fmt.Sprintf("%s resolves to %s.", host, strings.Join(addrs, ", ")), ""))
	}
	rest = rest[1:]

	// TCP, through the proxy when one is set.
	lim := halibut.DefaultLimits()
	lim.ConnectTimeout, lim.SendTimeout, lim.ReceiveTimeout = StepTimeout, StepTimeout, StepTimeout
	dctx, cancel := context.WithTimeout(ctx, StepTimeout)
	raw, err := halibut.Dial(dctx, addr, c.proxy, lim)
	cancel()
	if err != nil {
		if viaProxy != nil {
			out = append(out, c.result("tcp", Fail, fmt.Sprintf("%s cannot be reached through %s: %v.", addr, c.proxyDesc, err),
				fmt.Sprintf("Have the proxy allow CONNECT to %s, or correct the proxy settings: %s.", addr, c.o.fixCmd("polling-proxy", "--proxyEnable", "True", "--proxyHost", "<HOST>", "--proxyPort", "<PORT>"))))
		} else {
			out = append(out, c.result("tcp", Fail, fmt.Sprintf("%s cannot be reached: %s.", addr, netCause(err)),
				fmt.Sprintf("Check that the Octopus Server listens for polling Tentacles on port %s and that no firewall between here and there blocks it; if this network needs a proxy, set it with %s.", port, c.o.fixCmd("polling-proxy", "--proxyEnable", "True", "--proxyHost", "<HOST>"))))
		}
		return c.skipRest(out, "tcp", rest...)
	}
	how := "directly"
	if viaProxy != nil {
		how = "through " + c.proxyDesc
	}
	out = append(out, c.result("tcp", OK, fmt.Sprintf("%s accepts connections (%s).", addr, how), ""))
	rest = rest[1:]

	// TLS: learn which certificate the server presents.
	presented, err := c.tlsHandshake(ctx, raw, host)
	if err != nil {
		out = append(out, c.result("tls", Fail, fmt.Sprintf("The TLS handshake with %s failed: %v.", addr, err),
			"Check that the address is the server's polling endpoint (port 10943 by default, or its WebSocket URL) and not its web port behind something that ends TLS differently."))
		return c.skipRest(out, "tls", rest...)
	}
	out = append(out, c.result("tls", OK, fmt.Sprintf("TLS with %s works; the server presented certificate %s.", addr, presented), ""))
	rest = rest[1:]

	// Thumbprint: the one presented against the one trusted, both ways.
	ours := "(none: this Tentacle has no certificate)"
	if c.cert != nil {
		ours = c.cert.Thumbprint()
	}
	if !strings.EqualFold(presented, c.server.Thumbprint) {
		out = append(out, c.result("thumbprint", Fail,
			fmt.Sprintf("The server presented certificate %s, but this Tentacle trusts %s for it, so every connection is refused. The server, for its part, must trust this Tentacle's thumbprint %s.", presented, c.server.Thumbprint, ours),
			fmt.Sprintf("If %s is your Octopus Server's certificate (Configuration > Thumbprint), trust it: %s.", presented, c.o.fixCmd("update-trust", "--oldThumbprint", c.server.Thumbprint, "--newThumbprint", presented))))
		return c.skipRest(out, "thumbprint", rest...)
	}
	out = append(out, c.result("thumbprint", OK, fmt.Sprintf("The server's certificate %s is the trusted one. The server must trust this Tentacle's thumbprint %s.", presented, ours), ""))
	rest = rest[1:]

	// The polling handshake: identify with the subscription id.
	if c.cert == nil {
		out = append(out, c.result("handshake", Skip, "Not tried: this Tentacle has no certificate.", c.o.fixCmd("new-certificate", "--if-blank")))
	} else {
		tc := c.cert.TLS()
		p := &halibut.Poller{Certificate: &tc, Limits: lim, ServerAddress: c.server.Address, ServerThumbprint: c.server.Thumbprint, SubscriptionID: c.subscription, Proxy: c.proxy}
		pctx, cancel := context.WithTimeout(ctx, 2*StepTimeout)
		err := p.Probe(pctx)
		cancel()
		if err != nil {
			out = append(out, c.result("handshake", Fail,
				fmt.Sprintf("The server did not accept this Tentacle's polling connection (%v): it does not know thumbprint %s with subscription %s.", err, ours, c.subscription),
				"Register this Tentacle with the server ("+c.o.fixCmd("register-with", "--server", "https://your-octopus", "--apiKey", "API-...", "--comms-style", "TentacleActive")+"), or update the machine's thumbprint in Octopus to "+ours+"."))
		} else {
			out = append(out, c.result("handshake", OK, fmt.Sprintf("The server accepted a polling connection for %s.", c.subscription), ""))
		}
	}

	out = append(out, c.checkClock(ctx, u))
	return out
}

// tlsHandshake runs TLS over raw presenting this Tentacle's certificate and
// returns the thumbprint of the certificate the server presented. Any
// certificate is accepted here: the thumbprint check judges it.
func (c *serverCheck) tlsHandshake(ctx context.Context, raw net.Conn, host string) (string, error) {
	cfg := &tls.Config{
		InsecureSkipVerify: true, // learned here, compared with the trusted thumbprint next
		ServerName:         host,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			if c.cert == nil {
				return &tls.Certificate{}, nil
			}
			tc := c.cert.TLS()
			return &tc, nil
		},
	}
	tc := tls.Client(raw, cfg)
	defer tc.Close()
	hctx, cancel := context.WithTimeout(ctx, StepTimeout)
	defer cancel()
	if err := tc.HandshakeContext(hctx); err != nil {
		return "", err
	}
	certs := tc.ConnectionState().PeerCertificates
	if len(certs) == 0 {
		return "", errors.New("the server presented no certificate")
	}
	return config.Thumbprint(certs[0]), nil
}

// checkClock compares this machine's clock with a Date header from the
// server: its web address when known, else a WebSocket endpoint's answer.
func (c *serverCheck) checkClock(ctx context.Context, polling *url.URL) Result {
	target := c.o.ServerURL
	if target == "" {
		if polling.Scheme != "wss" {
			return c.result("clock", Skip, "Not checked: a TCP polling endpoint sends no Date header.", "Pass --server with the Octopus Server's web address to compare clocks.")
		}
		u := *polling
		u.Scheme = "https"
		target = u.String()
	}
	tr := &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, // only the Date header is read
		Proxy: func(r *http.Request) (*url.URL, error) {
			if c.proxy == nil {
				return nil, nil
			}
			return c.proxy(r.URL.Host)
		},
	}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: StepTimeout}
	cctx, cancel := context.WithTimeout(ctx, StepTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(cctx, http.MethodGet, target, nil)
	if err != nil {
		return c.result("clock", Skip, fmt.Sprintf("Not checked: %q is not a URL.", target), "")
	}
	before := c.o.now()
	resp, err := client.Do(req)
	if err != nil {
		return c.result("clock", Skip, fmt.Sprintf("Not checked: %s did not answer (%v).", target, err), "")
	}
	resp.Body.Close()
	after := c.o.now()
	date, err := http.ParseTime(resp.Header.Get("Date"))
	if err != nil {
		return c.result("clock", Skip, fmt.Sprintf("Not checked: %s sent no usable Date header.", target), "")
	}
	// The Date header has whole seconds (truncated): the server's time was
	// somewhere in that second, half a second later on average.
	local := before.Add(after.Sub(before) / 2)
	skew := local.Sub(date.Add(500 * time.Millisecond))
	abs := skew
	if abs < 0 {
		abs = -abs
	}
	found := fmt.Sprintf("This machine's clock is %s %s the server's.", abs.Round(time.Second), aheadBehind(skew))
	switch {
	case abs >= ClockSkewFailure:
		return c.result("clock", Fail, found+" Certificates and sign-ins fail with a clock this far off.", "Turn on time synchronisation: timedatectl set-ntp true (Windows: w32tm /resync).")
	case abs >= ClockSkewWarning:
		return c.result("clock", Warn, found, "Turn on time synchronisation: timedatectl set-ntp true (Windows: w32tm /resync).")
	}
	return c.result("clock", OK, fmt.Sprintf("This machine's clock agrees with the server's (within %s).", ClockSkewWarning), "")
}

func aheadBehind(skew time.Duration) string {
	if skew > 0 {
		return "ahead of"
	}
	return "behind"
}
