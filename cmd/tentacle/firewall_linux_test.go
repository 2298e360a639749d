//go:build linux

package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/tentacle-go/tentacle/firewall"
)

// labNetns is a network namespace for the CLI test, removed at cleanup.
func labNetns(t *testing.T) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("SKIP: the firewall CLI test runs nft in a network namespace, which needs root (CI runs as root)")
	}
	for _, tool := range []string{"ip", "nft"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("SKIP: %s is not installed; `make deps` installs it", tool)
		}
	}
	name := fmt.Sprintf("tfwcli%d", os.Getpid())
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add: %v\n%s", err, out)
	}
	t.Cleanup(func() { exec.Command("ip", "netns", "del", name).Run() })
	return name
}

// inNetns runs fn on a thread inside the namespace; the tools fn starts
// are forked from that thread, so they run there too.
func inNetns(t *testing.T, ns string, fn func()) {
	t.Helper()
	runtime.LockOSThread()
	orig, err := os.Open(fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid()))
	if err != nil {
		t.Fatal(err)
	}
	defer orig.Close()
	target, err := os.Open(filepath.Join("/run/netns", ns))
	if err != nil {
		t.Fatal(err)
	}
	defer target.Close()
	if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
		t.Fatal(err)
	}
	fn()
	if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
		t.Fatal(err) // the thread stays locked and is retired
	}
	runtime.UnlockOSThread()
}

// TestFirewallCLINFTables drives the real nft through the CLI, in a
// namespace of its own: dry run, open, open again, list (text and JSON),
// close, close again.
func TestFirewallCLINFTables(t *testing.T) {
	ns := labNetns(t)
	h := newHarness(t)
	inNetns(t, ns, func() {
		h.fw(0, "firewall", "open", "--port", "10933", "--backend", "nftables", "--dry-run")
		h.fw(0, "firewall", "list", "--backend", "nftables")
		h.fw(0, "firewall", "open", "--port", "10933", "--backend", "nftables")
		h.fw(0, "firewall", "open", "--port", "10933", "--backend", "nftables")
		h.fw(0, "firewall", "open", "--port", "20000-20010", "--source", "203.0.113.10", "--source", "2001:db8::/64", "--backend", "nftables")
		h.fw(0, "firewall", "list", "--backend", "nftables")
		out := h.fw(0, "firewall", "list", "--backend", "nftables", "--format", "json", "--port", "10933")
		var rules []firewall.Rule
		if err := json.Unmarshal([]byte(out), &rules); err != nil || len(rules) != 1 || rules[0].Ports != firewall.SinglePort(10933) {
			t.Errorf("list --format json: %v %+v", err, rules)
		}
		h.fw(0, "firewall", "close", "--port", "10933", "--backend", "nftables", "--dry-run")
		h.fw(0, "firewall", "close", "--port", "10933", "--backend", "nftables")
		h.fw(0, "firewall", "close", "--port", "10933", "--backend", "nftables")
		h.fw(0, "firewall", "close", "--port", "20000-20010", "--source", "203.0.113.10", "--source", "2001:db8::/64", "--backend", "nftables")
		// With no instance on the machine, the default port.
		h.fw(0, "firewall", "open", "--backend", "nftables", "--dry-run")
	})
	h.golden("firewall-nftables")
}

// A firewall tool that reports success and changes nothing (here an nft
// that lists an empty ruleset and exits 0 for everything else, as Wine's
// netsh.exe does on Windows) makes `firewall open` fail: the rule is read
// back and is not there. Real processes, no namespace needed: the stub
// changes nothing.
func TestFirewallOpenFailsWhenTheToolDoesNothing(t *testing.T) {
	stubs := t.TempDir()
	script := "#!/bin/sh\n[ \"$1 $2 $3\" = '-j list ruleset' ] && echo '{\"nftables\": []}'\nexit 0\n"
	if err := os.WriteFile(filepath.Join(stubs, "nft"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", stubs+string(os.PathListSeparator)+os.Getenv("PATH"))
	h := newHarness(t)
	h.fw(1, "firewall", "open", "--port", "10933", "--backend", "nftables")
	if log := h.log.String(); !strings.Contains(log, "[stderr] nftables reported success, but reading its rules back shows the rule is not there (still to do: nft add table inet tentacle;") {
		t.Fatalf("output:\n%s", log)
	}
}
