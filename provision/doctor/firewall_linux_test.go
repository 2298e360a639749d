package doctor

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"github.com/tentacle-go/tentacle/agent/config"
	"github.com/tentacle-go/tentacle/firewall/host"
)

// netnsRunner runs the firewall tools inside a network namespace, so the
// test changes a real nftables ruleset that is not the machine's.
type netnsRunner struct{ ns string }

func (r netnsRunner) Installed(name string) bool {
	_, err := exec.LookPath(name)
	return err == nil
}

func (r netnsRunner) Run(ctx context.Context, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", r.ns, name}, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.Bytes(), &host.CommandError{Command: host.Command{Name: name, Args: args}, Stdout: stdout.String(), Stderr: strings.TrimSpace(stderr.String()), Err: err}
	}
	return stdout.Bytes(), nil
}

// The firewall check reads the real nftables ruleset (in a network
// namespace): no rule for the port is a warning naming the command that
// opens it; after that command's plan is applied, the check passes.
func TestFirewallCheckWithNFTables(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("SKIP: the nftables check runs in a network namespace, which needs root (CI runs as root)")
	}
	for _, tool := range []string{"ip", "nft"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("SKIP: %s is not installed; `make deps` installs it", tool)
		}
	}
	ns := fmt.Sprintf("tdoc%d", os.Getpid())
	if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add: %v\n%s", err, out)
	}
	t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
	fw := host.NewNFTables(netnsRunner{ns})

	const port = 10977
	opts := instance(t, newCert(t), func(s *config.Settings) {
		s.Set(config.KeyPortNumber, strconv.Itoa(port))
		s.SetTrustedServers([]config.TrustedServer{{Thumbprint: strings.Repeat("C", 40), CommunicationStyle: config.StyleTentaclePassive}})
	})
	opts.Firewall = fw
	expect(t, Run(context.Background(), opts), "firewall", Warn, "nftables has no rule allowing TCP port 10977; if it filters incoming traffic, the server cannot connect.", "tentacle firewall open --port 10977")

	rule := newOpenRule(port)
	plan, err := fw.PlanOpen(context.Background(), rule)
	if err != nil {
		t.Fatal(err)
	}
	if err := plan.Apply(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	expect(t, Run(context.Background(), opts), "firewall", OK, "nftables allows TCP port 10977 from anywhere.", "")
}
