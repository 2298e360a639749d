package main

import (
	"errors"
	"net"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/tentacle-go/tentacle/agent"
	"github.com/tentacle-go/tentacle/agent/config"
	"github.com/tentacle-go/tentacle/provision/release"
)

// ConfigureCmd is upstream's configure. Trust changes apply first (reset,
// remove, add), then the other settings, as upstream.
type ConfigureCmd struct {
	InstanceFlags
	Home                   string   `name:"home" aliases:"homedir" help:"Home directory" placeholder:"DIR"`
	App                    string   `name:"app" aliases:"appdir" help:"Default directory to deploy applications to" placeholder:"DIR"`
	Port                   string   `name:"port" help:"TCP port on which Tentacle should listen to connections" placeholder:"PORT"`
	NoListen               string   `name:"noListen" help:"Suppress listening on a TCP port (intended for polling Tentacles only): True or False" placeholder:"BOOL"`
	ListenIPAddress        string   `name:"listenIpAddress" aliases:"listen-ip,listenIP" help:"IP address on which Tentacle should listen. Default: any" placeholder:"IP"`
	PollingConnectionCount string   `name:"pollingConnectionCount" help:"The number of polling connections this Tentacle should open to each Octopus Server it polls. Only applies to polling Tentacles." placeholder:"N"`
	Trust                  []string `name:"trust" sep:"none" help:"The thumbprint of the Octopus Server to trust (repeatable)" placeholder:"THUMBPRINT"`
	RemoveTrust            []string `name:"remove-trust" sep:"none" help:"The thumbprint of the Octopus Server to remove from the trusted list (repeatable)" placeholder:"THUMBPRINT"`
	ResetTrust             bool     `name:"reset-trust" help:"Removes all trusted Octopus Servers"`
	ReleasesFeed           string   `name:"releases-feed" help:"The release feed tentacle release and tentacle upgrade read for this instance: a directory, https:// URL or github:OWNER/REPO; default removes it" placeholder:"FEED"`
	ReleasesPublicKey      string   `name:"releases-public-key" help:"The minisign public key (RW…) this instance's release feed must be signed with; default removes it" placeholder:"KEY"`
	MetricsListen          string   `name:"metrics-listen" help:"Serve /metrics (Prometheus) and /healthz on this loopback address, e.g. 127.0.0.1:9464; off disables (default)" placeholder:"ADDR"`
}

func (c *ConfigureCmd) Run(e *Env) error {
	// Validate everything before touching the file: a bad value changes nothing.
	add, err := normalizeThumbprints(c.Trust)
	if err != nil {
		return err
	}
	remove, err := normalizeThumbprints(c.RemoveTrust)
	if err != nil {
		return err
	}
	var port, count int
	portSet := c.Port != ""
	// 0 is any free port, as upstream (the agent logs the one it gets).
	if portSet && strings.TrimSpace(c.Port) != "0" {
		if port, err = parsePort(c.Port, "--port"); err != nil {
			return err
		}
	}
	var noListen *bool
	if c.NoListen != "" {
		b, err := config.ParseBool(c.NoListen)
		if err != nil {
			return config.Userf("--noListen takes True or False, not %q; e.g. --noListen=True for a polling Tentacle.", c.NoListen)
		}
		noListen = &b
	}
	listenIP := ""
	if c.ListenIPAddress != "" && !strings.EqualFold(c.ListenIPAddress, "any") {
		ip := net.ParseIP(strings.Trim(c.ListenIPAddress, "[]"))
		if ip == nil {
			return config.Userf("--listenIpAddress %q is not an IP address. Give an address such as 10.0.0.5 or ::1, or `any` to listen on every address.", c.ListenIPAddress)
		}
		listenIP = ip.String()
	}
	if c.PollingConnectionCount != "" {
		if count, err = parsePollingConnectionCount(c.PollingConnectionCount); err != nil {
			return err
		}
	}
	home, app := absPath(e, c.Home), absPath(e, c.App)
	metrics := ""
	if c.MetricsListen != "" && !strings.EqualFold(c.MetricsListen, "off") {
		host, _, err := net.SplitHostPort(c.MetricsListen)
		ip := net.ParseIP(host)
		if err != nil || host != "localhost" && (ip == nil || !ip.IsLoopback()) {
			return config.Userf("--metrics-listen %q must be a loopback address and port such as 127.0.0.1:9464 (the endpoint has no authentication), or off.", c.MetricsListen)
		}
		metrics = c.MetricsListen
	}

	feed, pubkey, err := c.releaseSettings(e)
	if err != nil {
		return err
	}

	return c.update(e, func(s *config.Settings) error {
		servers, err := s.TrustedServers()
		if err != nil && (len(add) > 0 || len(remove) > 0) && !c.ResetTrust {
			return err
		}
		trustTouched := false
		if c.ResetTrust {
			e.Infof("Removing all trusted Octopus Servers...")
			servers, trustTouched = nil, true
		}
		if len(remove) > 0 {
			e.Infof("Removing %d trusted Octopus Servers", len(remove))
			kept := servers[:0]
			for _, srv := range servers {
				if !containsFold(remove, srv.Thumbprint) {
					kept = append(kept, srv)
				}
			}
			servers, trustTouched = kept, true
		}
		if len(add) > 0 {
			e.Infof("Adding %d trusted Octopus Servers", len(add))
			for _, t := range add {
				servers = config.AddOrUpdateServer(servers, config.TrustedServer{Thumbprint: t, CommunicationStyle: config.StyleTentaclePassive})
			}
			trustTouched = true
		}
		if trustTouched {
			s.SetTrustedServers(servers)
		}
		if home != "" {
			if _, err := config.EnsurePrivateDirAll(home); err != nil {
				return config.Userf("Cannot create the home directory: %v.", errors.Unwrap(err))
			}
			s.Set(config.KeyHome, home)
			e.Infof("Home directory set to: %s", home)
		}
		if app != "" {
			if _, err := config.EnsurePrivateDirAll(app); err != nil {
				return config.Userf("Cannot create the application directory: %v.", errors.Unwrap(err))
			}
			s.Set(config.KeyApplicationDirectory, app)
			e.Infof("Application directory set to: %s", app)
		}
		if portSet {
			s.Set(config.KeyPortNumber, strconv.Itoa(port))
			e.Infof("Services listen port: %d", port)
		}
		if noListen != nil {
			s.Set(config.KeyNoListen, config.FormatBool(*noListen))
			if *noListen {
				e.Infof("Tentacle will not listen on a port")
			} else {
				e.Infof("Tentacle will listen on a TCP port")
			}
		}
		if c.ListenIPAddress != "" {
			s.Set(config.KeyListenIP, listenIP)
			if listenIP == "" {
				e.Infof("Listen on any IP address")
			} else {
				e.Infof("Listen on IP address: %s", listenIP)
			}
		}
		if count != 0 {
			s.Set(config.KeyPollingConnectionCount, strconv.Itoa(count))
			e.Infof("Polling connection count set to: %d", count)
		}
		if c.ReleasesFeed != "" {
			s.Set(config.KeyReleasesFeed, feed)
			e.Infof("Release feed: %s", orDefault(feed))
		}
		if c.ReleasesPublicKey != "" {
			s.Set(config.KeyReleasesPublicKey, pubkey)
			e.Infof("Release public key: %s", orDefault(pubkey))
		}
		if c.MetricsListen != "" {
			s.Set(agent.KeyMetricsListenAddress, metrics)
			if metrics == "" {
				e.Infof("Metrics endpoint off")
			} else {
				e.Infof("Metrics endpoint: http://%s/metrics and /healthz", metrics)
			}
		}
		return nil
	})
}

// releaseSettings checks --releases-feed and --releases-public-key; the
// word default stands for "remove", as an empty flag cannot be told from an
// absent one. A key is stored as its RW… line, whatever form it was given in.
func (c *ConfigureCmd) releaseSettings(e *Env) (feed, pubkey string, err error) {
	if c.ReleasesFeed != "" && !strings.EqualFold(c.ReleasesFeed, "default") {
		feed = c.ReleasesFeed
		if !strings.Contains(feed, ":") || filepath.VolumeName(feed) != "" {
			feed = absPath(e, feed) // a directory: saved absolute
		}
		if err := release.CheckFeedSpec(feed); err != nil {
			return "", "", config.Userf("--releases-feed: %s.", strings.TrimSuffix(err.Error(), "."))
		}
	}
	if c.ReleasesPublicKey != "" && !strings.EqualFold(c.ReleasesPublicKey, "default") {
		key, err := release.ParsePublicKey(c.ReleasesPublicKey)
		if err != nil {
			return "", "", config.Userf("--releases-public-key: %s.", strings.TrimSuffix(err.Error(), "."))
		}
		text, _ := key.MarshalText()
		pubkey = string(text)
	}
	return feed, pubkey, nil
}

func orDefault(v string) string {
	if v == "" {
		return "(default)"
	}
	return v
}

func normalizeThumbprints(in []string) ([]string, error) {
	var out []string
	for _, t := range in {
		n, err := config.NormalizeThumbprint(t)
		if err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	return out, nil
}

func containsFold(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}

func parsePort(v, flag string) (int, error) {
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil || n < 1 || n > 65535 {
		return 0, config.Userf("%s %q is not a TCP port: give a number from 1 to 65535, e.g. %s=10933.", flag, v, flag)
	}
	return n, nil
}

func parsePollingConnectionCount(v string) (int, error) {
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil {
		return 0, config.Userf("The polling connection count '%s' is not a valid whole number. Specify a positive integer, e.g. --pollingConnectionCount=5", v)
	}
	if n < config.MinPollingConnectionCount {
		return 0, config.Userf("The polling connection count must be greater than 0, but was %d.", n)
	}
	if n > config.MaxPollingConnectionCount {
		return 0, config.Userf("The polling connection count must be at most %d, but was %d.", config.MaxPollingConnectionCount, n)
	}
	return n, nil
}

func absPath(e *Env, p string) string {
	if p == "" {
		return ""
	}
	if !filepath.IsAbs(p) {
		p = filepath.Join(e.Cwd, p)
	}
	return filepath.Clean(p)
}

// SetPollingConnectionCountCmd is upstream's set-polling-connection-count.
type SetPollingConnectionCountCmd struct {
	InstanceFlags
	PollingConnectionCount string `name:"pollingConnectionCount" help:"The number of polling connections this Tentacle should open to each Octopus Server it polls. Only applies to polling Tentacles." placeholder:"N"`
}

func (c *SetPollingConnectionCountCmd) Run(e *Env) error {
	if strings.TrimSpace(c.PollingConnectionCount) == "" {
		return config.Userf("Please specify the number of polling connections, e.g. --pollingConnectionCount=5")
	}
	n, err := parsePollingConnectionCount(c.PollingConnectionCount)
	if err != nil {
		return err
	}
	return c.update(e, func(s *config.Settings) error {
		s.Set(config.KeyPollingConnectionCount, strconv.Itoa(n))
		e.Infof("Polling connection count set to: %d", n)
		return nil
	})
}
