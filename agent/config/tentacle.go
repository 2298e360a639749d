package config

import (
	"encoding/json"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
)

// The keys of the instance configuration file (tentacle-surface §3.3).
const (
	KeyHome                   = "Octopus.Home"
	KeyPortNumber             = "Tentacle.Services.PortNumber"
	KeyListenIP               = "Tentacle.Services.ListenIP"
	KeyNoListen               = "Tentacle.Services.NoListen"
	KeyIsRegistered           = "Tentacle.Services.IsRegistered"
	KeyTrustedServers         = "Tentacle.Communication.TrustedOctopusServers"
	KeyPollingConnectionCount = "Tentacle.Communication.PollingConnectionCount"
	KeyLastReceivedHandshake  = "Tentacle.Communication.LastReceivedHandshake"
	KeyApplicationDirectory   = "Tentacle.Deployment.ApplicationDirectory"
	KeyCertificate            = "Tentacle.Certificate"
	KeyCertificateThumbprint  = "Tentacle.CertificateThumbprint"
	KeySquid                  = "Octopus.Communications.Squid"
)

// DefaultPort is the listening port when none is configured.
const DefaultPort = 10933

// DefaultPollingPort is the Octopus Server's polling port.
const DefaultPollingPort = 10943

// Polling connection count bounds (upstream clamps to these).
const (
	MinPollingConnectionCount = 1
	MaxPollingConnectionCount = 512
)

// Home is the instance's home directory; a relative value resolves against
// the configuration file's directory, as upstream.
func (s *Settings) Home() string {
	h, ok := s.Get(KeyHome)
	if !ok {
		return filepath.Dir(s.path)
	}
	if !filepath.IsAbs(h) {
		h = filepath.Join(filepath.Dir(s.path), h)
	}
	return filepath.Clean(h)
}

// Port is the listening port.
func (s *Settings) Port() (int, error) {
	v, ok := s.Get(KeyPortNumber)
	if !ok {
		return DefaultPort, nil
	}
	// 0 is any free port, as upstream: the agent logs the one it got.
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil || n < 0 || n > 65535 {
		return 0, Userf("%s in %s is %q, which is not a TCP port. Fix it with `tentacle configure --port 10933`.", KeyPortNumber, s.path, v)
	}
	return n, nil
}

// ListenIP is the listening address; "" means every address (dual-stack).
func (s *Settings) ListenIP() string {
	v, _ := s.Get(KeyListenIP)
	return strings.TrimSpace(v)
}

// NoListen reports whether the agent should not listen at all.
func (s *Settings) NoListen() (bool, error) { return s.boolSetting(KeyNoListen, false) }

func (s *Settings) boolSetting(key string, def bool) (bool, error) {
	v, ok := s.Get(key)
	if !ok {
		return def, nil
	}
	b, err := ParseBool(v)
	if err != nil {
		return false, Userf("%s in %s is %q, which is not true or false.", key, s.path, v)
	}
	return b, nil
}

// ParseBool accepts what .NET's bool.Parse accepts: true or false in any
// case, with surrounding white space.
func ParseBool(v string) (bool, error) {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "true":
		return true, nil
	case "false":
		return false, nil
	}
	return false, strconv.ErrSyntax
}

// FormatBool writes a bool as upstream does: JSON-style lower case.
func FormatBool(b bool) string { return strconv.FormatBool(b) }

// ApplicationDirectory is where Calamari deploys packages; upstream's default
// applies when unset.
func (s *Settings) ApplicationDirectory() string {
	if v, ok := s.Get(KeyApplicationDirectory); ok {
		return v
	}
	if runtime.GOOS == "windows" {
		return `C:\Octopus\Applications`
	}
	return "/home/Octopus/Applications"
}

// PollingConnectionCount is the stored count, or 0 when unset.
func (s *Settings) PollingConnectionCount() (int, error) {
	v, ok := s.Get(KeyPollingConnectionCount)
	if !ok {
		return 0, nil
	}
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil {
		return 0, Userf("%s in %s is %q, which is not a whole number. Fix it with `tentacle set-polling-connection-count --pollingConnectionCount 1`.", KeyPollingConnectionCount, s.path, v)
	}
	return n, nil
}

// TrustedServers returns the trusted Octopus Servers.
func (s *Settings) TrustedServers() ([]TrustedServer, error) {
	v, ok := s.Get(KeyTrustedServers)
	if !ok {
		return nil, nil
	}
	var list []TrustedServer
	if err := json.Unmarshal([]byte(v), &list); err != nil {
		return nil, Userf("%s in %s is not valid JSON (%v). Reset it with `tentacle configure --reset-trust` and trust the server again.", KeyTrustedServers, s.path, err)
	}
	// Legacy 2.x entries have only a Squid: their subscription id derives from it.
	for i := range list {
		if list[i].SubscriptionID == "" && list[i].Squid != "" && list[i].CommunicationStyle == StyleTentacleActive {
			list[i].SubscriptionID = "poll://" + strings.ToLower(list[i].Squid) + "/"
		}
	}
	return list, nil
}

// SetTrustedServers stores the list and reports whether it changed.
func (s *Settings) SetTrustedServers(list []TrustedServer) bool {
	if list == nil {
		list = []TrustedServer{}
	}
	data, _ := json.Marshal(list)
	if old, ok := s.Get(KeyTrustedServers); !ok && len(list) == 0 || ok && old == string(data) {
		return false
	}
	return s.Set(KeyTrustedServers, string(data))
}

// Thumbprint is the instance certificate's thumbprint, "" if none.
func (s *Settings) Thumbprint() string {
	v, _ := s.Get(KeyCertificateThumbprint)
	return strings.ToUpper(strings.TrimSpace(v))
}
