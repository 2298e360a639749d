//go:build linux

package main

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestProvisionHostFirewallInANetworkNamespace runs provision's OS firewall
// step for real, with nftables, inside a network namespace this test makes
// (the host's firewall is never touched), twice: the rule is added once and
// the second run is "0 changed".
func TestProvisionHostFirewallInANetworkNamespace(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("SKIP: network namespaces need root (CI runs the tests as root)")
	}
	for _, tool := range []string{"ip", "nft"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("SKIP: %s is not installed; `make deps` installs it", tool)
		}
	}
	ns := fmt.Sprintf("tprov%d", os.Getpid())
	if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
		t.Skipf("SKIP: cannot make a network namespace: %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
	m := newProvisionMachine(t)
	file := m.write("fw.yaml", `instances:
  - name: Web
    listen: {port: 10955}
    firewall:
      host:
        backend: nftables
        sources: [192.0.2.0/24]
`)
	provision := func() string {
		t.Helper()
		c := exec.Command("ip", "netns", "exec", ns, builtBinary, "provision", "--file", file)
		c.Env = m.env
		out, err := c.CombinedOutput()
		if err != nil {
			t.Fatalf("provision in %s: %v\n%s", ns, err, out)
		}
		return string(out)
	}
	first := provision()
	if !strings.Contains(first, "changed      Web firewall-host") {
		t.Fatalf("first run:\n%s", first)
	}
	ruleset, err := exec.Command("ip", "netns", "exec", ns, "nft", "list", "ruleset").CombinedOutput()
	if err != nil {
		t.Fatalf("nft list ruleset: %v\n%s", err, ruleset)
	}
	if !strings.Contains(string(ruleset), "ip saddr 192.0.2.0/24 tcp dport 10955 accept") || !strings.Contains(string(ruleset), "Octopus Deploy Tentacle") {
		t.Fatalf("the rule is not in the namespace's ruleset:\n%s", ruleset)
	}
	if second := provision(); !strings.Contains(second, "unchanged    Web firewall-host") || !strings.Contains(second, "\n0 changed, ") {
		t.Fatalf("second run:\n%s", second)
	}
}
