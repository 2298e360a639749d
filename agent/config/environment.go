package config

import (
	"bufio"
	"errors"
	"io"
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

// DotEnvName is the file beside the binary that can supply the mapped
// variables.
const DotEnvName = ".env"

// maxDotEnvBytes bounds what is read from a .env file; the mapped settings
// take a few kilobytes at most.
const maxDotEnvBytes = 1 << 20

// DotEnvPath is the one .env file the agent reads: the one in the folder of
// the binary, with symbolic links to the binary resolved (so that a link in
// /usr/local/bin does not make that folder count). Upstream searches every
// folder from the binary's up to the root and reads the first it finds; a
// user who can write any of those folders could then choose the servers
// this Tentacle trusts, so we look in one place only.
func DotEnvPath(executable string) string {
	if executable == "" {
		return ""
	}
	if real, err := filepath.EvalSymlinks(executable); err == nil {
		executable = real
	}
	return filepath.Join(filepath.Dir(executable), DotEnvName)
}

// ApplyEnvironment overlays the mapped environment variables (and, below
// them, the .env file at dotEnvPath) on s, in memory only, when
// OCTOPUS_CONTRIBUTE_ENV_SETTINGS is true. It returns the keys it overrode
// and the .env file it read ("" when none). Precedence as upstream: process
// environment, then .env, then the file. A .env file that others could have
// written is an error, not ignored: the agent must not start with settings
// that differ from what its administrator wrote.
func ApplyEnvironment(s *Settings, getenv func(string) string, dotEnvPath string) (applied []string, dotEnvRead string, err error) {
	if b, err := ParseBool(getenv(ContributeEnvironmentVariable)); err != nil || !b {
		return nil, "", nil
	}
	dotEnv, err := readDotEnv(dotEnvPath)
	if err != nil {
		return nil, "", err
	}
	if dotEnv != nil {
		dotEnvRead = dotEnvPath
	}
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
	return applied, dotEnvRead, nil
}

// readDotEnv reads KEY=VALUE lines from path; a missing file is nil, no
// error. The file is trusted only if its owner is root or the agent's user
// (on Windows SYSTEM, Administrators or the agent's account), neither it
// nor its folder can be changed by anyone else, and it is a regular file.
// The checks are made on the open file (a symbolic link is judged by what
// it points to, and cannot be swapped between the check and the read).
func readDotEnv(path string) (map[string]string, error) {
	if path == "" {
		return nil, nil
	}
	dir := filepath.Dir(path)
	if _, err := os.Lstat(path); errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	// The folder first: whoever can write it could have put a link to a file
	// whose text they control (a log) in place of the .env.
	if a, err := pathAccess(dir); err != nil {
		return nil, Userf("Cannot check the folder of %s: %v. Fix its permissions, or remove the .env file.", path, unwrapPath(err))
	} else if !a.ownerTrusted || a.othersWrite {
		return nil, Userf("Refusing to read %s: its folder %s (%s) could be changed by someone other than %s, who could then choose the servers this Tentacle trusts. Fix it with `%s`, or remove the .env file.", path, dir, a.describe, trustedOwners(), fixes(dir, a, true))
	}
	f, err := openNoBlock(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		return nil, Userf("Cannot read %s: %v. Fix its permissions, or remove it.", path, unwrapPath(err))
	}
	defer f.Close()
	a, fi, err := openedAccess(f)
	if err != nil {
		return nil, Userf("Cannot check %s: %v.", path, unwrapPath(err))
	}
	if !fi.Mode().IsRegular() {
		return nil, Userf("Refusing to read %s: it is not a regular file (%s). Remove it.", path, fi.Mode().Type())
	}
	if !a.ownerTrusted || a.othersWrite {
		return nil, Userf("Refusing to read %s (%s): it must be owned by %s and writable by nobody else, because it can choose the servers this Tentacle trusts. Fix it with `%s`, or remove it.", path, a.describe, trustedOwners(), fixes(path, a, false))
	}
	out := map[string]string{}
	sc := bufio.NewScanner(io.LimitReader(f, maxDotEnvBytes))
	sc.Buffer(make([]byte, 0, 64<<10), maxDotEnvBytes)
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
	if err := sc.Err(); err != nil {
		return nil, Userf("Cannot read %s: %v.", path, err)
	}
	return out, nil
}

// fixes is the command (or two) that would make a file or folder acceptable.
func fixes(path string, a access, dir bool) string {
	var cmds []string
	if !a.ownerTrusted {
		cmds = append(cmds, fixOwner(path))
	}
	if a.othersWrite {
		cmds = append(cmds, fixNotWritable(path, dir))
	}
	return strings.Join(cmds, " && ")
}
