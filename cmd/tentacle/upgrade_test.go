package main

import (
	"bytes"
	"runtime"
	"strings"
	"testing"
)

// The user errors of upgrade and of service --auto-upgrade come before
// anything is read or changed: one sentence on stderr, exit 1.
func TestUpgradeAndAutoUpgradeRefusals(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"upgrade", "--instance", "A", "--all", "--feed", "/srv/feed"}, "not both"},
		{[]string{"upgrade", "--health-wait", "0", "--feed", "/srv/feed"}, "--health-wait must be a positive number"},
		{[]string{"upgrade"}, "No release feed"},
		{[]string{"upgrade", "--feed", "ftp://example.com/feed"}, "has a scheme tentacle does not read"},
		{[]string{"upgrade", "--format", "xml"}, "format 'xml' is not supported"},
		{[]string{"service", "--instance", "Tentacle", "--start", "--auto-upgrade", "latest"}, "--auto-upgrade goes with --install or --reconfigure"},
		{[]string{"service", "--instance", "Tentacle", "--install", "--auto-upgrade", "latest"}, "--auto-upgrade needs a release feed"},
		{[]string{"service", "--instance", "Tentacle", "--install", "--auto-upgrade", "~> not-a-version", "--auto-upgrade-feed", "/srv/feed"}, "is not a version or constraint"},
		{[]string{"service", "--instance", "*", "--restart", "--install", "--auto-upgrade", "latest"}, "machine-wide"},
	} {
		// The automatic upgrade does not exist on Windows yet, and says so first.
		if runtime.GOOS == "windows" && c.args[0] == "service" {
			c.want = "is not there yet on windows"
		}
		var out, errOut bytes.Buffer
		e := &Env{Stdout: &out, Stderr: &errOut, Getenv: func(string) string { return "" }}
		code := run(c.args, e)
		if code != exitUserError || !strings.Contains(errOut.String(), c.want) || strings.Count(strings.TrimSpace(errOut.String()), "\n") != 0 {
			t.Errorf("%v: exit %d, stderr %q; want exit 1 and %q", c.args, code, errOut.String(), c.want)
		}
	}
}
