package main

import (
	"context"
	"net"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"strconv"
	"strings"

	"github.com/tentacle-go/tentacle/agent/config"
	"github.com/tentacle-go/tentacle/provision/octopus"
)

// apiFlags are upstream's shared Octopus API options (tentacle-surface §4.1).
type apiFlags struct {
	Server          string `name:"server" help:"The Octopus Server, e.g. https://octopus.example" placeholder:"URL"`
	APIKey          string `name:"apiKey" help:"An API key of a user allowed to register machines" placeholder:"API-KEY" sensitive:""`
	BearerToken     string `name:"bearerToken" help:"A bearer token instead of an API key" placeholder:"TOKEN" sensitive:""`
	Username        string `name:"username" short:"u" aliases:"user" help:"Sign in with this user name (with --password)" placeholder:"USER"`
	Password        string `name:"password" short:"p" help:"The password for --username" placeholder:"PASSWORD" sensitive:""`
	IgnoreSslErrors bool   `name:"ignoreSslErrors" help:"Accept any TLS certificate from the Octopus Server (not recommended)"`
	Space           string `name:"space" help:"The space, by name; default: the user's default space" placeholder:"NAME"`
}

func (a *apiFlags) connect(ctx context.Context, proxy func(*http.Request) (*url.URL, error)) (*octopus.Client, error) {
	if a.Server == "" {
		return nil, config.Userf("Give the Octopus Server with --server https://octopus.example.")
	}
	return octopus.Connect(ctx, octopus.Options{
		Server:             a.Server,
		Credentials:        octopus.Credentials{APIKey: a.APIKey, BearerToken: a.BearerToken, Username: a.Username, Password: a.Password},
		Proxy:              proxy,
		InsecureSkipVerify: a.IgnoreSslErrors,
		Space:              a.Space,
	})
}

// httpProxy turns one of the proxy settings into net/http's proxy policy:
// the configured host, else the environment when "use default" is on, else
// direct (the same model the agent's polling connections use).
func httpProxy(s *config.Settings, keys config.ProxyKeys, mk config.MachineKey) (func(*http.Request) (*url.URL, error), error) {
	p, err := s.Proxy(keys, mk)
	if err != nil {
		return nil, err
	}
	return p.HTTPProxy(), nil
}

// registerFlags are the options register-with and register-worker share.
type registerFlags struct {
	InstanceFlags
	apiFlags
	Name                 string `name:"name" help:"The machine's name on the server; default: this host's name" placeholder:"NAME"`
	Policy               string `name:"policy" help:"The machine policy, by name" placeholder:"NAME"`
	PublicHostName       string `name:"publicHostName" short:"h" help:"Listening: the host name the server dials; default: this host's name" placeholder:"HOST"`
	TentacleCommsPort    string `name:"tentacle-comms-port" help:"Listening: the port the server dials; default: the configured listen port" placeholder:"PORT"`
	Proxy                string `name:"proxy" help:"Listening: a proxy defined on the server, by name, that it uses to reach this Tentacle" placeholder:"NAME"`
	Force                bool   `name:"force" short:"f" help:"Replace a machine with the same name"`
	CommsStyle           string `name:"comms-style" default:"TentaclePassive" help:"TentaclePassive (listening) or TentacleActive (polling)" placeholder:"STYLE"`
	ServerCommsPort      string `name:"server-comms-port" help:"Polling: the server's polling port; default 10943" placeholder:"PORT"`
	ServerCommsAddress   string `name:"server-comms-address" help:"Polling: the polling endpoint, e.g. https://polling.octopus.example:443/ (only host and port are used)" placeholder:"URL"`
	ServerWebSocket      string `name:"server-web-socket" help:"Polling over WebSockets: e.g. wss://octopus.example/OctopusComms" placeholder:"URL"`
	ServerSubscriptionID string `name:"server-subscription-id" help:"Polling: reuse this subscription id (poll://...)" placeholder:"ID"`
	webSocketTrustFlags
}

// webSocketTrustFlags say how to trust a WebSocket endpoint's certificate
// that fails standard validation (register-with, register-worker, poll-server).
type webSocketTrustFlags struct {
	ServerWebSocketThumbprint            string `name:"server-web-socket-thumbprint" help:"WebSocket polling: the thumbprint of the endpoint's HTTPS certificate; it must match, and is trusted even if the certificate does not validate" placeholder:"THUMBPRINT"`
	DangerouslySkipCertificateValidation bool   `name:"dangerously-skip-certificate-validation" help:"WebSocket polling: trust the endpoint's certificate even if it does not validate and nobody confirmed its thumbprint"`
}

// trust decides which thumbprint to pin for a WebSocket endpoint, asking at
// the terminal when its certificate does not validate.
func (f webSocketTrustFlags) trust(e *Env, address string, seen octopus.HandshakeResult) (string, error) {
	expected := ""
	if f.ServerWebSocketThumbprint != "" {
		var err error
		if expected, err = config.NormalizeThumbprint(f.ServerWebSocketThumbprint); err != nil {
			return "", err
		}
	}
	t := octopus.WebSocketTrust{Expected: expected, SkipValidation: f.DangerouslySkipCertificateValidation, Prompt: terminalPrompt{e}, Warn: func(s string) { e.Warnf("%s", s) }}
	return t.Thumbprint(address, seen)
}

// check refuses the options where they mean nothing: without a WebSocket address.
func (f webSocketTrustFlags) check(webSocket string) error {
	if webSocket == "" && (f.ServerWebSocketThumbprint != "" || f.DangerouslySkipCertificateValidation) {
		return config.Userf("--server-web-socket-thumbprint and --dangerously-skip-certificate-validation are for --server-web-socket addresses only; the polling port's certificate is always pinned by the server's thumbprint.")
	}
	return nil
}

// RegisterWithCmd is register-with: a deployment target.
type RegisterWithCmd struct {
	registerFlags
	Environment                     []string `name:"environment" aliases:"env" sep:"none" help:"An environment (name, slug or id); repeatable; required" placeholder:"ENV"`
	Role                            []string `name:"role" short:"r" sep:"none" help:"A role (target tag); repeatable; required" placeholder:"ROLE"`
	Tenant                          []string `name:"tenant" sep:"none" help:"A tenant (name, slug or id); repeatable" placeholder:"TENANT"`
	TenantTag                       []string `name:"tenanttag" sep:"none" help:"A tenant tag, TagSet/Tag; repeatable" placeholder:"TAG"`
	TenantedDeploymentParticipation string   `name:"tenanted-deployment-participation" help:"Untenanted (default), TenantedOrUntenanted or Tenanted" placeholder:"MODE"`
}

// RegisterWorkerCmd is register-worker.
type RegisterWorkerCmd struct {
	registerFlags
	WorkerPool []string `name:"workerpool" sep:"none" help:"A worker pool (name, slug or id); repeatable; required" placeholder:"POOL"`
}

func (c *RegisterWithCmd) Run(e *Env) error {
	return c.register(e, octopus.Registration{
		Kind: octopus.DeploymentTarget, Environments: c.Environment, Roles: c.Role, Tenants: c.Tenant,
		TenantTags: c.TenantTag, TenantedDeploymentParticipation: c.TenantedDeploymentParticipation,
	})
}

func (c *RegisterWorkerCmd) Run(e *Env) error {
	return c.register(e, octopus.Registration{Kind: octopus.Worker, WorkerPools: c.WorkerPool})
}

// register runs the flow of tentacle-surface §4.3 and writes the local
// trust only once the server has accepted the machine.
func (c *registerFlags) register(e *Env, r octopus.Registration) error {
	ctx := context.Background()
	style, ok := config.ParseCommunicationStyle(c.CommsStyle)
	if !ok || (style != config.StyleTentaclePassive && style != config.StyleTentacleActive) {
		return config.Userf("--comms-style %q is not TentaclePassive (listening) or TentacleActive (polling).", c.CommsStyle)
	}
	polling := style == config.StyleTentacleActive
	if polling && c.Proxy != "" {
		return config.Userf("--proxy names a proxy the server uses to reach a listening Tentacle; it cannot be used with --comms-style TentacleActive.")
	}
	if c.ServerWebSocket != "" && c.ServerCommsAddress != "" {
		return config.Userf("--server-web-socket and --server-comms-address cannot be used together.")
	}
	if err := c.webSocketTrustFlags.check(c.ServerWebSocket); err != nil {
		return err
	}
	sel, s, err := c.load(e)
	if err != nil {
		return err
	}
	cert, err := s.Certificate(e.MachineKey())
	if err != nil {
		return err
	}
	if cert == nil {
		return config.Userf("This Tentacle has no certificate yet. Please run the new-certificate command first (tentacle new-certificate --instance %s --if-blank).", sel.Name)
	}
	r.Name = c.Name
	if r.Name == "" {
		r.Name, _ = os.Hostname()
	}
	r.Policy, r.Force = c.Policy, c.Force
	r.Endpoint = octopus.Endpoint{Thumbprint: cert.Thumbprint(), ProxyName: c.Proxy}

	// Listening registrations go through the web proxy, polling ones (and
	// their handshake) through the polling proxy, as upstream after OT#328.
	proxyKeys := config.WebProxyKeys
	if polling {
		proxyKeys = config.PollingProxyKeys
	}
	proxy, err := httpProxy(s, proxyKeys, e.MachineKey())
	if err != nil {
		return err
	}
	var address, wsThumbprint string
	servers, err := s.TrustedServers()
	if err != nil {
		return err
	}
	if polling {
		if address, err = c.pollingAddress(); err != nil {
			return err
		}
		tlsCert := cert.TLS()
		seen, err := octopus.Handshake(ctx, address, octopus.HandshakeOptions{ClientCert: &tlsCert, Proxy: proxy})
		if err != nil {
			return err
		}
		if c.ServerWebSocket != "" {
			if wsThumbprint, err = c.webSocketTrustFlags.trust(e, address, seen); err != nil {
				return err
			}
		}
		sub := c.ServerSubscriptionID
		if sub != "" {
			u, err := url.Parse(sub)
			if err != nil || u.Scheme != "poll" || u.Host == "" {
				return config.Userf("--server-subscription-id %q is not a poll://id/ subscription.", sub)
			}
		} else {
			// Reuse the id this server knows us by (upstream Issues#3477).
			for _, srv := range servers {
				if srv.Address == address && srv.CommunicationStyle == style && srv.SubscriptionID != "" {
					sub = srv.SubscriptionID
				}
			}
		}
		if sub == "" {
			sub = config.NewSubscriptionID()
		}
		r.Endpoint.Subscription = sub
	} else {
		host := c.PublicHostName
		if host == "" {
			host, _ = os.Hostname()
		}
		port, err := s.Port()
		if err != nil {
			return err
		}
		if c.TentacleCommsPort != "" {
			if port, err = parsePort(c.TentacleCommsPort, "--tentacle-comms-port"); err != nil {
				return err
			}
		}
		if port == 0 {
			return config.Userf("This Tentacle listens on any free port (port 0), which changes at every start, so the Octopus Server could not reach it. Give the port the server should use with --tentacle-comms-port, or fix one with `tentacle configure --port 10933`.")
		}
		r.Endpoint.Listening = "https://" + net.JoinHostPort(strings.ToLower(host), strconv.Itoa(port)) + "/"
	}

	client, err := c.connect(ctx, proxy)
	if err != nil {
		return err
	}
	serverThumb := wsThumbprint
	if c.ServerWebSocket == "" {
		if serverThumb, err = client.ServerThumbprint(ctx); err != nil {
			return err
		}
	}
	result, err := client.Register(ctx, r)
	if err != nil {
		return err
	}
	_, err = config.Update(sel.ConfigPath, func(s *config.Settings) error {
		servers, err := s.TrustedServers()
		if err != nil {
			return err
		}
		entry := config.TrustedServer{Thumbprint: serverThumb, CommunicationStyle: style}
		if polling {
			entry.Address, entry.SubscriptionID = address, r.Endpoint.Subscription
			if n, _ := s.PollingConnectionCount(); n == 0 {
				count := 1
				if r.Kind == octopus.Worker {
					count = max(5, runtime.NumCPU())
				}
				s.Set(config.KeyPollingConnectionCount, strconv.Itoa(count))
			}
		}
		s.SetTrustedServers(config.AddOrUpdateServer(servers, entry))
		return nil
	})
	if err != nil {
		return err
	}
	what := "Machine"
	if r.Kind == octopus.Worker {
		what = "Worker"
	}
	if result.Replaced {
		e.Infof("%s %s (%s) replaced on %s.", what, r.Name, result.ID, c.Server)
	}
	e.Infof("%s registered successfully", what)
	if polling {
		e.Infof("It polls %s as %s; the Tentacle trusts the server's thumbprint %s.", address, r.Endpoint.Subscription, serverThumb)
	} else {
		e.Infof("The server reaches it at %s; the Tentacle trusts the server's thumbprint %s.", r.Endpoint.Listening, serverThumb)
	}
	reportChanged(e, sel, true)
	return nil
}

// pollingAddress is the polling endpoint: --server-web-socket, or
// --server-comms-address, or the --server host on the polling port.
func (c *registerFlags) pollingAddress() (string, error) {
	commsAddress := c.ServerCommsAddress
	if commsAddress == "" && c.ServerWebSocket == "" {
		u, err := url.Parse(c.Server)
		if err != nil || u.Hostname() == "" {
			return "", config.Userf("--server %q is not an address like https://octopus.example.", c.Server)
		}
		commsAddress = "https://" + u.Hostname()
	}
	return pollingAddress(commsAddress, c.ServerCommsPort, c.ServerWebSocket)
}

// DeregisterFromCmd is deregister-from.
type DeregisterFromCmd struct{ deregisterFlags }

// DeregisterWorkerCmd is deregister-worker.
type DeregisterWorkerCmd struct{ deregisterFlags }

type deregisterFlags struct {
	InstanceFlags
	apiFlags
	Multiple bool `name:"multiple" short:"m" help:"Remove every machine with this Tentacle's thumbprint (cloned machines share one)"`
}

func (c *DeregisterFromCmd) Run(e *Env) error   { return c.deregister(e, octopus.DeploymentTarget) }
func (c *DeregisterWorkerCmd) Run(e *Env) error { return c.deregister(e, octopus.Worker) }

func (c *deregisterFlags) deregister(e *Env, kind octopus.Kind) error {
	ctx := context.Background()
	_, s, err := c.load(e)
	if err != nil {
		return err
	}
	thumb := s.Thumbprint()
	if thumb == "" {
		return config.Userf("This Tentacle has no certificate, so it cannot have been registered.")
	}
	proxy, err := httpProxy(s, config.PollingProxyKeys, e.MachineKey())
	if err != nil {
		return err
	}
	client, err := c.connect(ctx, proxy)
	if err != nil {
		return err
	}
	removed, err := client.Deregister(ctx, kind, thumb, c.Multiple)
	if err != nil {
		return err
	}
	for _, m := range removed {
		e.Infof("Deleted %s (%s) from %s.", m.Name, m.ID, c.Server)
	}
	if serverThumb, err := client.ServerThumbprint(ctx); err == nil {
		e.Infof("This Tentacle still trusts the server (thumbprint %s). Remove that with `tentacle configure --remove-trust %s` if it should no longer accept it.", serverThumb, serverThumb)
	}
	return nil
}
