package config

import (
	"errors"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// ProxyKeys names the settings of one of upstream's two proxies.
type ProxyKeys struct {
	UseDefault, Host, Port, Username, Password string
}

// WebProxyKeys is the proxy for outbound web requests (and scripts).
var WebProxyKeys = ProxyKeys{
	UseDefault: "Octopus.Proxy.UseDefaultProxy",
	Host:       "Octopus.Proxy.ProxyHost",
	Port:       "Octopus.Proxy.ProxyPort",
	Username:   "Octopus.Proxy.ProxyUsername",
	Password:   "Octopus.Proxy.ProxyPassword",
}

// PollingProxyKeys is the proxy for polling connections and registration.
var PollingProxyKeys = ProxyKeys{
	UseDefault: "Octopus.Server.Proxy.UseDefaultProxy",
	Host:       "Octopus.Server.Proxy.ProxyHost",
	Port:       "Octopus.Server.Proxy.ProxyPort",
	Username:   "Octopus.Server.Proxy.ProxyUsername",
	Password:   "Octopus.Server.Proxy.ProxyPassword",
}

// ProxySettings is one proxy's configuration.
type ProxySettings struct {
	UseDefault bool // use the system proxy (environment on Linux)
	Host       string
	Port       int
	Username   string
	Password   string
}

// Proxy reads one proxy's settings; the password is decrypted with mk.
func (s *Settings) Proxy(keys ProxyKeys, mk MachineKey) (ProxySettings, error) {
	useDefault, err := s.boolSetting(keys.UseDefault, true)
	if err != nil {
		return ProxySettings{}, err
	}
	p := ProxySettings{UseDefault: useDefault, Port: 80}
	p.Host, _ = s.Get(keys.Host)
	p.Username, _ = s.Get(keys.Username)
	if v, ok := s.Get(keys.Port); ok {
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil || n < 1 || n > 65535 {
			return ProxySettings{}, Userf("%s in %s is %q, which is not a TCP port. Fix it with the proxy command's --proxyPort.", keys.Port, s.path, v)
		}
		p.Port = n
	}
	if enc, ok := s.Get(keys.Password); ok {
		plain, err := mk.Decrypt(enc)
		if err != nil {
			if errors.Is(err, ErrMachineKeyMismatch) {
				return ProxySettings{}, Userf("The proxy password in %s was encrypted on another machine and cannot be read here. Set it again with --proxyPassword.", s.path)
			}
			return ProxySettings{}, Userf("The proxy password in %s cannot be decrypted: %v. Set it again with --proxyPassword.", s.path, err)
		}
		p.Password = string(plain)
	}
	return p, nil
}

// SetProxyPassword stores a proxy password encrypted with the machine key,
// as upstream. Re-encrypting the same password is not a change.
func SetProxyPassword(s *Settings, keys ProxyKeys, password string, mk MachineKey) error {
	if password == "" {
		s.Set(keys.Password, "")
		return nil
	}
	if enc, ok := s.Get(keys.Password); ok {
		if plain, err := mk.Decrypt(enc); err == nil && string(plain) == password {
			return nil
		}
	}
	enc, err := mk.Encrypt([]byte(password))
	if err != nil {
		return err
	}
	s.Set(keys.Password, enc)
	return nil
}

// URL is the configured proxy with its credentials, or nil when no host is
// configured (then UseDefault says whether to use the system's proxy).
func (p ProxySettings) URL() *url.URL {
	if p.Host == "" {
		return nil
	}
	u := &url.URL{Scheme: "http", Host: net.JoinHostPort(p.Host, strconv.Itoa(p.Port))}
	if p.Username != "" {
		u.User = url.UserPassword(p.Username, p.Password)
	}
	return u
}

// HTTPProxy is the proxy policy for net/http: the configured host, else the
// environment's when UseDefault is on, else direct (nil). The agent's
// polling connections follow the same model.
func (p ProxySettings) HTTPProxy() func(*http.Request) (*url.URL, error) {
	if u := p.URL(); u != nil {
		return http.ProxyURL(u)
	}
	if p.UseDefault {
		return http.ProxyFromEnvironment
	}
	return nil
}
