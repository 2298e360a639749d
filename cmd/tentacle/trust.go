package main

import (
	"net"
	"strconv"
	"strings"

	"github.com/tentacle-go/tentacle/agent/config"
)

// UpdateTrustCmd is upstream's update-trust: rotate a server thumbprint in
// every entry, listening or polling.
type UpdateTrustCmd struct {
	InstanceFlags
	OldThumbprint string `name:"oldThumbprint" help:"The thumbprint of the old Octopus Server to be replaced" placeholder:"THUMBPRINT"`
	NewThumbprint string `name:"newThumbprint" help:"The thumbprint of the new Octopus Server" placeholder:"THUMBPRINT"`
}

func (c *UpdateTrustCmd) Run(e *Env) error {
	if strings.TrimSpace(c.OldThumbprint) == "" {
		return config.Userf("Please specify a thumbprint to replace, e.g., --oldThumbprint=VALUE")
	}
	if strings.TrimSpace(c.NewThumbprint) == "" {
		return config.Userf("Please specify a new thumbprint to trust, e.g., --newThumbprint=VALUE")
	}
	oldT, err := config.NormalizeThumbprint(c.OldThumbprint)
	if err != nil {
		return err
	}
	newT, err := config.NormalizeThumbprint(c.NewThumbprint)
	if err != nil {
		return err
	}
	return c.update(e, func(s *config.Settings) error {
		servers, err := s.TrustedServers()
		if err != nil {
			return err
		}
		matched, alreadyNew := 0, 0
		for i := range servers {
			switch {
			case strings.EqualFold(servers[i].Thumbprint, oldT):
				servers[i].Thumbprint = newT
				matched++
			case strings.EqualFold(servers[i].Thumbprint, newT):
				alreadyNew++
			}
		}
		if matched == 0 {
			if alreadyNew > 0 {
				e.Infof("The Octopus Server thumbprint is already %s.", newT)
				return nil
			}
			return config.Userf("No trusted Octopus Server has the thumbprint %s, so nothing was updated. Trusted thumbprints: %s.", oldT, trustedList(servers))
		}
		e.Infof("Updating Octopus servers thumbprint from %s to %s", oldT, newT)
		s.SetTrustedServers(servers)
		return nil
	})
}

func trustedList(servers []config.TrustedServer) string {
	var ts []string
	for _, s := range servers {
		if !containsFold(ts, s.Thumbprint) {
			ts = append(ts, s.Thumbprint)
		}
	}
	if len(ts) == 0 {
		return "(none)"
	}
	return strings.Join(ts, ", ")
}

// ClearTrustedServersCmd is upstream's clear-trusted-servers.
type ClearTrustedServersCmd struct {
	InstanceFlags
	Keep string `name:"keep" help:"A comma separated list of Server Comms Addresses to keep as trusted servers" placeholder:"ADDRESSES"`
}

func (c *ClearTrustedServersCmd) Run(e *Env) error {
	var keep []string
	for _, a := range strings.Split(c.Keep, ",") {
		if a = strings.TrimSpace(a); a == "" {
			continue
		}
		// http:// addresses are stored as https:// by registration; match that.
		if strings.HasPrefix(strings.ToLower(a), "http://") {
			a = "https://" + a[len("http://"):]
		}
		n, err := config.NormalizeServerAddress(a)
		if err != nil {
			return err
		}
		keep = append(keep, n)
	}
	return c.update(e, func(s *config.Settings) error {
		servers, err := s.TrustedServers()
		if err != nil && len(keep) > 0 {
			return err
		}
		var kept []config.TrustedServer
		for _, srv := range servers {
			if srv.Address == "" {
				continue
			}
			if n, err := config.NormalizeServerAddress(srv.Address); err == nil && containsFold(keep, n) {
				kept = append(kept, srv)
			}
		}
		e.Infof("Removing %d trusted Octopus Servers; keeping %d.", len(servers)-len(kept), len(kept))
		if err != nil { // corrupt value and nothing to keep: reset it
			s.Set(config.KeyTrustedServers, "[]")
			return nil
		}
		s.SetTrustedServers(kept)
		return nil
	})
}

// ServerCommsCmd is upstream's server-comms: switch an already trusted
// server between listening and polling.
type ServerCommsCmd struct {
	InstanceFlags
	Thumbprint string `name:"thumbprint" help:"The thumbprint of the Octopus Server to configure communication with; if only one Octopus Server is configured, this may be omitted" placeholder:"THUMBPRINT"`
	Style      string `name:"style" help:"The communication style to use with the Octopus Server - either TentacleActive or TentaclePassive" placeholder:"STYLE"`
	Host       string `name:"host" help:"When using active communication, the host name of the Octopus Server" placeholder:"HOST"`
	Port       string `name:"port" help:"When using active communication, the communications port of the Octopus Server; the default is 10943" placeholder:"PORT"`
	WebSocket  string `name:"web-socket" help:"When using active communication over websockets, the address of the Octopus Server, eg 'wss://example.com/OctopusComms'" placeholder:"URL"`
}

func (c *ServerCommsCmd) Run(e *Env) error {
	style, ok := config.ParseCommunicationStyle(c.Style)
	if !ok || (style != config.StyleTentacleActive && style != config.StyleTentaclePassive) {
		return config.Userf("Please specify a valid communications style, e.g. --style=TentaclePassive")
	}
	var address string
	if style == config.StyleTentacleActive {
		a, err := c.activeAddress()
		if err != nil {
			return err
		}
		address = a
	}
	return c.update(e, func(s *config.Settings) error {
		servers, err := s.TrustedServers()
		if err != nil {
			return err
		}
		if len(servers) == 0 {
			return config.Userf("Before server communications can be modified, trust must be established with the configure command")
		}
		thumb := c.Thumbprint
		if strings.TrimSpace(thumb) == "" {
			var distinct []string
			for _, srv := range servers {
				if !containsFold(distinct, srv.Thumbprint) {
					distinct = append(distinct, srv.Thumbprint)
				}
			}
			if len(distinct) != 1 {
				return config.Userf("More than one server is trusted; please provide the thumbprint of the server to configure, e.g. --thumbprint=...")
			}
			thumb = distinct[0]
		} else if thumb, err = config.NormalizeThumbprint(thumb); err != nil {
			return err
		}
		var mine []int
		for i, srv := range servers {
			if strings.EqualFold(srv.Thumbprint, thumb) {
				mine = append(mine, i)
			}
		}
		if len(mine) == 0 {
			return config.Userf("No trusted server was found with the supplied thumbprint. Trusted thumbprints: %s.", trustedList(servers))
		}
		pick := func(match func(config.TrustedServer) bool) *config.TrustedServer {
			for _, i := range mine {
				if match(servers[i]) {
					srv := servers[i]
					return &srv
				}
			}
			return nil
		}
		var srv *config.TrustedServer
		if style == config.StyleTentaclePassive {
			if srv = pick(func(t config.TrustedServer) bool { return t.Address == "" }); srv == nil {
				srv = &config.TrustedServer{Thumbprint: servers[mine[0]].Thumbprint}
			}
		} else {
			if srv = pick(func(t config.TrustedServer) bool { return t.Address == address }); srv == nil {
				if srv = pick(func(t config.TrustedServer) bool { return t.CommunicationStyle == config.StyleNone }); srv == nil {
					srv = &config.TrustedServer{Thumbprint: servers[mine[0]].Thumbprint}
				}
			}
			srv.Address = address
			if srv.SubscriptionID == "" {
				// Reuse the id this server already knows us by, as upstream.
				if other := pick(func(t config.TrustedServer) bool { return t.Polling() && t.SubscriptionID != "" }); other != nil {
					srv.SubscriptionID = other.SubscriptionID
				} else {
					srv.SubscriptionID = config.NewSubscriptionID()
				}
			}
		}
		srv.CommunicationStyle = style
		s.SetTrustedServers(config.AddOrUpdateServer(servers, *srv))
		e.Infof("Updated server communications configuration")
		return nil
	})
}

// activeAddress is https://host:port/ or the wss:// URL, as upstream builds it.
func (c *ServerCommsCmd) activeAddress() (string, error) {
	if c.Host == "" && c.WebSocket == "" {
		return "", config.Userf("Please provide either the server hostname or websocket address, e.g. --host=OCTOPUS")
	}
	if c.Host != "" && c.WebSocket != "" {
		return "", config.Userf("The hostname and websocket options cannot be used together")
	}
	if c.WebSocket != "" {
		return webSocketAddress(c.WebSocket, "--web-socket")
	}
	port := config.DefaultPollingPort
	if c.Port != "" {
		p, err := parsePort(c.Port, "--port")
		if err != nil {
			return "", err
		}
		port = p
	}
	host := strings.Trim(c.Host, "[]")
	if host == "" || strings.ContainsAny(host, "/ ") {
		return "", config.Userf("--host %q is not a host name; give the Octopus Server's name or address, e.g. --host=octopus.example", c.Host)
	}
	hostport := net.JoinHostPort(host, strconv.Itoa(port))
	if port == 443 {
		hostport = host
		if strings.Contains(host, ":") {
			hostport = "[" + host + "]"
		}
	}
	return config.NormalizeServerAddress("https://" + hostport + "/")
}
