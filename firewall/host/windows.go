package host

import (
	"context"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/tentacle-go/tentacle/firewall"
)

// Windows is the Windows Firewall backend, through `netsh advfirewall
// firewall`, as upstream Tentacle's installer does (same rule name, so a
// rule the upstream installer made is found and left alone). This file
// builds on every platform so that its arguments are tested everywhere.
//
// netsh's listing is localised; parseNetshRules reads the English labels,
// which is what Windows Server images in the clouds print.
type Windows struct{ run Runner }

// NewWindows drives netsh through r.
func NewWindows(r Runner) *Windows { return &Windows{run: r} }

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

// netshShowArgs list the rules with a name, in the verbose form that
// includes ports and addresses.
func netshShowArgs(name string) []string {
	return []string{"advfirewall", "firewall", "show", "rule", "name=" + name, "dir=in", "verbose"}
}

// parseNetshRules reads `netsh advfirewall firewall show rule … verbose`:
// blocks of "Label: value" lines, each starting with "Rule Name:".
func parseNetshRules(out string) []firewall.Rule {
	var rules []firewall.Rule
	var fields map[string]string
	flush := func() {
		if fields == nil {
			return
		}
		defer func() { fields = nil }()
		if !strings.EqualFold(fields["Direction"], "In") || !strings.EqualFold(fields["Action"], "Allow") || !strings.EqualFold(fields["Protocol"], "TCP") {
			return
		}
		ports, err := firewall.ParsePortRange(fields["LocalPort"])
		if err != nil {
			return
		}
		sources, ok := parseNetshAddresses(fields["RemoteIP"])
		if !ok {
			return
		}
		r := firewall.NewRule(fields["Rule Name"], ports, sources)
		r.Description = fields["Description"]
		if !strings.EqualFold(fields["Enabled"], "Yes") {
			r.Location = "Windows Firewall (disabled)"
		} else {
			r.Location = "Windows Firewall"
		}
		rules = append(rules, r)
	}
	for _, line := range strings.Split(strings.ReplaceAll(out, "\r\n", "\n"), "\n") {
		key, value, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		key, value = strings.TrimSpace(key), strings.TrimSpace(value)
		if key == "Rule Name" {
			flush()
			fields = map[string]string{}
		}
		if fields != nil {
			fields[key] = value
		}
	}
	flush()
	return rules
}

// parseNetshAddresses reads RemoteIP: "Any", or a comma list of addresses,
// address/mask-length and address/dotted-mask (netsh prints IPv4 subnets
// as 10.0.0.0/255.255.255.0).
func parseNetshAddresses(s string) ([]netip.Prefix, bool) {
	if s == "" || strings.EqualFold(s, "Any") {
		return nil, true
	}
	var out []netip.Prefix
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		addr, mask, hasMask := strings.Cut(part, "/")
		a, err := netip.ParseAddr(addr)
		if err != nil {
			return nil, false
		}
		bits := a.BitLen()
		if hasMask {
			if n, err := strconv.Atoi(mask); err == nil {
				bits = n
			} else if m, err := netip.ParseAddr(mask); err == nil && m.Is4() {
				b := m.As4()
				bits = 0
				for _, x := range b {
					for ; x&0x80 != 0; x <<= 1 {
						bits++
					}
				}
			} else {
				return nil, false
			}
		}
		p, err := a.Prefix(bits)
		if err != nil {
			return nil, false
		}
		out = append(out, p)
	}
	return out, true
}

func (w *Windows) rules(ctx context.Context, name string) ([]firewall.Rule, error) {
	out, err := w.run.Run(ctx, "netsh", netshShowArgs(name)...)
	if err != nil {
		// netsh exits 1 with "No rules match the specified criteria."
		// when there is no rule of that name.
		if ce, ok := err.(*CommandError); ok && ce.ExitCode == 1 && !needsRoot().MatchString(ce.Stdout+ce.Stderr) {
			return nil, nil
		}
		return nil, explain(err)
	}
	return parseNetshRules(string(out)), nil
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

// List lists the inbound rules named DefaultRuleName; netsh cannot list
// by anything but name without listing every rule on the machine.
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
