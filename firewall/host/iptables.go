package host

import (
	"context"
	"net/netip"
	"slices"
	"strings"

	"github.com/tentacle-go/tentacle/firewall"
)

// iptablesChain holds tentacle's rules, one jump from INPUT leads to it: the
// user's own INPUT rules are never reordered or edited, and flushing and
// deleting this chain (plus the jump) removes every trace. The jump goes
// first in INPUT so that a later DROP or REJECT there cannot shadow it.
const iptablesChain = "OCTOPUS-TENTACLE"

// IPTables is the iptables backend: iptables for IPv4, ip6tables for IPv6.
type IPTables struct{ run Runner }

// NewIPTables drives iptables and ip6tables through r.
func NewIPTables(r Runner) *IPTables { return &IPTables{run: r} }

func (t *IPTables) Name() string { return "iptables" }

// ipFamily is one of the two tools.
type ipFamily struct {
	tool string
	any  netip.Prefix
	is4  bool
}

var ipFamilies = []ipFamily{
	{tool: "iptables", any: firewall.AnySource[0], is4: true},
	{tool: "ip6tables", any: firewall.AnySource[1]},
}

func (f ipFamily) holds(p netip.Prefix) bool { return p.Addr().Is4() == f.is4 }

// iptState is one family's filter table as `-S` prints it.
type iptState struct {
	haveChain, haveJump bool
	ours                []iptRule
}

type iptRule struct {
	spec []string // the rule without "-A CHAIN"
	rule firewall.Rule
}

func (t *IPTables) state(ctx context.Context, f ipFamily) (*iptState, error) {
	out, err := t.run.Run(ctx, f.tool, "-w", "-S")
	if err != nil {
		return nil, explain(err)
	}
	st := &iptState{}
	for _, line := range strings.Split(string(out), "\n") {
		words := splitWords(line)
		switch {
		case len(words) == 2 && words[0] == "-N" && words[1] == iptablesChain:
			st.haveChain = true
		case slices.Equal(words, []string{"-A", "INPUT", "-j", iptablesChain}):
			st.haveJump = true
		case len(words) > 2 && words[0] == "-A" && words[1] == iptablesChain:
			if rule, ok := parseIPTablesRule(words[2:], f); ok {
				st.ours = append(st.ours, iptRule{spec: words[2:], rule: rule})
			}
		}
	}
	return st, nil
}

// iptablesSpec is the rule as tentacle writes it, and as `-S` prints it back.
func iptablesSpec(rule firewall.Rule, src netip.Prefix) []string {
	var spec []string
	if src.Bits() != 0 {
		spec = append(spec, "-s", src.String())
	}
	return append(spec, "-p", "tcp", "-m", "tcp", "--dport", rule.Ports.Join(":"),
		"-m", "comment", "--comment", rule.Name, "-j", "ACCEPT")
}

// parseIPTablesRule reads back a rule of iptablesSpec's shape.
func parseIPTablesRule(words []string, f ipFamily) (firewall.Rule, bool) {
	src := f.any
	var ports firewall.PortRange
	var name string
	accept := false
	for i := 0; i < len(words); i++ {
		next := func() string {
			if i+1 < len(words) {
				i++
				return words[i]
			}
			return ""
		}
		switch words[i] {
		case "-s":
			p, err := netip.ParsePrefix(next())
			if err != nil {
				return firewall.Rule{}, false
			}
			src = p
		case "-p":
			if next() != "tcp" {
				return firewall.Rule{}, false
			}
		case "-m":
			next()
		case "--dport":
			p, err := firewall.ParsePortRange(next())
			if err != nil {
				return firewall.Rule{}, false
			}
			ports = p
		case "--comment":
			name = next()
		case "-j":
			accept = next() == "ACCEPT"
		default:
			return firewall.Rule{}, false
		}
	}
	if !accept || ports.First == 0 {
		return firewall.Rule{}, false
	}
	rule := firewall.NewRule(name, ports, []netip.Prefix{src})
	rule.Name, rule.Description = name, ""
	return rule, true
}

func (t *IPTables) states(ctx context.Context, rule *firewall.Rule, plan *firewall.Plan) (map[string]*iptState, error) {
	states := map[string]*iptState{}
	for _, f := range ipFamilies {
		needed := rule == nil || slices.ContainsFunc(rule.Sources, f.holds)
		if !needed {
			continue
		}
		var st *iptState
		var err error
		if f.is4 || t.run.Installed(f.tool) {
			st, err = t.state(ctx, f)
		}
		if !f.is4 && (st == nil && err == nil || isNoIPv6(err)) {
			// A machine without IPv6 has nothing to open there, unless the
			// user named IPv6 sources.
			if rule != nil && slices.ContainsFunc(rule.Sources, func(p netip.Prefix) bool { return p.Addr().Is6() && p.Bits() != 0 }) {
				return nil, firewall.Userf("IPv6 sources were given but ip6tables cannot be used on this machine: give IPv4 sources only, or install ip6tables and enable IPv6.")
			}
			if plan != nil {
				plan.Note("IPv6 was left alone: ip6tables cannot be used on this machine.")
			}
			continue
		}
		if err != nil {
			return nil, err
		}
		states[f.tool] = st
	}
	return states, nil
}

// isNoIPv6 recognises ip6tables on a kernel without IPv6.
func isNoIPv6(err error) bool {
	if err == nil {
		return false
	}
	msg := strings.ToLower(err.Error())
	return strings.Contains(msg, "can't initialize ip6tables") || strings.Contains(msg, "address family not supported")
}

func (t *IPTables) PlanOpen(ctx context.Context, rule firewall.Rule) (*firewall.Plan, error) {
	if err := rule.Validate(); err != nil {
		return nil, err
	}
	plan := &firewall.Plan{Action: firewall.Open, Rule: rule, Firewall: t.Name()}
	states, err := t.states(ctx, &rule, plan)
	if err != nil {
		return nil, err
	}
	for _, f := range ipFamilies {
		st := states[f.tool]
		if st == nil {
			continue
		}
		var adds []firewall.Step
		for _, src := range rule.Sources {
			if !f.holds(src) || st.has(rule, src) {
				continue
			}
			adds = append(adds, step(t.run, Command{Name: f.tool, Args: append([]string{"-w", "-A", iptablesChain}, iptablesSpec(rule, src)...)}))
		}
		if len(adds) == 0 {
			continue
		}
		if !st.haveChain {
			plan.Steps = append(plan.Steps, step(t.run, Command{Name: f.tool, Args: []string{"-w", "-N", iptablesChain}}))
		}
		if !st.haveJump {
			plan.Steps = append(plan.Steps, step(t.run, Command{Name: f.tool, Args: []string{"-w", "-I", "INPUT", "1", "-j", iptablesChain}}))
		}
		plan.Steps = append(plan.Steps, adds...)
	}
	return plan, nil
}

func (st *iptState) has(rule firewall.Rule, src netip.Prefix) bool {
	return slices.ContainsFunc(st.ours, func(r iptRule) bool {
		return r.rule.Name == rule.Name && r.rule.Ports == rule.Ports && r.rule.Sources[0] == src
	})
}

func (t *IPTables) PlanClose(ctx context.Context, rule firewall.Rule) (*firewall.Plan, error) {
	if err := rule.Validate(); err != nil {
		return nil, err
	}
	plan := &firewall.Plan{Action: firewall.Close, Rule: rule, Firewall: t.Name()}
	states, err := t.states(ctx, &rule, nil)
	if err != nil {
		return nil, err
	}
	for _, f := range ipFamilies {
		st := states[f.tool]
		if st == nil {
			continue
		}
		for _, r := range st.ours {
			if r.rule.Name == rule.Name && r.rule.Ports == rule.Ports && slices.Contains(rule.Sources, r.rule.Sources[0]) {
				plan.Steps = append(plan.Steps, step(t.run, Command{Name: f.tool, Args: append([]string{"-w", "-D", iptablesChain}, r.spec...)}))
			}
		}
	}
	return plan, nil
}

func (t *IPTables) List(ctx context.Context) ([]firewall.Rule, error) {
	states, err := t.states(ctx, nil, nil)
	if err != nil {
		return nil, err
	}
	var rules []firewall.Rule
	for _, f := range ipFamilies {
		if st := states[f.tool]; st != nil {
			for _, r := range st.ours {
				r.rule.Location = "chain " + iptablesChain
				rules = append(rules, r.rule)
			}
		}
	}
	return firewall.MergeListed(rules), nil
}

// splitWords splits a line as iptables -S and ufw print them: words
// separated by spaces, "double" or 'single' quoted words kept whole.
func splitWords(line string) []string {
	var words []string
	var cur strings.Builder
	inWord := false
	var quote rune
	for _, c := range line {
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			} else {
				cur.WriteRune(c)
			}
		case c == '"' || c == '\'':
			quote, inWord = c, true
		case c == ' ' || c == '\t':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteRune(c)
			inWord = true
		}
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words
}
