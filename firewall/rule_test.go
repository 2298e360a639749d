package firewall

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"
)

func TestParsePortRange(t *testing.T) {
	for in, want := range map[string]PortRange{
		"10933": {10933, 10933}, " 10933 ": {10933, 10933}, "20000-20010": {20000, 20010},
		"20000:20010": {20000, 20010}, "1": {1, 1}, "65535": {65535, 65535}, "5-5": {5, 5},
	} {
		got, err := ParsePortRange(in)
		if err != nil || got != want {
			t.Errorf("ParsePortRange(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "0", "65536", "70000", "-1", "abc", "10-5", "1-", "-5", "1-2-3", "10933/tcp"} {
		_, err := ParsePortRange(in)
		var ue *UserError
		if !errors.As(err, &ue) {
			t.Errorf("ParsePortRange(%q): %v, want a UserError", in, err)
		}
	}
	if s := (PortRange{20000, 20010}).Join(":"); s != "20000:20010" {
		t.Error(s)
	}
}

func TestParseSources(t *testing.T) {
	got, err := ParseSources([]string{"2001:db8::/64", "203.0.113.10", "10.0.0.0/8", "203.0.113.10/32", "::1"})
	want := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("203.0.113.10/32"), netip.MustParsePrefix("::1/128"), netip.MustParsePrefix("2001:db8::/64")}
	if err != nil || !slices.Equal(got, want) {
		t.Fatalf("got %v, %v", got, err)
	}
	for in, msg := range map[string]string{
		"10.0.0.5/24":         "did you mean 10.0.0.0/24 (the network) or 10.0.0.5/32",
		"10.0.0.300":          "is not a CIDR",
		"example.com":         "is not a CIDR",
		"10.0.0.0/33":         "is not a CIDR",
		"fe80::1%eth0":        "is not a CIDR",
		"::ffff:10.0.0.1/128": "IPv4-mapped",
	} {
		_, err := ParseSources([]string{in})
		var ue *UserError
		if !errors.As(err, &ue) || !strings.Contains(ue.Msg, msg) {
			t.Errorf("ParseSources(%q): %v, want %q", in, err, msg)
		}
	}
}

func TestNewRuleAndValidate(t *testing.T) {
	r := NewRule("", SinglePort(10933), nil)
	if r.Name != DefaultRuleName || !r.FromAnywhere() || r.Validate() != nil || r.String() != `TCP port 10933 from anywhere ("Octopus Deploy Tentacle")` {
		t.Fatalf("%+v %v", r, r.Validate())
	}
	for _, name := range []string{"", strings.Repeat("x", 65), "a\"b", "a;b", "tab\there"} {
		if ValidateName(name) == nil {
			t.Errorf("ValidateName(%q) accepted it", name)
		}
	}
	if ValidateName("Octopus Deploy Tentacle (web-01.example): 2") != nil {
		t.Error("a reasonable name was refused")
	}
}

func TestMergeListed(t *testing.T) {
	v4 := NewRule("n", SinglePort(1), []netip.Prefix{AnySource[0]})
	v6 := NewRule("n", SinglePort(1), []netip.Prefix{AnySource[1]})
	other := NewRule("n", SinglePort(2), []netip.Prefix{AnySource[1]})
	got := MergeListed([]Rule{v6, other, v4})
	if len(got) != 2 || !got[0].FromAnywhere() || got[0].SourcesText() != "anywhere" || got[1].Ports != SinglePort(2) {
		t.Fatalf("%+v", got)
	}
}

func TestApplyStopsAndSaysWhere(t *testing.T) {
	var ran []string
	ok := func(name string) Step {
		return NewStep(name, func(context.Context) error { ran = append(ran, name); return nil })
	}
	p := &Plan{Steps: []Step{ok("a"), NewStep("b", func(context.Context) error { return Userf("No rights.") }), ok("c")}}
	err := p.Apply(context.Background(), nil)
	var ue *UserError
	if !errors.As(err, &ue) || !strings.Contains(ue.Msg, "No rights (the 1 step(s) before it were done") || !slices.Equal(ran, []string{"a"}) {
		t.Fatalf("%v, ran %v", err, ran)
	}
}
