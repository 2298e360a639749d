package host

import (
	"context"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/tentacle-go/tentacle/firewall"
)

// Windows is the Windows Firewall backend. It changes rules with `netsh
// advfirewall firewall`, as upstream Tentacle's installer does (same rule
// name, so a rule the upstream installer made is found and left alone), and
// reads them from the firewall's own rule store in the registry,
// HKLM\SYSTEM\CurrentControlSet\Services\SharedAccess\Parameters\FirewallPolicy\FirewallRules,
// whose values have a fixed syntax that no Windows language translates
// (MS-GPFAS 2.2.2.19), where netsh's listing is localised. This file builds
// on every platform so that its arguments and parsing are tested everywhere.
type Windows struct {
	run   Runner
	store windowsRuleStore
}

// windowsRuleStore gives the data of every value of the rule store: one
// firewall rule each, in the registry's syntax.
type windowsRuleStore interface {
	ruleValues() ([]string, error)
}

// NewWindows drives netsh through r and reads this machine's rule store.
func NewWindows(r Runner) *Windows { return &Windows{run: r, store: localRuleStore()} }

func (w *Windows) Name() string { return "windows" }

// netshRemoteIP is the remoteip value: anywhere is netsh's "any".
func netshRemoteIP(rule firewall.Rule) string {
	if rule.FromAnywhere() && len(rule.Sources) == 2 {
		return "any"
	}
	parts := make([]string, len(rule.Sources))
	for i, p := range rule.Sources {
		parts[i] = p.String()
	}
	return strings.Join(parts, ",")
}

// netshAddArgs are the arguments of the netsh command that adds rule.
func netshAddArgs(rule firewall.Rule) []string {
	args := []string{"advfirewall", "firewall", "add", "rule", "name=" + rule.Name, "dir=in", "action=allow",
		"protocol=TCP", "localport=" + rule.Ports.String()}
	if ip := netshRemoteIP(rule); ip != "any" {
		args = append(args, "remoteip="+ip)
	}
	if rule.Description != "" {
		args = append(args, "description="+rule.Description)
	}
	return args
}

// netshDeleteArgs delete exactly the rules with rule's name, port and
// remote addresses, not every rule of that name.
func netshDeleteArgs(rule firewall.Rule) []string {
	return []string{"advfirewall", "firewall", "delete", "rule", "name=" + rule.Name, "dir=in",
		"protocol=TCP", "localport=" + rule.Ports.String(), "remoteip=" + netshRemoteIP(rule)}
}

// parseWindowsRule reads one value of the rule store,
//
//	v2.30|Action=Allow|Active=TRUE|Dir=In|Protocol=6|LPort=10933|RA4=10.0.0.0/255.255.255.0|Name=Octopus Deploy Tentacle|Desc=...|
//
// ok is false for anything but an inbound TCP allow of one port or port
// range whose remote addresses are addresses or subnets: the shapes netsh
// makes of the rules this backend adds. No RA4 or RA6 field means any
// remote address.
func parseWindowsRule(value string) (rule firewall.Rule, ok bool) {
	fields := strings.Split(strings.TrimSuffix(value, "|"), "|")
	if len(fields) == 0 || !strings.HasPrefix(fields[0], "v2.") {
		return firewall.Rule{}, false
	}
	var action, dir, protocol, name, desc, active string
	var lports []string
	var sources []netip.Prefix
	for _, f := range fields[1:] {
		key, val, _ := strings.Cut(f, "=")
		switch key {
		case "Action":
			action = val
		case "Active":
			active = val
		case "Dir":
			dir = val
		case "Protocol":
			protocol = val
		case "LPort", "LPort2_10":
			lports = append(lports, val)
		case "RA4", "RA6":
			p, ok := parseWindowsAddress(val)
			if !ok {
				return firewall.Rule{}, false
			}
			sources = append(sources, p)
		case "Name":
			name = val
		case "Desc":
			desc = val
		case "LA4", "LA6", "RPort", "RPort2_10", "App", "Svc", "IF", "IFType":
			// Narrower than "this port from these addresses": not a rule
			// this backend adds.
			return firewall.Rule{}, false
		}
	}
	if action != "Allow" || dir != "In" || protocol != "6" || len(lports) != 1 {
		return firewall.Rule{}, false
	}
	ports, err := firewall.ParsePortRange(lports[0])
	if err != nil {
		return firewall.Rule{}, false
	}
	rule = firewall.NewRule(name, ports, sources)
	rule.Name, rule.Description = name, desc
	rule.Location = "Windows Firewall"
	if active != "TRUE" {
		rule.Location = "Windows Firewall (disabled)"
	}
	return rule, true
}

// parseWindowsAddress reads one RA4 or RA6 entry: an address, or a subnet
// as address/prefix-length or (IPv4) address/dotted-mask. Ranges
// (a-b) and keywords (LocalSubnet, ...) give ok=false.
func parseWindowsAddress(s string) (netip.Prefix, bool) {
	addr, mask, hasMask := strings.Cut(strings.TrimSpace(s), "/")
	a, err := netip.ParseAddr(addr)
	if err != nil {
		return netip.Prefix{}, false
	}
	bits := a.BitLen()
	if hasMask {
		if n, err := strconv.Atoi(mask); err == nil {
			bits = n
		} else if m, err := netip.ParseAddr(mask); err == nil && m.Is4() && a.Is4() {
			b := m.As4()
			bits = 0
			for _, x := range b {
				for ; x&0x80 != 0; x <<= 1 {
					bits++
				}
			}
		} else {
			return netip.Prefix{}, false
		}
	}
	p, err := a.Prefix(bits)
	if err != nil {
		return netip.Prefix{}, false
	}
	return p, true
}

// rules are the rules of the store named name.
func (w *Windows) rules(_ context.Context, name string) ([]firewall.Rule, error) {
	values, err := w.store.ruleValues()
	if err != nil {
		return nil, err
	}
	var out []firewall.Rule
	for _, v := range values {
		if r, ok := parseWindowsRule(v); ok && r.Name == name {
			out = append(out, r)
		}
	}
	return out, nil
}

func (w *Windows) matching(rules []firewall.Rule, rule firewall.Rule) bool {
	return slices.ContainsFunc(rules, func(r firewall.Rule) bool {
		return r.Name == rule.Name && r.Ports == rule.Ports && firewall.SamePrefixSet(r.Sources, rule.Sources)
	})
}

func (w *Windows) PlanOpen(ctx context.Context, rule firewall.Rule) (*firewall.Plan, error) {
	if err := rule.Validate(); err != nil {
		return nil, err
	}
	existing, err := w.rules(ctx, rule.Name)
	if err != nil {
		return nil, err
	}
	plan := &firewall.Plan{Action: firewall.Open, Rule: rule, Firewall: w.Name()}
	if !w.matching(existing, rule) {
		// netsh adds a second rule on a second add, so the check above is
		// what keeps this idempotent.
		plan.Steps = append(plan.Steps, step(w.run, Command{Name: "netsh", Args: netshAddArgs(rule)}))
	}
	return plan, nil
}

func (w *Windows) PlanClose(ctx context.Context, rule firewall.Rule) (*firewall.Plan, error) {
	if err := rule.Validate(); err != nil {
		return nil, err
	}
	existing, err := w.rules(ctx, rule.Name)
	if err != nil {
		return nil, err
	}
	plan := &firewall.Plan{Action: firewall.Close, Rule: rule, Firewall: w.Name()}
	if w.matching(existing, rule) {
		plan.Steps = append(plan.Steps, step(w.run, Command{Name: "netsh", Args: netshDeleteArgs(rule)}))
	}
	return plan, nil
}

// List lists the inbound rules named DefaultRuleName.
func (w *Windows) List(ctx context.Context) ([]firewall.Rule, error) {
	return w.ListNamed(ctx, firewall.DefaultRuleName)
}

// ListNamed lists the inbound rules with this name.
func (w *Windows) ListNamed(ctx context.Context, name string) ([]firewall.Rule, error) {
	rules, err := w.rules(ctx, name)
	if err != nil {
		return nil, err
	}
	return firewall.MergeListed(rules), nil
}
