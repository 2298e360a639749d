package main

import (
	"net/url"
	"strconv"
	"strings"

	"github.com/tentacle-go/tentacle/agent/config"
)

// proxyFlags are the options of proxy and polling-proxy (tentacle-surface
// §2.2).
type proxyFlags struct {
	InstanceFlags
	ProxyEnable   string  `name:"proxyEnable" help:"Whether to use a proxy: True or False" placeholder:"BOOL"`
	ProxyUsername *string `name:"proxyUsername" help:"Username to use when authenticating with the proxy" placeholder:"USER"`
	ProxyPassword *string `name:"proxyPassword" help:"Password to use when authenticating with the proxy (stored encrypted with the machine key)" placeholder:"PASSWORD" sensitive:""`
	ProxyHost     string  `name:"proxyHost" help:"The proxy host to use. Leave empty to use the system proxy (HTTPS_PROXY and NO_PROXY on Linux)" placeholder:"HOST"`
	ProxyPort     *string `name:"proxyPort" help:"The proxy port to use in conjunction with the Host set with proxyHost (default 80)" placeholder:"PORT"`
}

// ProxyCmd is upstream's proxy: the proxy for outbound web requests.
type ProxyCmd struct{ proxyFlags }

// PollingProxyCmd is upstream's polling-proxy: the proxy for polling
// connections and registration.
type PollingProxyCmd struct{ proxyFlags }

func (c *ProxyCmd) Run(e *Env) error        { return c.apply(e, config.WebProxyKeys) }
func (c *PollingProxyCmd) Run(e *Env) error { return c.apply(e, config.PollingProxyKeys) }

func (c *proxyFlags) apply(e *Env, keys config.ProxyKeys) error {
	enable := false
	if c.ProxyEnable != "" {
		b, err := config.ParseBool(c.ProxyEnable)
		if err != nil {
			return config.Userf("--proxyEnable takes True or False, not %q.", c.ProxyEnable)
		}
		enable = b
	}
	host := ""
	if h := strings.TrimSpace(c.ProxyHost); h != "" {
		// Only the host is kept: a scheme, port or path is dropped, as upstream.
		if !strings.Contains(h, "://") {
			h = "http://" + h
		}
		u, err := url.Parse(h)
		if err != nil || u.Hostname() == "" {
			return config.Userf("--proxyHost %q is not a host name; give the proxy's name or address, e.g. --proxyHost=proxy.example.", c.ProxyHost)
		}
		host = u.Hostname()
	}
	port := 0
	if c.ProxyPort != nil {
		if strings.TrimSpace(*c.ProxyPort) == "" {
			port = 80
		} else {
			p, err := parsePort(*c.ProxyPort, "--proxyPort")
			if err != nil {
				return err
			}
			port = p
		}
	}
	return c.update(e, func(s *config.Settings) error {
		if c.ProxyUsername != nil {
			s.Set(keys.Username, *c.ProxyUsername)
			if strings.TrimSpace(*c.ProxyUsername) == "" {
				e.Infof("Proxy username cleared")
			} else {
				e.Infof("Proxy username set to: %s", *c.ProxyUsername)
			}
		}
		if c.ProxyPassword != nil {
			if err := config.SetProxyPassword(s, keys, *c.ProxyPassword, e.MachineKey()); err != nil {
				return err
			}
			if *c.ProxyPassword == "" {
				e.Infof("Proxy password cleared")
			} else {
				e.Infof("Proxy password set to: *******")
			}
		}
		if port != 0 {
			s.Set(keys.Port, strconv.Itoa(port))
			if host != "" {
				e.Infof("Proxy port set to: %d", port)
			}
		}
		if enable {
			s.Set(keys.Host, host)
			s.Set(keys.UseDefault, config.FormatBool(host == ""))
			if host != "" {
				e.Infof("Using custom proxy at: %s", host)
			} else {
				e.Infof("Using the system proxy (HTTPS_PROXY and NO_PROXY on Linux, the Internet Explorer proxy on Windows)")
			}
		} else {
			s.Set(keys.Host, "")
			s.Set(keys.UseDefault, config.FormatBool(false))
			e.Infof("Proxy use is disabled")
		}
		return nil
	})
}
