package aws

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"strings"
)

// The shared config and credentials files of the AWS CLI and SDKs:
// ~/.aws/config with [default], [profile NAME] and [sso-session NAME];
// ~/.aws/credentials with [NAME]. The credentials file wins where both set
// a key of one profile, as in the SDK.
// https://docs.aws.amazon.com/sdkref/latest/guide/file-format.html

type section map[string]string

type sharedConfig struct {
	profiles    map[string]section
	ssoSessions map[string]section
	// files are the paths read, for messages.
	configFile, credentialsFile string
}

// errProfileNotFound is a named profile in neither file.
type errProfileNotFound struct{ profile string }

func (e errProfileNotFound) Error() string {
	return fmt.Sprintf("profile %q not found", e.profile)
}

// loadSharedConfig reads both files; a missing file is an empty one.
func loadSharedConfig() (*sharedConfig, error) {
	cfg := &sharedConfig{profiles: map[string]section{}, ssoSessions: map[string]section{}}
	var err error
	if cfg.configFile, err = awsFile("AWS_CONFIG_FILE", "config"); err != nil {
		return nil, err
	}
	if cfg.credentialsFile, err = awsFile("AWS_SHARED_CREDENTIALS_FILE", "credentials"); err != nil {
		return nil, err
	}
	for _, f := range []struct {
		path     string
		isConfig bool
	}{{cfg.configFile, true}, {cfg.credentialsFile, false}} {
		if f.path == "" {
			continue
		}
		data, err := os.ReadFile(f.path)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		for name, keys := range parseINI(data) {
			target, ok := cfg.profiles, true
			if f.isConfig {
				target, name, ok = cfg.sectionOf(name)
			}
			if !ok {
				continue
			}
			if target[name] == nil {
				target[name] = section{}
			}
			for k, v := range keys {
				target[name][k] = v
			}
		}
	}
	return cfg, nil
}

// sectionOf sorts a config-file section: "default" and "profile X" are
// profiles, "sso-session X" an SSO session; others ([X], [services X]) are
// ignored, as the SDK ignores them.
func (c *sharedConfig) sectionOf(header string) (map[string]section, string, bool) {
	if header == "default" {
		return c.profiles, "default", true
	}
	if kind, name, ok := strings.Cut(header, " "); ok {
		name = strings.TrimSpace(name)
		switch kind {
		case "profile":
			return c.profiles, name, name != ""
		case "sso-session":
			return c.ssoSessions, name, name != ""
		}
	}
	return nil, "", false
}

// awsFile is the path in env, else ~/.aws/name.
func awsFile(env, name string) (string, error) {
	if p := os.Getenv(env); p != "" {
		if rest, ok := strings.CutPrefix(p, "~"); ok && (rest == "" || os.IsPathSeparator(rest[0])) {
			home := homeDir()
			if home == "" {
				return "", fmt.Errorf("%s=%s starts with ~, but there is no home directory", env, p)
			}
			p = home + rest
		}
		return p, nil
	}
	home := homeDir()
	if home == "" {
		// No home (cloud-init and some services run without HOME): no
		// default files, as in the SDK; the instance profile needs none.
		return "", nil
	}
	return filepath.Join(home, ".aws", name), nil
}

// homeDir is $HOME, else the account's home from the user database, as the
// SDK finds it; "" if neither.
func homeDir() string {
	if h, err := os.UserHomeDir(); err == nil {
		return h
	}
	if u, err := currentUser(); err == nil {
		return u.HomeDir
	}
	return ""
}

// currentUser is user.Current; tests replace it so that the machine's own
// home is never read.
var currentUser = user.Current

// parseINI reads sections of key = value lines. Full-line comments start
// with # or ;, and so do inline ones after a space. Indented lines (nested
// settings such as those under s3 =) are skipped: this package needs none.
func parseINI(data []byte) map[string]section {
	out := map[string]section{}
	var cur section
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		raw := sc.Text()
		line := strings.TrimSpace(raw)
		if line == "" || line[0] == '#' || line[0] == ';' {
			continue
		}
		if line[0] == '[' {
			end := strings.IndexByte(line, ']')
			if end < 0 {
				cur = nil
				continue
			}
			name := strings.Join(strings.Fields(line[1:end]), " ")
			if out[name] == nil {
				out[name] = section{}
			}
			cur = out[name]
			continue
		}
		if cur == nil {
			continue
		}
		if raw[0] == ' ' || raw[0] == '\t' {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		v = stripInlineComment(strings.TrimSpace(v))
		k = strings.ToLower(strings.TrimSpace(k))
		cur[k] = v
	}
	return out
}

func stripInlineComment(v string) string {
	for i := 1; i < len(v); i++ {
		if (v[i] == '#' || v[i] == ';') && (v[i-1] == ' ' || v[i-1] == '\t') {
			return strings.TrimSpace(v[:i])
		}
	}
	return v
}
