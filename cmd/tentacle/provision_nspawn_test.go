//go:build linux

package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tentacle-go/tentacle/internal/mototest"
	"github.com/tentacle-go/tentacle/internal/nspawntest"
	"github.com/tentacle-go/tentacle/provision/octopus/octopustest"
)

// TestProvisionUnderRealSystemd provisions a listening target (with an AWS
// security group rule in moto_server) and a polling worker from files,
// inside a container with a real systemd, against octopustest: each file
// twice (the second run is "0 changed"), then a script runs on each through
// the protocol. The OS firewall step runs in a network namespace instead
// (TestProvisionHostFirewallInANetworkNamespace): the container shares this
// machine's network namespace, whose firewall a test must not touch.
func TestProvisionUnderRealSystemd(t *testing.T) {
	rootfs := nspawntest.Rootfs(t)
	moto, skip := mototest.Start()
	if moto == nil {
		t.Skip(skip)
	}
	t.Cleanup(moto.Stop)
	start := time.Now()
	group := motoGroup(t, moto.Endpoint)
	srv := octopustest.NewServer(t)
	binDir := staticBinary(t)
	files := t.TempDir()
	if err := os.Chmod(files, 0o755); err != nil {
		t.Fatal(err)
	}
	port := freePort(t)
	write := func(name, content string) {
		if err := os.WriteFile(filepath.Join(files, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("web.yaml", fmt.Sprintf(`instances:
  - name: Web
    listen:
      port: %d
      ip: 127.0.0.1
    firewall:
      aws:
        security-groups: [%s]
        region: us-east-1
        sources: [10.0.0.0/8]
    registration:
      server: %s
      api-key: ${OCTOPUS_API_KEY}
      name: web01
      public-host-name: 127.0.0.1
      environments: [Production]
      roles: [web]
    service: {}
`, port, group, srv.URL))
	// The worker follows a feed whose newest version is this binary's (so
	// the release step is unchanged) and turns on the daily upgrade timer.
	version, err := exec.Command(filepath.Join(binDir, "tentacle"), "version").Output()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(files, "feed"), 0o755); err != nil {
		t.Fatal(err)
	}
	current := strings.TrimSpace(string(version)) // a pre-release: named exactly
	write("feed/index.json", fmt.Sprintf(`{"schema":1,"versions":[{"version":%q,"files":[]}]}`, current))
	write("worker.yaml", fmt.Sprintf(`release:
  feed: /srv/provision/feed
  version: %s
instances:
  - name: Worker
    polling: {}
    registration:
      server: %s
      api-key: ${OCTOPUS_API_KEY}
      as: worker
      name: worker01
      worker-pools: [Linux Workers]
      server-comms-address: %s
    service:
      auto-upgrade: true
`, current, srv.URL, srv.PollingAddress))
	m := nspawntest.Boot(t, rootfs,
		nspawntest.Bind{Host: binDir, Container: containerBinDir, ReadOnly: true},
		nspawntest.Bind{Host: files, Container: "/srv/provision", ReadOnly: true})
	env := []string{"OCTOPUS_API_KEY=" + srv.APIKey, "AWS_ACCESS_KEY_ID=testing", "AWS_SECRET_ACCESS_KEY=testing",
		"AWS_ENDPOINT_URL_EC2=" + moto.Endpoint, "AWS_EC2_METADATA_DISABLED=true"}
	provision := func(file string, extra ...string) string {
		t.Helper()
		out, err := m.RunEnv(env, append([]string{containerBinDir + "/tentacle", "provision", "--file", "/srv/provision/" + file}, extra...)...)
		if err != nil {
			t.Fatalf("provision %s: %v\n%s", file, err, out)
		}
		return out
	}

	// Failures first, each stopping at its step with nothing half-done: a
	// broken file before anything, a wrong API key at the registration
	// (nothing registered, no service installed, the server not trusted).
	write("broken.yaml", "instances:\n  - name: Web\n    listen: {port: 10933}\n    servce: {}\n")
	if out, err := m.RunEnv(env, containerBinDir+"/tentacle", "provision", "--file", "/srv/provision/broken.yaml"); err == nil ||
		!strings.Contains(out, "broken.yaml:4:5: servce: unknown field \"servce\"") {
		t.Errorf("a broken file: %v\n%s", err, out)
	}
	if out, err := m.Run("ls", "-A", "/etc/octopus"); err == nil {
		t.Errorf("a broken file left /etc/octopus: %s", out)
	}
	wrongKey := append([]string{"OCTOPUS_API_KEY=API-WRONG"}, env[1:]...)
	if out, err := m.RunEnv(wrongKey, containerBinDir+"/tentacle", "provision", "--file", "/srv/provision/web.yaml"); err == nil ||
		!strings.Contains(out, "provision stopped at step registration of instance Web") {
		t.Errorf("a wrong API key: %v\n%s", err, out)
	}
	if len(srv.Machines()) != 0 {
		t.Error("a wrong API key registered a machine")
	}
	if got := strings.TrimSpace(m.Must("systemctl", "show", "-p", "LoadState", "--value", "Web.service")); got != "not-found" {
		t.Errorf("after a failed registration the service is %s", got)
	}
	if show := tentacleIn(m, "show-configuration", "--instance", "Web"); strings.Contains(show, srv.Thumbprint()) {
		t.Errorf("after a failed registration the server is trusted:\n%s", show)
	}

	for _, file := range []string{"web.yaml", "worker.yaml"} {
		runStart := time.Now()
		first := provision(file)
		t.Logf("first run of %s (%s):\n%s", file, time.Since(runStart).Round(time.Millisecond), first)
		if strings.Contains(first, "\n0 changed") || strings.Contains(first, "failed") {
			t.Errorf("the first run of %s changed nothing", file)
		}
		runStart = time.Now()
		second := provision(file)
		t.Logf("second run of %s (%s):\n%s", file, time.Since(runStart).Round(time.Millisecond), second)
		if !strings.Contains(second, "\n0 changed, ") {
			t.Errorf("the second run of %s is not 0 changed", file)
		}
		var doc provisionJSON
		if out := provision(file, "--format", "json"); json.Unmarshal([]byte(strings.TrimSpace(out[strings.Index(out, "{"):])), &doc) != nil || doc.Changed {
			t.Errorf("a third run of %s with --format json: %s", file, out)
		}
	}

	// State read back: units, the security group, the server's machines.
	for _, unit := range []string{"Web.service", "Worker.service"} {
		if got := strings.TrimSpace(m.Must("systemctl", "is-active", unit)); got != "active" {
			t.Errorf("%s is %q", unit, got)
		}
		if got := strings.TrimSpace(m.Must("systemctl", "is-enabled", unit)); got != "enabled" {
			t.Errorf("%s is %q", unit, got)
		}
	}
	if got := strings.TrimSpace(m.Must("systemctl", "is-enabled", "tentacle-upgrade.timer")); got != "enabled" {
		t.Errorf("the automatic upgrade timer is %q", got)
	}
	if show := m.Must("systemctl", "show", "-p", "ExecStart", "tentacle-upgrade.service"); !strings.Contains(show, "--feed=/srv/provision/feed") || !strings.Contains(show, "--version="+current) {
		t.Errorf("the automatic upgrade runs: %s", show)
	}
	if perms := motoIngress(t, moto.Endpoint, group); perms != fmt.Sprintf("tcp %d-%d 10.0.0.0/8", port, port) {
		t.Errorf("security group %s ingress: %q", group, perms)
	}
	ms := srv.Machines()
	if len(ms) != 2 {
		t.Fatalf("registered: %+v", ms)
	}
	for _, name := range []string{"web01", "worker01"} {
		lines, code := runScript(t, srv, name, "echo provisioned on $(hostname); exit 4")
		if code != 4 || !strings.Contains(strings.Join(lines, "\n"), "provisioned on") {
			t.Errorf("script on %s: exit %d, %v", name, code, lines)
		}
	}
	t.Logf("whole provision test under systemd: %s", time.Since(start).Round(time.Millisecond))
}

// motoGroup creates a security group in moto, as a user would beforehand.
func motoGroup(t *testing.T, endpoint string) string {
	t.Helper()
	group, err := mototest.CreateSecurityGroup(endpoint, "tentacle-provision")
	if err != nil {
		t.Fatal(err)
	}
	return group
}

// motoIngress is the group's inbound rules as "proto first-last cidr ...".
func motoIngress(t *testing.T, endpoint, group string) string {
	t.Helper()
	rules, err := mototest.Ingress(endpoint, group)
	if err != nil {
		t.Fatalf("describe %s: %v", group, err)
	}
	return rules
}
