package host

import (
	"net/netip"
	"slices"
	"testing"

	"github.com/tentacle-go/tentacle/firewall"
)

// The listings below are what the tools printed in the conformance labs.

func TestParseUFWAdded(t *testing.T) {
	for line, want := range map[string]firewall.Rule{
		`ufw allow 10933/tcp comment 'Octopus Deploy Tentacle'`:                                       firewall.NewRule("", firewall.SinglePort(10933), nil),
		`ufw allow from 10.0.0.2 to any port 20000:20010 proto tcp comment 'Octopus Deploy Tentacle'`: firewall.NewRule("", firewall.PortRange{First: 20000, Last: 20010}, []netip.Prefix{netip.MustParsePrefix("10.0.0.2/32")}),
	} {
		got, ok := parseUFWAdded(splitWords(line))
		if !ok || got.rule.Name != want.Name || got.rule.Ports != want.Ports || !slices.Equal(got.rule.Sources, want.Sources) {
			t.Errorf("%s: %+v %v", line, got, ok)
		}
	}
	for _, line := range []string{`ufw allow 53/udp`, `ufw deny 22/tcp`, `ufw allow OpenSSH`, `Added user rules (see 'ufw status' for running firewall):`} {
		if _, ok := parseUFWAdded(splitWords(line)); ok {
			t.Errorf("%s: parsed as ours", line)
		}
	}
}

func TestParseFirewalldListAll(t *testing.T) {
	z := parseFirewalldListAll("public (active)\n  target: default\n  services: dhcpv6-client ssh\n  ports: 10933/tcp 53/udp\n  rich rules: \n\trule family=\"ipv4\" source address=\"10.0.0.0/24\" port port=\"20000-20010\" protocol=\"tcp\" accept\n\trule family=\"ipv4\" source address=\"10.0.0.9\" reject\n")
	if z.name != "public" || len(z.entries) != 4 {
		t.Fatalf("%+v", z)
	}
	var rules []firewall.Rule
	for _, e := range z.entries {
		if r, ok := e.rule(); ok {
			rules = append(rules, r)
		}
	}
	if len(rules) != 2 || !rules[0].FromAnywhere() || rules[1].Sources[0] != netip.MustParsePrefix("10.0.0.0/24") {
		t.Fatalf("%+v", rules)
	}
}

func TestParseIPTablesRule(t *testing.T) {
	words := splitWords(`-A OCTOPUS-TENTACLE -s 10.0.0.2/32 -p tcp -m tcp --dport 20000:20010 -m comment --comment "Octopus Deploy Tentacle" -j ACCEPT`)
	r, ok := parseIPTablesRule(words[2:], ipFamilies[0])
	if !ok || r.Name != firewall.DefaultRuleName || r.Ports != (firewall.PortRange{First: 20000, Last: 20010}) || r.Sources[0] != netip.MustParsePrefix("10.0.0.2/32") {
		t.Fatalf("%+v %v", r, ok)
	}
	r, ok = parseIPTablesRule(splitWords(`-p tcp -m tcp --dport 10933 -m comment --comment x -j ACCEPT`), ipFamilies[1])
	if !ok || r.Sources[0] != firewall.AnySource[1] {
		t.Fatalf("%+v %v", r, ok)
	}
	if _, ok := parseIPTablesRule(splitWords(`-p udp -m udp --dport 53 -j ACCEPT`), ipFamilies[0]); ok {
		t.Fatal("udp parsed as ours")
	}
}

func TestCommandString(t *testing.T) {
	c := Command{Name: "nft", Args: []string{"add", "rule", "inet", "tentacle", "input", "comment", `"it's"`}}
	if got := c.String(); got != `nft add rule inet tentacle input comment '"it'\''s"'` {
		t.Fatal(got)
	}
}

func stepsOf(p *firewall.Plan) []string {
	var out []string
	for _, s := range p.Steps {
		out = append(out, s.Description)
	}
	return out
}
