package host

import (
	"context"
	"net/netip"
	"slices"
	"strings"

	"github.com/tentacle-go/tentacle/firewall"
)

// UFW is the ufw backend. ufw keeps its own rules file and applies it, so
// tentacle only asks ufw to add and delete rules (with the rule name as the
// comment), and reads them back with `ufw show added`, which works whether
// or not ufw is active.
type UFW struct{ run Runner }

// NewUFW drives ufw through r.
func NewUFW(r Runner) *UFW { return &UFW{run: r} }

func (u *UFW) Name() string { return "ufw" }

// ufwSource is how ufw spells a source. ufw reads both /0s as "any" and then
// adds the rule for IPv4 and IPv6 alike, so anywhere is a single rule.
func ufwSource(p netip.Prefix) string {
	if p.Bits() == 0 {
		return "any"
	}
	return p.String()
}

// ufwSources is the distinct ufw sources of a rule.
func ufwSources(rule firewall.Rule) []string {
	var out []string
	for _, p := range rule.Sources {
		if s := ufwSource(p); !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

type ufwState struct {
	active bool
	ours   []ufwRule
}

type ufwRule struct {
	source string // as ufwSource
	rule   firewall.Rule
}

func (u *UFW) state(ctx context.Context) (*ufwState, error) {
	status, err := u.run.Run(ctx, "ufw", "status")
	if err != nil {
		return nil, explain(err)
	}
	added, err := u.run.Run(ctx, "ufw", "show", "added")
	if err != nil {
		return nil, explain(err)
	}
	st := &ufwState{active: strings.Contains(string(status), "Status: active")}
	for _, line := range strings.Split(string(added), "\n") {
		if r, ok := parseUFWAdded(splitWords(line)); ok {
			st.ours = append(st.ours, r)
		}
	}
	return st, nil
}

// parseUFWAdded reads one line of `ufw show added`, which ufw prints in two
// shapes:
//
//	ufw allow 10933/tcp comment 'NAME'
//	ufw allow from 10.0.0.0/24 to any port 20000:20010 proto tcp comment 'NAME'
func parseUFWAdded(w []string) (ufwRule, bool) {
	if len(w) < 3 || w[0] != "ufw" || w[1] != "allow" {
		return ufwRule{}, false
	}
	w = w[2:]
	if len(w) > 0 && w[0] == "in" {
		w = w[1:]
	}
	source, port, proto, name := "any", "", "", ""
	for i := 0; i < len(w); i++ {
		next := func() string {
			if i+1 < len(w) {
				i++
				return w[i]
			}
			return ""
		}
		switch w[i] {
		case "from":
			source = next()
		case "to":
			if next() != "any" {
				return ufwRule{}, false
			}
		case "port":
			port = next()
		case "proto":
			proto = next()
		case "comment":
			name = next()
		default:
			if i == 0 {
				port, proto, _ = strings.Cut(w[i], "/")
				continue
			}
			return ufwRule{}, false
		}
	}
	ports, err := firewall.ParsePortRange(port)
	if proto != "tcp" || err != nil {
		return ufwRule{}, false
	}
	var sources []netip.Prefix
	if source != "any" {
		p, err := netip.ParsePrefix(source)
		if err != nil {
			a, err := netip.ParseAddr(source)
			if err != nil {
				return ufwRule{}, false
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		sources = []netip.Prefix{p}
		// ufw prints a single address without its /32 or /128.
		source = ufwSource(p)
	}
	rule := firewall.NewRule(name, ports, sources)
	rule.Name, rule.Description = name, ""
	return ufwRule{source: source, rule: rule}, true
}

func (u *UFW) ruleArgs(verb string, rule firewall.Rule, source string) Command {
	args := []string{"allow", "proto", "tcp", "from", source, "to", "any", "port", rule.Ports.Join(":")}
	if verb == "delete" {
		return Command{Name: "ufw", Args: append([]string{"delete"}, args...)}
	}
	return Command{Name: "ufw", Args: append(args, "comment", rule.Name)}
}

func (u *UFW) PlanOpen(ctx context.Context, rule firewall.Rule) (*firewall.Plan, error) {
	if err := rule.Validate(); err != nil {
		return nil, err
	}
	st, err := u.state(ctx)
	if err != nil {
		return nil, err
	}
	plan := &firewall.Plan{Action: firewall.Open, Rule: rule, Firewall: u.Name()}
	for _, src := range ufwSources(rule) {
		if !st.has(rule, src) {
			plan.Steps = append(plan.Steps, step(u.run, u.ruleArgs("add", rule, src)))
		}
	}
	if rule.AnyIPv4() != rule.AnyIPv6() {
		plan.Note("ufw cannot open a port to one whole address family only: 0.0.0.0/0 and ::/0 both mean anywhere (IPv4 and IPv6) to ufw.")
	}
	if !st.active {
		plan.Note("ufw is installed but not active, so the rule is saved but does nothing yet; tentacle does not enable ufw for you, because that also blocks every port not allowed (check SSH first, then run `ufw enable`).")
	}
	return plan, nil
}

func (st *ufwState) has(rule firewall.Rule, source string) bool {
	return slices.ContainsFunc(st.ours, func(r ufwRule) bool {
		return r.rule.Name == rule.Name && r.rule.Ports == rule.Ports && r.source == source
	})
}

func (u *UFW) PlanClose(ctx context.Context, rule firewall.Rule) (*firewall.Plan, error) {
	if err := rule.Validate(); err != nil {
		return nil, err
	}
	st, err := u.state(ctx)
	if err != nil {
		return nil, err
	}
	plan := &firewall.Plan{Action: firewall.Close, Rule: rule, Firewall: u.Name()}
	for _, src := range ufwSources(rule) {
		if st.has(rule, src) {
			plan.Steps = append(plan.Steps, step(u.run, u.ruleArgs("delete", rule, src)))
		}
	}
	return plan, nil
}

func (u *UFW) List(ctx context.Context) ([]firewall.Rule, error) {
	st, err := u.state(ctx)
	if err != nil {
		return nil, err
	}
	location := "ufw (inactive)"
	if st.active {
		location = "ufw"
	}
	var rules []firewall.Rule
	for _, r := range st.ours {
		r.rule.Location = location
		rules = append(rules, r.rule)
	}
	return firewall.MergeListed(rules), nil
}
