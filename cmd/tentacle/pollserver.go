package main

import (
	"context"
	"net"
	"net/url"
	"strconv"
	"strings"

	"github.com/tentacle-go/tentacle/agent/config"
	"github.com/tentacle-go/tentacle/provision/octopus"
)

// PollServerCmd is upstream's poll-server: add an Octopus Server for this
// Tentacle to poll. The server's thumbprint comes from --thumbprint or, with
// --reuse-server-thumbprint, from the server already trusted.
type PollServerCmd struct {
	InstanceFlags
	apiFlags
	ServerCommsAddress                   string `name:"server-comms-address" help:"The address of the Octopus Server's polling endpoint, e.g. https://octopus.example:10943/ (only host and port are used)" placeholder:"URL"`
	ServerCommsPort                      string `name:"server-comms-port" help:"The polling port of the Octopus Server; default 10943, wins over a port in --server-comms-address" placeholder:"PORT"`
	ServerWebSocket                      string `name:"server-web-socket" help:"Poll over WebSockets at this address, e.g. wss://octopus.example/OctopusComms" placeholder:"URL"`
	ReuseServerThumbprint                bool   `name:"reuse-server-thumbprint" help:"Trust the new address with the thumbprint (and subscription id) of the server already trusted"`
	Thumbprint                           string `name:"thumbprint" aliases:"server-web-socket-thumbprint" help:"The Octopus Server's certificate thumbprint (for a WebSocket address: the thumbprint of its HTTPS certificate, pinned without a probe)" placeholder:"THUMBPRINT"`
	DangerouslySkipCertificateValidation bool   `name:"dangerously-skip-certificate-validation" help:"WebSocket polling with --server: trust the endpoint's certificate even if it does not validate and nobody confirmed its thumbprint"`
}

func (c *PollServerCmd) Run(e *Env) error {
	address, err := c.address()
	if err != nil {
		return err
	}
	if c.DangerouslySkipCertificateValidation && c.ServerWebSocket == "" {
		return config.Userf("--dangerously-skip-certificate-validation is for --server-web-socket addresses only; the polling port's certificate is always pinned by the server's thumbprint.")
	}
	var thumb string
	if c.Thumbprint != "" {
		if thumb, err = config.NormalizeThumbprint(c.Thumbprint); err != nil {
			return err
		}
	} else if c.Server != "" {
		if thumb, err = c.serverThumbprint(e, address); err != nil {
			return err
		}
	}
	return c.update(e, func(s *config.Settings) error {
		servers, err := s.TrustedServers()
		if err != nil {
			return err
		}
		if thumb == "" {
			if !c.ReuseServerThumbprint || len(servers) == 0 {
				return config.Userf("Say how to know the Octopus Server: --server with --apiKey (its thumbprint is looked up), --thumbprint, or --reuse-server-thumbprint to reuse the one already trusted.")
			}
			thumb = servers[0].Thumbprint
		}
		entry := config.TrustedServer{Thumbprint: thumb, CommunicationStyle: config.StyleTentacleActive, Address: address}
		// The same address already polled: another certificate of the same
		// server (trusting its next one ahead of a rotation) keeps the id.
		for _, srv := range servers {
			if srv.Polling() && srv.Address == address && srv.SubscriptionID != "" {
				entry.SubscriptionID = srv.SubscriptionID
			}
		}
		for _, srv := range servers {
			if entry.SubscriptionID != "" {
				break
			}
			if strings.EqualFold(srv.Thumbprint, thumb) && srv.SubscriptionID != "" && (srv.Polling() || c.ReuseServerThumbprint) {
				entry.SubscriptionID = srv.SubscriptionID // the server knows us by this id
				break
			}
		}
		if entry.SubscriptionID == "" {
			entry.SubscriptionID = config.NewSubscriptionID()
		}
		if s.SetTrustedServers(config.AddOrUpdateServer(servers, entry)) {
			e.Infof("Tentacle will poll %s (thumbprint %s) as %s", address, thumb, entry.SubscriptionID)
		}
		return nil
	})
}

// address is the polling address the options name.
func (c *PollServerCmd) address() (string, error) {
	return pollingAddress(c.ServerCommsAddress, c.ServerCommsPort, c.ServerWebSocket)
}

// pollingAddress is https://host:port/ from a comms address (the scheme
// forced, the path dropped, as upstream; the port option wins, 10943 by
// default), or the normalised wss:// address: exactly one must be given.
// poll-server and register-with share it.
func pollingAddress(commsAddress, commsPort, webSocket string) (string, error) {
	if (commsAddress == "") == (webSocket == "") {
		return "", config.Userf("Give exactly one of --server-comms-address (e.g. https://octopus.example:10943/) and --server-web-socket (e.g. wss://octopus.example/OctopusComms).")
	}
	if webSocket != "" {
		return webSocketAddress(webSocket, "--server-web-socket")
	}
	raw := commsAddress
	if !strings.Contains(raw, "://") {
		raw = "https://" + raw
	}
	u, err := url.Parse(raw)
	if err != nil || u.Hostname() == "" {
		return "", config.Userf("--server-comms-address %q is not an address like https://octopus.example:10943/.", commsAddress)
	}
	port := u.Port()
	if commsPort != "" {
		p, err := parsePort(commsPort, "--server-comms-port")
		if err != nil {
			return "", err
		}
		port = strconv.Itoa(p)
	}
	if port == "" {
		port = strconv.Itoa(config.DefaultPollingPort)
	}
	return config.NormalizeServerAddress("https://" + net.JoinHostPort(u.Hostname(), port) + "/")
}

// webSocketAddress normalises a WebSocket polling address: https:// is
// taken as wss://, anything else is refused, as upstream.
func webSocketAddress(raw, flag string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "", config.Userf("%s %q is not a URL like wss://octopus.example/OctopusComms.", flag, raw)
	}
	switch strings.ToLower(u.Scheme) {
	case "https", "wss":
		u.Scheme = "wss"
	default:
		return "", config.Userf("The websocket address must start with wss://")
	}
	return config.NormalizeServerAddress(u.String())
}

// serverThumbprint asks the Octopus Server (through the polling proxy) for
// its certificate thumbprint; for a WebSocket address it is the thumbprint
// of the HTTPS certificate the handshake sees, as upstream.
func (c *PollServerCmd) serverThumbprint(e *Env, address string) (string, error) {
	ctx := context.Background()
	_, s, err := c.load(e)
	if err != nil {
		return "", err
	}
	proxy, err := httpProxy(s, config.PollingProxyKeys, e.MachineKey())
	if err != nil {
		return "", err
	}
	if strings.HasPrefix(address, "wss://") {
		seen, err := octopus.Handshake(ctx, address, octopus.HandshakeOptions{Proxy: proxy})
		if err != nil {
			return "", err
		}
		return webSocketTrustFlags{DangerouslySkipCertificateValidation: c.DangerouslySkipCertificateValidation}.trust(e, address, seen)
	}
	client, err := c.connect(ctx, proxy)
	if err != nil {
		return "", err
	}
	return client.ServerThumbprint(ctx)
}
