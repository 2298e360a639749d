//go:build linux

package scripts_test

import (
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/goccy/go-yaml"

	"github.com/tentacle-go/tentacle/agent/config"
	"github.com/tentacle-go/tentacle/internal/nspawntest"
	"github.com/tentacle-go/tentacle/provision/plan"
)

// TestCloudInitExamplesValid checks both user-data files with Debian's
// cloud-init schema validator, and that the validator rejects a broken
// file (so a pass means something).
func TestCloudInitExamplesValid(t *testing.T) {
	if _, err := exec.LookPath("cloud-init"); err != nil {
		t.Skip("SKIP: cloud-init is not installed (apt-get install cloud-init; `make deps` does it without starting it)")
	}
	for _, f := range []string{"examples/cloud-init-listening.yaml", "examples/cloud-init-polling.yaml"} {
		out, err := exec.Command("cloud-init", "schema", "--config-file", f).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "Valid cloud-config") {
			t.Errorf("cloud-init schema %s: %v\n%s", f, err, out)
		}
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(data), "install.sh | sh -s --") || !strings.Contains(string(data), "tentacle provision --file /etc/octopus/provision.yaml") {
			t.Errorf("%s does not install with install.sh and converge with tentacle provision", f)
		}
		checkDeclaration(t, f, data)
	}
	broken := filepath.Join(t.TempDir(), "broken.yaml")
	if err := os.WriteFile(broken, []byte("#cloud-config\nruncmd: 5\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("cloud-init", "schema", "--config-file", broken).CombinedOutput(); err == nil {
		t.Errorf("cloud-init schema accepted a broken file:\n%s", out)
	}
}

// checkDeclaration parses the provision file a user-data file writes with
// tentacle's own parser (unknown keys, wrong types and values refused), and
// checks that it starts the service and keeps the API key out of it.
func checkDeclaration(t *testing.T, name string, userData []byte) {
	t.Helper()
	var doc struct {
		WriteFiles []struct{ Path, Content string } `yaml:"write_files"`
	}
	if err := yaml.Unmarshal(userData, &doc); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	for _, wf := range doc.WriteFiles {
		if wf.Path != "/etc/octopus/provision.yaml" {
			continue
		}
		f, err := plan.Parse(name+" provision.yaml", []byte(wf.Content))
		if err != nil {
			t.Fatalf("the declaration in %s: %v", name, err)
		}
		in := f.Instances[0]
		if in.Service == nil || in.Registration == nil || in.Registration.APIKeyFile == "" || in.Registration.APIKey != "" {
			t.Errorf("the declaration in %s does not register with a key file and run the service: %+v", name, in)
		}
		return
	}
	t.Errorf("%s writes no /etc/octopus/provision.yaml", name)
}

// TestAnsibleExampleConverges runs the Ansible example with -c local in
// the systemd container twice, against a feed on loopback: the first run
// installs and starts a Tentacle, the second changes nothing.
func TestAnsibleExampleConverges(t *testing.T) {
	rootfs := nspawntest.Rootfs(t)
	start := time.Now()
	feed := buildFeed(t, []string{"1.3.0"}, nil)
	url := serveFeed(t, feed)
	scriptsDir, err := filepath.Abs(".")
	if err != nil {
		t.Fatal(err)
	}
	m := nspawntest.Boot(t, rootfs, nspawntest.Bind{Host: scriptsDir, Container: "/srv/scripts", ReadOnly: true})
	if _, err := m.Run("ansible-playbook", "--version"); err != nil {
		t.Skip("SKIP: the container root filesystem has no ansible-playbook (rebuild it: make nspawn-rootfs)")
	}
	// The container shares this machine's network: the agent listens on a
	// free loopback port.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	server, err := config.GenerateCertificate()
	if err != nil {
		t.Fatal(err)
	}
	vars, err := json.Marshal(map[string]any{
		"tentacle_feed":              url,
		"tentacle_port":              port,
		"tentacle_listen_address":    "127.0.0.1",
		"tentacle_server_thumbprint": server.Thumbprint(),
	})
	if err != nil {
		t.Fatal(err)
	}
	m.Must("sh", "-c", "printf '%s' "+nspawntest.ShellQuote(string(vars))+" >/root/vars.json")
	play := func() string {
		t.Helper()
		out, err := m.Run("sh", "-c", "cd /root && ansible-playbook -c local -i localhost, -e @/root/vars.json /srv/scripts/examples/ansible/tentacle.yml")
		if err != nil {
			t.Fatalf("ansible-playbook: %v\n%s", err, out)
		}
		return out
	}
	recap := regexp.MustCompile(`localhost\s*:\s*ok=(\d+)\s+changed=(\d+)\s+unreachable=0\s+failed=0`)
	first := play()
	firstDone := time.Now()
	t.Logf("first run:\n%s", first)
	if mm := recap.FindStringSubmatch(first); mm == nil || mm[2] == "0" {
		t.Errorf("the first run changed nothing or failed")
	}
	if got := strings.TrimSpace(m.Must("systemctl", "is-active", "Tentacle.service")); got != "active" {
		t.Errorf("after the playbook Tentacle.service is %q", got)
	}
	if got := m.Must("tentacle", "version"); got != "1.3.0" {
		t.Errorf("tentacle version after the playbook: %q", got)
	}
	show := m.Must("tentacle", "show-configuration", "--instance", "Tentacle")
	if !strings.Contains(show, strconv.Itoa(port)) || !strings.Contains(show, server.Thumbprint()) {
		t.Errorf("the instance is not configured as asked:\n%s", show)
	}
	second := play()
	t.Logf("second run:\n%s", second)
	if mm := recap.FindStringSubmatch(second); mm == nil || mm[2] != "0" {
		t.Errorf("the second run is not changed=0")
	}
	t.Logf("ansible: first run %s, second run %s, whole test %s", firstDone.Sub(start).Round(time.Millisecond),
		time.Since(firstDone).Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
}
