package plan

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"runtime"
	"strconv"
	"strings"

	"github.com/tentacle-go/tentacle/agent/config"
	"github.com/tentacle-go/tentacle/provision/octopus"
)

// planRegistration compares the server's record of this Tentacle, and the
// local trust of the server, with the declaration. Everything is read (and
// every name resolved) before anything is written, so a wrong API key, an
// unknown environment or an unreachable server stop here with nothing done.
func (r *run) planRegistration(ctx context.Context, in *Instance, p instancePaths) (*planned, error) {
	reg := in.Registration
	out := &planned{}
	s, err := r.loadSettings(p.config)
	if err != nil {
		return nil, err
	}
	mk := r.machineKey()
	cert, err := s.Certificate(mk)
	if err != nil {
		return nil, err
	}
	if cert == nil {
		if r.opts.DryRun {
			out.add(fmt.Sprintf("register with %s once the certificate exists", reg.Server), nil)
			return out, nil
		}
		return nil, config.Userf("Instance %s has no certificate, so it cannot register; the certificate step should have made one.", p.name)
	}
	polling := in.IsPolling()
	style := config.StyleTentaclePassive
	proxyKeys := config.WebProxyKeys
	if polling {
		style, proxyKeys = config.StyleTentacleActive, config.PollingProxyKeys
	}
	proxySettings, err := s.Proxy(proxyKeys, mk)
	if err != nil {
		return nil, err
	}
	proxy := proxySettings.HTTPProxy()
	creds := octopus.Credentials{APIKey: string(reg.APIKey), BearerToken: string(reg.BearerToken), Username: reg.Username, Password: string(reg.Password)}
	if reg.APIKeyFile != "" {
		data, err := os.ReadFile(reg.APIKeyFile)
		if err != nil {
			return nil, config.Userf("Cannot read the API key file %s: %v. Fix registration.api-key-file.", reg.APIKeyFile, errors.Unwrap(err))
		}
		creds.APIKey = strings.TrimSpace(string(data))
	}

	name := reg.Name
	if name == "" {
		name, _ = os.Hostname()
	}
	kind := octopus.DeploymentTarget
	if reg.As == AsWorker {
		kind = octopus.Worker
	}
	want := octopus.Registration{
		Kind: kind, Name: name, Policy: reg.Policy, Force: reg.Force,
		Environments: reg.Environments, Roles: reg.Roles, Tenants: reg.Tenants, TenantTags: reg.TenantTags,
		TenantedDeploymentParticipation: reg.TenantedDeploymentParticipation, WorkerPools: reg.WorkerPools,
		Endpoint: octopus.Endpoint{Thumbprint: cert.Thumbprint(), ProxyName: reg.ServerProxy},
	}
	servers, err := s.TrustedServers()
	if err != nil {
		return nil, err
	}
	var address string
	if polling {
		if address, err = pollingAddress(reg); err != nil {
			return nil, err
		}
		tlsCert := cert.TLS()
		if _, err := octopus.Handshake(ctx, address, octopus.HandshakeOptions{ClientCert: &tlsCert, Proxy: proxy}); err != nil {
			return nil, err
		}
		// Reuse the id this server knows us by (upstream Issues#3477).
		for _, srv := range servers {
			if srv.Address == address && srv.CommunicationStyle == style && srv.SubscriptionID != "" {
				want.Endpoint.Subscription = srv.SubscriptionID
			}
		}
		if want.Endpoint.Subscription == "" {
			want.Endpoint.Subscription = config.NewSubscriptionID()
		}
	} else {
		host := reg.PublicHostName
		if host == "" {
			host, _ = os.Hostname()
		}
		port := listenPort(in)
		if reg.TentacleCommsPort != 0 {
			port = reg.TentacleCommsPort
		}
		want.Endpoint.Listening = "https://" + net.JoinHostPort(strings.ToLower(host), strconv.Itoa(port)) + "/"
	}

	client, err := octopus.Connect(ctx, octopus.Options{Server: reg.Server, Credentials: creds, Proxy: proxy, InsecureSkipVerify: reg.IgnoreSSLErrors, Space: reg.Space})
	if err != nil {
		return nil, err
	}
	serverThumb, err := client.ServerThumbprint(ctx)
	if err != nil {
		return nil, err
	}
	drift, err := client.Compare(ctx, want)
	if err != nil {
		return nil, err
	}
	noun := "deployment target"
	if kind == octopus.Worker {
		noun = "worker"
	}
	switch {
	case drift.ID == "":
		out.add(fmt.Sprintf("register %s %s on %s (%s)", noun, name, reg.Server, endpointOf(want)), func(ctx context.Context) error {
			_, err := client.Save(ctx, want, "")
			return err
		})
	case len(drift.Differences) > 0:
		out.add(fmt.Sprintf("update %s %s (%s) on %s: %s", noun, name, drift.ID, reg.Server, strings.Join(drift.Differences, "; ")), func(ctx context.Context) error {
			_, err := client.Save(ctx, want, drift.ID)
			return err
		})
	}

	entry := config.TrustedServer{Thumbprint: serverThumb, CommunicationStyle: style}
	if polling {
		entry.Address, entry.SubscriptionID = address, want.Endpoint.Subscription
	}
	trustEdit := func(s *config.Settings) error {
		servers, err := s.TrustedServers()
		if err != nil {
			return err
		}
		s.SetTrustedServers(config.AddOrUpdateServer(servers, entry))
		if polling {
			if n, _ := s.PollingConnectionCount(); n == 0 {
				count := 1
				if kind == octopus.Worker {
					count = max(5, runtime.NumCPU())
				}
				s.Set(config.KeyPollingConnectionCount, strconv.Itoa(count))
			}
		}
		return nil
	}
	// The server is written first: trust is only recorded for a server
	// that accepted the machine, as register-with does.
	before := len(out.changes)
	if err := r.planSettings(out, p.config, trustEdit); err != nil {
		return nil, err
	}
	if len(out.changes) > before {
		out.changes[len(out.changes)-1].what = fmt.Sprintf("trust the server's certificate %s in %s", serverThumb, p.config)
	}
	return out, nil
}

// endpointOf says how the server reaches the Tentacle.
func endpointOf(r octopus.Registration) string {
	if r.Endpoint.Subscription != "" {
		return "polling as " + r.Endpoint.Subscription
	}
	return "listening at " + r.Endpoint.Listening
}

// pollingAddress is server-comms-address, else the server's host, on
// server-comms-port (default 10943) unless the address has a port.
func pollingAddress(reg *Registration) (string, error) {
	raw := reg.ServerCommsAddress
	if raw == "" {
		u, err := url.Parse(reg.Server)
		if err != nil || u.Hostname() == "" {
			return "", config.Userf("registration.server %q is not an address like https://octopus.example.", reg.Server)
		}
		raw = "https://" + u.Hostname()
	}
	if !strings.Contains(raw, "://") {
		raw = "https://" + raw
	}
	u, err := url.Parse(raw)
	if err != nil || u.Hostname() == "" {
		return "", config.Userf("registration.server-comms-address %q is not an address like https://octopus.example:10943/.", reg.ServerCommsAddress)
	}
	port := u.Port()
	if reg.ServerCommsPort != 0 {
		port = strconv.Itoa(reg.ServerCommsPort)
	}
	if port == "" {
		port = strconv.Itoa(config.DefaultPollingPort)
	}
	return config.NormalizeServerAddress("https://" + net.JoinHostPort(u.Hostname(), port) + "/")
}
