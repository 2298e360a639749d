package host

import (
	"context"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/tentacle-go/tentacle/firewall"
)

// scriptedRunner answers commands from a script and records them; onRun,
// when set, is what the command does to the machine.
type scriptedRunner struct {
	answers map[string]scripted // by Command.String()
	ran     []string
	onRun   func(c Command)
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
	if s.onRun != nil {
		s.onRun(c)
	}
	return []byte(a.out), nil
}

// memoryRuleStore holds rule-store values as the registry would.
type memoryRuleStore struct{ values map[string]string }

func (m *memoryRuleStore) ruleValues() ([]string, error) {
	var out []string
	for _, v := range m.values {
		out = append(out, v)
	}
	slices.Sort(out)
	return out, nil
}

// Values of the rule store as Windows Server writes them: the rule
// upstream's installer makes, one restricted to a server's addresses, and
// rules that are not ours in shape.
const (
	storeUpstreamRule   = "v2.30|Action=Allow|Active=TRUE|Dir=In|Protocol=6|LPort=10933|Name=Octopus Deploy Tentacle|"
	storeRestrictedRule = "v2.30|Action=Allow|Active=TRUE|Dir=In|Protocol=6|LPort=20000-20010|RA4=203.0.113.0/255.255.255.0|RA6=2001:db8::/64|Name=Octopus Deploy Tentacle|Desc=Lets the Octopus Server reach the Tentacle|"
)

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

func TestParseWindowsRule(t *testing.T) {
	r, ok := parseWindowsRule(storeUpstreamRule)
	if !ok || r.Ports != firewall.SinglePort(10933) || !r.FromAnywhere() || r.Name != firewall.DefaultRuleName || r.Location != "Windows Firewall" {
		t.Errorf("upstream's rule: %+v %v", r, ok)
	}
	r, ok = parseWindowsRule(storeRestrictedRule)
	want := []netip.Prefix{netip.MustParsePrefix("203.0.113.0/24"), netip.MustParsePrefix("2001:db8::/64")}
	if !ok || r.Ports != (firewall.PortRange{First: 20000, Last: 20010}) || !slices.Equal(r.Sources, want) || r.Description == "" {
		t.Errorf("restricted: %+v %v", r, ok)
	}
	r, ok = parseWindowsRule("v2.33|Action=Allow|Active=FALSE|Dir=In|Protocol=6|LPort=10933|RA4=10.0.0.2|RA4=10.1.0.0/16|Name=x|")
	if !ok || r.Location != "Windows Firewall (disabled)" || !slices.Equal(r.Sources, []netip.Prefix{netip.MustParsePrefix("10.0.0.2/32"), netip.MustParsePrefix("10.1.0.0/16")}) {
		t.Errorf("disabled, two addresses: %+v %v", r, ok)
	}
	for _, v := range []string{
		"v2.30|Action=Block|Active=TRUE|Dir=In|Protocol=6|LPort=10933|Name=Octopus Deploy Tentacle|",
		"v2.30|Action=Allow|Active=TRUE|Dir=Out|Protocol=6|LPort=10933|Name=Octopus Deploy Tentacle|",
		"v2.30|Action=Allow|Active=TRUE|Dir=In|Protocol=17|LPort=10933|Name=Octopus Deploy Tentacle|",
		"v2.30|Action=Allow|Active=TRUE|Dir=In|Protocol=6|LPort=80|LPort=443|Name=web|",
		"v2.30|Action=Allow|Active=TRUE|Dir=In|Protocol=6|LPort=RPC|Name=rpc|",
		"v2.30|Action=Allow|Active=TRUE|Dir=In|Protocol=6|LPort=10933|RA4=LocalSubnet|Name=Octopus Deploy Tentacle|",
		"v2.30|Action=Allow|Active=TRUE|Dir=In|Protocol=6|LPort=10933|RA4=10.0.0.1-10.0.0.9|Name=Octopus Deploy Tentacle|",
		"v2.30|Action=Allow|Active=TRUE|Dir=In|Protocol=6|LPort=10933|App=C:\\x.exe|Name=Octopus Deploy Tentacle|",
		"v2.26|Action=Allow|Active=TRUE|Dir=In|Protocol=6|Name=@FirewallAPI.dll,-28502|",
		"not a rule",
	} {
		if r, ok := parseWindowsRule(v); ok {
			t.Errorf("%s: parsed as %+v", v, r)
		}
	}
}

func TestWindowsPlans(t *testing.T) {
	ctx := context.Background()
	rule := firewall.NewRule("", firewall.SinglePort(10933), nil)

	// No rule yet: one add; closing plans nothing.
	store := &memoryRuleStore{values: map[string]string{}}
	r := &scriptedRunner{}
	w := &Windows{run: r, store: store}
	p, err := w.PlanOpen(ctx, rule)
	if err != nil || len(p.Steps) != 1 || !strings.HasPrefix(p.Steps[0].Description, `netsh advfirewall firewall add rule "name=Octopus Deploy Tentacle"`) {
		t.Fatalf("open: %v %v", stepsOf(p), err)
	}
	if p, err := w.PlanClose(ctx, rule); err != nil || !p.Empty() {
		t.Fatalf("close of nothing: %v %v", stepsOf(p), err)
	}

	// The rule upstream's installer made is found: nothing to add (netsh
	// would happily add a duplicate), and close deletes exactly it.
	store.values["{upstream}"] = storeUpstreamRule
	if p, err := w.PlanOpen(ctx, rule); err != nil || !p.Empty() {
		t.Fatalf("open of an open port: %v %v", stepsOf(p), err)
	}
	p, err = w.PlanClose(ctx, rule)
	if err != nil || len(p.Steps) != 1 || p.Steps[0].Description != `netsh advfirewall firewall delete rule "name=Octopus Deploy Tentacle" dir=in protocol=TCP localport=10933 remoteip=any` {
		t.Fatalf("close: %v %v", stepsOf(p), err)
	}
	// A rule of another name, port or sources is not ours.
	other := firewall.NewRule("", firewall.SinglePort(10933), []netip.Prefix{netip.MustParsePrefix("203.0.113.0/24")})
	if p, err := w.PlanOpen(ctx, other); err != nil || len(p.Steps) != 1 {
		t.Fatalf("open from one subnet: %v %v", stepsOf(p), err)
	}

	// Not elevated: one sentence.
	r = &scriptedRunner{answers: map[string]scripted{}}
	add := Command{Name: "netsh", Args: netshAddArgs(rule)}.String()
	r.answers[add] = scripted{out: "The requested operation requires elevation (Run as administrator).", exit: 1}
	w = &Windows{run: r, store: &memoryRuleStore{values: map[string]string{}}}
	p, err = w.PlanOpen(ctx, rule)
	if err != nil {
		t.Fatal(err)
	}
	err = p.Apply(ctx, nil)
	if ue, ok := err.(*firewall.UserError); !ok || !strings.Contains(ue.Msg, "administrator rights") {
		t.Fatalf("got %v", err)
	}
}

// A netsh that exits 0 without adding the rule (Wine's is such a stub) is a
// failure: the rule is read back from the store, and it is not there.
// When netsh does store the rule, the same open succeeds.
func TestWindowsVerifiesAfterNetsh(t *testing.T) {
	ctx := context.Background()
	rule := firewall.NewRule("", firewall.SinglePort(10933), nil)
	store := &memoryRuleStore{values: map[string]string{}}
	w := &Windows{run: &scriptedRunner{}, store: store}
	p, err := w.PlanOpen(ctx, rule)
	if err != nil {
		t.Fatal(err)
	}
	err = firewall.ApplyAndVerify(ctx, w, p, nil)
	if ue, ok := err.(*firewall.UserError); !ok || !strings.Contains(ue.Msg, "reported success") || !strings.Contains(ue.Msg, "netsh advfirewall firewall add rule") {
		t.Fatalf("stub netsh: got %v", err)
	}

	// A netsh that stores what it is told, in the store's syntax.
	real := &scriptedRunner{onRun: func(c Command) {
		if slices.Contains(c.Args, "add") {
			store.values["{new}"] = storeUpstreamRule
		} else if slices.Contains(c.Args, "delete") {
			delete(store.values, "{new}")
		}
	}}
	w = &Windows{run: real, store: store}
	for _, action := range []firewall.Action{firewall.Open, firewall.Close} {
		plan := w.PlanOpen
		if action == firewall.Close {
			plan = w.PlanClose
		}
		p, err := plan(ctx, rule)
		if err != nil || len(p.Steps) != 1 {
			t.Fatalf("%s: %v %v", action, stepsOf(p), err)
		}
		if err := firewall.ApplyAndVerify(ctx, w, p, nil); err != nil {
			t.Fatalf("%s: %v", action, err)
		}
	}
}
