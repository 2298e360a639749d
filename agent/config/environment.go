package config

import (
	"bufio"
	"os"
	"path/filepath"
	"strings"
)

// EnvironmentMappings are the environment variables that can stand in for
// configuration keys (tentacle-surface §3.3), for containers and images that
// configure a Tentacle without writing its file. Values use the same
// encoding as the file (the certificate and passwords machine-key
// encrypted, booleans true/false, TENTACLE_TRUSTED_SERVERS the same JSON).
var EnvironmentMappings = map[string]string{
	"OCTOPUS_HOME":                           KeyHome,
	"OCTOPUS_NODE_CACHE":                     "Octopus.Node.Cache",
	"OCTOPUS_USE_DEFAULT_PROXY":              WebProxyKeys.UseDefault,
	"OCTOPUS_PROXY_HOST":                     WebProxyKeys.Host,
	"OCTOPUS_PROXY_PORT":                     WebProxyKeys.Port,
	"OCTOPUS_PROXY_USER":                     WebProxyKeys.Username,
	"OCTOPUS_PROXY_PASSWORD":                 WebProxyKeys.Password,
	"TENTACLE_SERVICE_PORT":                  KeyPortNumber,
	"TENTACLE_LISTEN_IP":                     KeyListenIP,
	"TENTACLE_NO_LISTEN":                     KeyNoListen,
	"TENTACLE_TRUSTED_SERVERS":               KeyTrustedServers,
	"TENTACLE_APPLICATION_DIRECTORY":         KeyApplicationDirectory,
	"TENTACLE_CERTIFICATE":                   KeyCertificate,
	"TENTACLE_CERTIFICATE_THUMBPRINT":        KeyCertificateThumbprint,
	"TENTACLE_POLLING_USE_DEFAULT_PROXY":     PollingProxyKeys.UseDefault,
	"TENTACLE_POLLING_CUSTOM_PROXY_HOST":     PollingProxyKeys.Host,
	"TENTACLE_POLLING_CUSTOM_PROXY_PORT":     PollingProxyKeys.Port,
	"TENTACLE_POLLING_CUSTOM_PROXY_USER":     PollingProxyKeys.Username,
	"TENTACLE_POLLING_CUSTOM_PROXY_PASSWORD": PollingProxyKeys.Password,
}

// ContributeEnvironmentVariable switches the mappings on, as upstream.
const ContributeEnvironmentVariable = "OCTOPUS_CONTRIBUTE_ENV_SETTINGS"

// ApplyEnvironment overlays the mapped environment variables (and, below
// them, a .env file found by walking up from dotEnvDir) on s, in memory
// only, when OCTOPUS_CONTRIBUTE_ENV_SETTINGS is true. It returns the keys
// it overrode. Precedence as upstream: process environment, then .env, then
// the file.
func ApplyEnvironment(s *Settings, getenv func(string) string, dotEnvDir string) []string {
	if b, err := ParseBool(getenv(ContributeEnvironmentVariable)); err != nil || !b {
		return nil
	}
	dotEnv := readDotEnv(dotEnvDir)
	var applied []string
	for env, key := range EnvironmentMappings {
		v := getenv(env)
		if strings.TrimSpace(v) == "" {
			v = dotEnv[env]
		}
		if strings.TrimSpace(v) == "" {
			continue
		}
		s.put(key, v)
		applied = append(applied, key)
	}
	return applied
}

// readDotEnv reads KEY=VALUE lines from the first .env file at or above dir.
func readDotEnv(dir string) map[string]string {
	out := map[string]string{}
	if dir == "" {
		return out
	}
	for d := dir; ; d = filepath.Dir(d) {
		f, err := os.Open(filepath.Join(d, ".env"))
		if err == nil {
			sc := bufio.NewScanner(f)
			for sc.Scan() {
				line := strings.TrimSpace(sc.Text())
				if line == "" || strings.HasPrefix(line, "#") {
					continue
				}
				k, v, ok := strings.Cut(line, "=")
				if !ok {
					continue
				}
				out[strings.TrimSpace(strings.TrimPrefix(k, "export "))] = strings.Trim(strings.TrimSpace(v), `"'`)
			}
			f.Close()
			return out
		}
		if filepath.Dir(d) == d {
			return out
		}
	}
}
