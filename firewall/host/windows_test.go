package host

import (
	"context"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/tentacle-go/tentacle/firewall"
)

// scriptedRunner answers commands from a script and records them: the
// Windows backend cannot run here (Go 1.26 Windows binaries do not run
// under Wine), so its commands are tested argument by argument.
type scriptedRunner struct {
	answers map[string]scripted // by Command.String()
	ran     []string
}

type scripted struct {
	out  string
	exit int
}

func (s *scriptedRunner) Installed(string) bool { return true }

func (s *scriptedRunner) Run(_ context.Context, name string, args ...string) ([]byte, error) {
	c := Command{Name: name, Args: args}
	s.ran = append(s.ran, c.String())
	a := s.answers[c.String()]
	if a.exit != 0 {
		return []byte(a.out), &CommandError{Command: c, ExitCode: a.exit, Stdout: a.out}
	}
	return []byte(a.out), nil
}

const netshNoRules = "No rules match the specified criteria.\r\n"

// netshShow is `netsh advfirewall firewall show rule name="Octopus Deploy
// Tentacle" dir=in verbose` on an English Windows Server, with the rule
// upstream's installer makes and one restricted to a server's address.
const netshShow = "\r\n" +
	"Rule Name:                            Octopus Deploy Tentacle\r\n" +
	"----------------------------------------------------------------------\r\n" +
	"Description:                          \r\n" +
	"Enabled:                              Yes\r\n" +
	"Direction:                            In\r\n" +
	"Profiles:                             Domain,Private,Public\r\n" +
	"Grouping:                             \r\n" +
	"LocalIP:                              Any\r\n" +
	"RemoteIP:                             Any\r\n" +
	"Protocol:                             TCP\r\n" +
	"LocalPort:                            10933\r\n" +
	"RemotePort:                           Any\r\n" +
	"Edge traversal:                       No\r\n" +
	"Program:                              Any\r\n" +
	"InterfaceTypes:                       Any\r\n" +
	"Security:                             NotRequired\r\n" +
	"Rule source:                          Local Setting\r\n" +
	"Action:                               Allow\r\n" +
	"\r\n" +
	"Rule Name:                            Octopus Deploy Tentacle\r\n" +
	"----------------------------------------------------------------------\r\n" +
	"Enabled:                              Yes\r\n" +
	"Direction:                            In\r\n" +
	"RemoteIP:                             203.0.113.0/255.255.255.0,2001:db8::/64\r\n" +
	"Protocol:                             TCP\r\n" +
	"LocalPort:                            20000-20010\r\n" +
	"Action:                               Allow\r\n" +
	"Ok.\r\n"

func TestNetshArguments(t *testing.T) {
	anywhere := firewall.NewRule("", firewall.SinglePort(10933), nil)
	restricted := firewall.NewRule("", firewall.PortRange{First: 20000, Last: 20010}, []netip.Prefix{netip.MustParsePrefix("203.0.113.0/24"), netip.MustParsePrefix("2001:db8::/64")})
	for _, tc := range []struct {
		got  []string
		want string
	}{
		{netshAddArgs(anywhere), `advfirewall firewall add rule "name=Octopus Deploy Tentacle" dir=in action=allow protocol=TCP localport=10933 "description=Lets the Octopus Server reach the Tentacle"`},
		{netshAddArgs(restricted), `advfirewall firewall add rule "name=Octopus Deploy Tentacle" dir=in action=allow protocol=TCP localport=20000-20010 remoteip=203.0.113.0/24,2001:db8::/64 "description=Lets the Octopus Server reach the Tentacle"`},
		{netshDeleteArgs(anywhere), `advfirewall firewall delete rule "name=Octopus Deploy Tentacle" dir=in protocol=TCP localport=10933 remoteip=any`},
		{netshShowArgs("Octopus Deploy Tentacle"), `advfirewall firewall show rule "name=Octopus Deploy Tentacle" dir=in verbose`},
	} {
		got := strings.TrimPrefix(Command{Name: "netsh", Args: tc.got}.String(), "netsh ")
		if got != tc.want {
			t.Errorf("got  %s\nwant %s", got, tc.want)
		}
	}
	// The first argument is exactly what upstream Tentacle passes.
	if a := netshAddArgs(anywhere); a[4] != "name=Octopus Deploy Tentacle" {
		t.Errorf("name argument %q", a[4])
	}
}

func TestParseNetshRules(t *testing.T) {
	rules := parseNetshRules(netshShow)
	if len(rules) != 2 {
		t.Fatalf("parsed %+v", rules)
	}
	if rules[0].Ports != firewall.SinglePort(10933) || !rules[0].FromAnywhere() || rules[0].Name != firewall.DefaultRuleName {
		t.Errorf("first: %+v", rules[0])
	}
	want := []netip.Prefix{netip.MustParsePrefix("203.0.113.0/24"), netip.MustParsePrefix("2001:db8::/64")}
	if rules[1].Ports != (firewall.PortRange{First: 20000, Last: 20010}) || !slices.Equal(rules[1].Sources, want) {
		t.Errorf("second: %+v", rules[1])
	}
}

func TestWindowsPlans(t *testing.T) {
	ctx := context.Background()
	show := Command{Name: "netsh", Args: netshShowArgs(firewall.DefaultRuleName)}.String()
	rule := firewall.NewRule("", firewall.SinglePort(10933), nil)

	// No rule yet: one add; closing plans nothing.
	r := &scriptedRunner{answers: map[string]scripted{show: {out: netshNoRules, exit: 1}}}
	w := NewWindows(r)
	p, err := w.PlanOpen(ctx, rule)
	if err != nil || len(p.Steps) != 1 || !strings.HasPrefix(p.Steps[0].Description, `netsh advfirewall firewall add rule "name=Octopus Deploy Tentacle"`) {
		t.Fatalf("open: %v %v", stepsOf(p), err)
	}
	if p, err := w.PlanClose(ctx, rule); err != nil || !p.Empty() {
		t.Fatalf("close of nothing: %v %v", stepsOf(p), err)
	}
	if err := p.Apply(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if last := r.ran[len(r.ran)-1]; !strings.Contains(last, "add rule") {
		t.Fatalf("ran %v", r.ran)
	}

	// The rule upstream's installer made is found: nothing to add (netsh
	// would happily add a duplicate), and close deletes exactly it.
	r = &scriptedRunner{answers: map[string]scripted{show: {out: netshShow}}}
	w = NewWindows(r)
	if p, err := w.PlanOpen(ctx, rule); err != nil || !p.Empty() {
		t.Fatalf("open of an open port: %v %v", stepsOf(p), err)
	}
	p, err = w.PlanClose(ctx, rule)
	if err != nil || len(p.Steps) != 1 || p.Steps[0].Description != `netsh advfirewall firewall delete rule "name=Octopus Deploy Tentacle" dir=in protocol=TCP localport=10933 remoteip=any` {
		t.Fatalf("close: %v %v", stepsOf(p), err)
	}

	// Not elevated: one sentence.
	r = &scriptedRunner{answers: map[string]scripted{show: {out: "The requested operation requires elevation (Run as administrator).", exit: 1}}}
	_, err = NewWindows(r).PlanOpen(ctx, rule)
	if ue, ok := err.(*firewall.UserError); !ok || !strings.Contains(ue.Msg, "administrator rights") {
		t.Fatalf("got %v", err)
	}
}
