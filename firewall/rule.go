// Package firewall is the one model of "let the Octopus Server reach this
// Tentacle" shared by every firewall tentacle can drive: the machine's own
// (firewall/host: nftables, iptables, ufw, firewalld, Windows Firewall) and
// the cloud's (firewall/aws security groups, firewall/azure network security
// groups).
//
// Every backend works in two steps: it plans (reads the current state and
// decides what, if anything, has to change) and then applies that plan.
// --dry-run prints the plan without applying it, and a second identical run
// plans nothing, which is what makes the commands safe to run on every boot.
package firewall

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
)

// DefaultRuleName is the name upstream Tentacle gives its Windows Firewall
// rule; every backend uses it so that one name finds the rule everywhere.
const DefaultRuleName = "Octopus Deploy Tentacle"

// maxRuleNameLength keeps names within every backend's limit once turned
// into a comment, a description or an Azure rule name (80 characters,
// including the port suffix).
const maxRuleNameLength = 64

// Direction is where the traffic goes. Only inbound rules exist today: a
// Tentacle needs its port reachable, never the reverse.
type Direction string

// Inbound is traffic to this machine.
const Inbound Direction = "Inbound"

// Protocol is the transport protocol. Halibut runs over TCP only.
type Protocol string

// TCP is the only protocol tentacle opens.
const TCP Protocol = "TCP"

// Rule is one "allow inbound TCP to these ports from these sources".
type Rule struct {
	// Name identifies the rule in the backend (comment, description, rule
	// name), so that close and list find what open made.
	Name      string
	Direction Direction
	Protocol  Protocol
	Ports     PortRange
	// Sources are the networks allowed in; AnySource (both address
	// families' /0) when not restricted.
	Sources     []netip.Prefix
	Description string
	// Location is where a listed rule lives (a chain, a zone, a security
	// group, a network security group). Set by List only.
	Location string `json:",omitempty"`
}

// AnySource is "from anywhere": every IPv4 and every IPv6 address.
var AnySource = []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0"), netip.MustParsePrefix("::/0")}

// NewRule is an inbound TCP rule with the default name and description,
// from anywhere unless sources are given.
func NewRule(name string, ports PortRange, sources []netip.Prefix) Rule {
	if name == "" {
		name = DefaultRuleName
	}
	if len(sources) == 0 {
		sources = slices.Clone(AnySource)
	}
	return Rule{
		Name:        name,
		Direction:   Inbound,
		Protocol:    TCP,
		Ports:       ports,
		Sources:     SortPrefixes(sources),
		Description: "Lets the Octopus Server reach the Tentacle",
	}
}

// Validate says, in one sentence, what is wrong with r.
func (r Rule) Validate() error {
	if err := ValidateName(r.Name); err != nil {
		return err
	}
	if r.Direction != Inbound {
		return Userf("Only inbound rules are supported, not %q.", r.Direction)
	}
	if r.Protocol != TCP {
		return Userf("Only TCP rules are supported, not %q.", r.Protocol)
	}
	if r.Ports.First == 0 || r.Ports.Last < r.Ports.First {
		return Userf("The port range %s is not valid: give a port from 1 to 65535 or a range such as 10933-10940.", r.Ports)
	}
	if len(r.Sources) == 0 {
		return Userf("The rule has no sources: give at least one CIDR, or none for anywhere.")
	}
	return nil
}

// ValidateName accepts names every backend can store unchanged and that need
// no quoting beyond spaces: letters, digits, space and . _ - : ( ).
func ValidateName(name string) error {
	if name == "" {
		return Userf("The rule name is empty: give a name such as --name=%q.", DefaultRuleName)
	}
	if len(name) > maxRuleNameLength {
		return Userf("The rule name %q is longer than %d characters.", name, maxRuleNameLength)
	}
	for _, c := range name {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune(" ._-:()", c)
		if !ok {
			return Userf("The rule name %q contains %q: use letters, digits, spaces and . _ - : ( ) only.", name, c)
		}
	}
	return nil
}

// AnyIPv4 and AnyIPv6 report whether r is open to a whole address family.
func (r Rule) AnyIPv4() bool { return slices.Contains(r.Sources, AnySource[0]) }
func (r Rule) AnyIPv6() bool { return slices.Contains(r.Sources, AnySource[1]) }

// FromAnywhere reports whether r admits every address of both families.
func (r Rule) FromAnywhere() bool { return r.AnyIPv4() && r.AnyIPv6() }

// SourcesText is the sources for people: "anywhere" or a comma list.
func (r Rule) SourcesText() string {
	if r.FromAnywhere() && len(r.Sources) == 2 {
		return "anywhere"
	}
	parts := make([]string, len(r.Sources))
	for i, p := range r.Sources {
		parts[i] = p.String()
	}
	return strings.Join(parts, ", ")
}

// String is the rule for people: `TCP port 10933 from anywhere ("Octopus Deploy Tentacle")`.
func (r Rule) String() string {
	return fmt.Sprintf("%s %s from %s (%q)", r.Protocol, r.Ports.Phrase(), r.SourcesText(), r.Name)
}

// PortRange is a single port (First == Last) or an inclusive range.
type PortRange struct{ First, Last uint16 }

// SinglePort is the range holding only p.
func SinglePort(p uint16) PortRange { return PortRange{p, p} }

// ParsePortRange reads "10933", "10933-10940" or "10933:10940".
func ParsePortRange(s string) (PortRange, error) {
	s = strings.TrimSpace(s)
	bad := Userf("The port %q is not valid: give a TCP port from 1 to 65535 (e.g. --port=10933) or a range (e.g. --port=10933-10940).", s)
	first, last, isRange := strings.Cut(s, "-")
	if !isRange {
		first, last, isRange = strings.Cut(s, ":")
	}
	a, err := parsePort(first)
	if err != nil {
		return PortRange{}, bad
	}
	if !isRange {
		return SinglePort(a), nil
	}
	b, err := parsePort(last)
	if err != nil || b < a {
		return PortRange{}, bad
	}
	return PortRange{a, b}, nil
}

func parsePort(s string) (uint16, error) {
	n, err := strconv.ParseUint(strings.TrimSpace(s), 10, 16)
	if err != nil || n == 0 {
		return 0, fmt.Errorf("not a port: %q", s)
	}
	return uint16(n), nil
}

// IsSingle reports whether the range is one port.
func (p PortRange) IsSingle() bool { return p.First == p.Last }

// Contains reports whether port is in the range.
func (p PortRange) Contains(port uint16) bool { return p.First <= port && port <= p.Last }

// String is "10933" or "20000-20010", the form --port takes.
func (p PortRange) String() string { return p.Join("-") }

// Join is the range with sep between its ends ("20000:20010" for iptables).
func (p PortRange) Join(sep string) string {
	if p.IsSingle() {
		return strconv.Itoa(int(p.First))
	}
	return strconv.Itoa(int(p.First)) + sep + strconv.Itoa(int(p.Last))
}

// Phrase is "port 10933" or "ports 20000-20010".
func (p PortRange) Phrase() string {
	if p.IsSingle() {
		return "port " + p.String()
	}
	return "ports " + p.String()
}

// MarshalText makes JSON show the range as --port takes it.
func (p PortRange) MarshalText() ([]byte, error) { return []byte(p.String()), nil }

// UnmarshalText is the reverse of MarshalText.
func (p *PortRange) UnmarshalText(b []byte) error {
	r, err := ParsePortRange(string(b))
	*p = r
	return err
}

// ParseSources reads --source values: CIDRs, or single addresses (taken as
// /32 or /128). A CIDR with host bits set is refused rather than silently
// widened or narrowed: the user meant one of two different things.
func ParseSources(values []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, v := range values {
		v = strings.TrimSpace(v)
		var p netip.Prefix
		if strings.Contains(v, "/") {
			var err error
			p, err = netip.ParsePrefix(v)
			if err != nil {
				return nil, Userf("The source %q is not a CIDR: give a network such as 203.0.113.0/24, 2001:db8::/64, or a single address such as 203.0.113.10.", v)
			}
			if p.Masked() != p {
				return nil, Userf("The source %s has bits set past its prefix length: did you mean %s (the network) or %s (the one address)?", v, p.Masked(), netip.PrefixFrom(p.Addr(), p.Addr().BitLen()))
			}
		} else {
			a, err := netip.ParseAddr(v)
			if err != nil || a.Zone() != "" {
				return nil, Userf("The source %q is not a CIDR: give a network such as 203.0.113.0/24, 2001:db8::/64, or a single address such as 203.0.113.10.", v)
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		if p.Addr().Is4In6() {
			return nil, Userf("The source %s is an IPv4-mapped IPv6 address: give it as IPv4 (%s).", v, p.Addr().Unmap())
		}
		if !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	return SortPrefixes(out), nil
}

// SortPrefixes orders prefixes IPv4 first, then by address and length, so
// that plans and listings are stable.
func SortPrefixes(ps []netip.Prefix) []netip.Prefix {
	slices.SortFunc(ps, func(a, b netip.Prefix) int {
		if c := a.Addr().Compare(b.Addr()); c != 0 {
			return c
		}
		return a.Bits() - b.Bits()
	})
	return slices.Compact(ps)
}

// SamePrefixSet reports whether a and b hold the same networks.
func SamePrefixSet(a, b []netip.Prefix) bool {
	return slices.Equal(SortPrefixes(slices.Clone(a)), SortPrefixes(slices.Clone(b)))
}

// MergeListed joins listed rules that differ only in their sources (a
// backend that stores one entry per source or per address family lists them
// one by one) so that a rule opened once is listed once.
func MergeListed(rules []Rule) []Rule {
	var out []Rule
	for _, r := range rules {
		i := slices.IndexFunc(out, func(o Rule) bool {
			return o.Name == r.Name && o.Ports == r.Ports && o.Location == r.Location && o.Description == r.Description
		})
		if i < 0 {
			r.Sources = SortPrefixes(slices.Clone(r.Sources))
			out = append(out, r)
			continue
		}
		out[i].Sources = SortPrefixes(append(out[i].Sources, r.Sources...))
	}
	return out
}
