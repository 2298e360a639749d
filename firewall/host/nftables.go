package host

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"slices"
	"strconv"

	"github.com/tentacle-go/tentacle/firewall"
)

// tentacle's rules live in a table of their own, so that they never reorder,
// replace or depend on the user's ruleset, and `nft delete table inet
// tentacle` removes every trace. The chain runs just before the usual filter
// priority. nftables evaluates every base chain on a hook, and a drop in any
// of them is final: an accept here cannot override a drop policy in another
// table, which is why planning looks for one and says so (Plan.Notes).
const (
	nftFamily   = "inet"
	nftTable    = "tentacle"
	nftChain    = "input"
	nftChainDef = "{ type filter hook input priority filter - 10 ; policy accept ; }"
)

// NFTables is the nftables backend.
type NFTables struct{ run Runner }

// NewNFTables drives nft through r.
func NewNFTables(r Runner) *NFTables { return &NFTables{run: r} }

func (n *NFTables) Name() string { return "nftables" }

func (n *NFTables) nft(args ...string) Command { return Command{Name: "nft", Args: args} }

// nftRule is one of our rules as nft lists it.
type nftRule struct {
	handle int
	rule   firewall.Rule
}

// nftState is what planning needs from `nft -j list ruleset`.
type nftState struct {
	haveTable, haveChain bool
	ours                 []nftRule
	// blockers are other tables' input chains whose policy is drop.
	blockers []string
}

func (n *NFTables) state(ctx context.Context) (*nftState, error) {
	out, err := n.run.Run(ctx, "nft", "-j", "list", "ruleset")
	if err != nil {
		return nil, explain(err)
	}
	var doc struct {
		Nftables []map[string]json.RawMessage `json:"nftables"`
	}
	if err := json.Unmarshal(out, &doc); err != nil {
		return nil, fmt.Errorf("reading `nft -j list ruleset`: %w", err)
	}
	st := &nftState{}
	for _, obj := range doc.Nftables {
		switch {
		case obj["table"] != nil:
			var t struct{ Family, Name string }
			json.Unmarshal(obj["table"], &t)
			if t.Family == nftFamily && t.Name == nftTable {
				st.haveTable = true
			}
		case obj["chain"] != nil:
			var c struct{ Family, Table, Name, Hook, Policy string }
			json.Unmarshal(obj["chain"], &c)
			if c.Family == nftFamily && c.Table == nftTable && c.Name == nftChain {
				st.haveChain = true
				continue
			}
			if c.Hook == "input" && c.Policy == "drop" && (c.Family == "inet" || c.Family == "ip" || c.Family == "ip6") {
				st.blockers = append(st.blockers, c.Family+" "+c.Table+" "+c.Name)
			}
		case obj["rule"] != nil:
			var r nftJSONRule
			json.Unmarshal(obj["rule"], &r)
			if r.Family != nftFamily || r.Table != nftTable || r.Chain != nftChain {
				continue
			}
			if rule, ok := r.toRule(); ok {
				st.ours = append(st.ours, nftRule{handle: r.Handle, rule: rule})
			}
		}
	}
	return st, nil
}

type nftJSONRule struct {
	Family, Table, Chain, Comment string
	Handle                        int
	Expr                          []map[string]json.RawMessage
}

type nftMatch struct {
	Op   string
	Left struct {
		Payload *struct{ Protocol, Field string }
		Meta    *struct{ Key string }
	}
	Right json.RawMessage
}

// toRule reads back a rule of the shape nftArgs writes:
// [meta nfproto F | ip saddr P | ip6 saddr P] tcp dport N[-M] accept comment "…".
// Anything else in the chain is left alone and not listed.
func (r nftJSONRule) toRule() (firewall.Rule, bool) {
	var ports firewall.PortRange
	var source netip.Prefix
	accept := false
	for _, e := range r.Expr {
		if _, ok := e["accept"]; ok {
			accept = true
			continue
		}
		raw, ok := e["match"]
		if !ok {
			return firewall.Rule{}, false
		}
		var m nftMatch
		if json.Unmarshal(raw, &m) != nil || m.Op != "==" {
			return firewall.Rule{}, false
		}
		switch {
		case m.Left.Meta != nil && m.Left.Meta.Key == "nfproto":
			var fam string
			json.Unmarshal(m.Right, &fam)
			switch fam {
			case "ipv4":
				source = firewall.AnySource[0]
			case "ipv6":
				source = firewall.AnySource[1]
			default:
				return firewall.Rule{}, false
			}
		case m.Left.Payload != nil && m.Left.Payload.Protocol == "tcp" && m.Left.Payload.Field == "dport":
			p, ok := nftPorts(m.Right)
			if !ok {
				return firewall.Rule{}, false
			}
			ports = p
		case m.Left.Payload != nil && (m.Left.Payload.Protocol == "ip" || m.Left.Payload.Protocol == "ip6") && m.Left.Payload.Field == "saddr":
			p, ok := nftPrefix(m.Right)
			if !ok {
				return firewall.Rule{}, false
			}
			source = p
		default:
			return firewall.Rule{}, false
		}
	}
	if !accept || ports.First == 0 {
		return firewall.Rule{}, false
	}
	if !source.IsValid() {
		// No family or address match: both families, from anywhere.
		rule := firewall.NewRule(r.Comment, ports, nil)
		rule.Name, rule.Description = r.Comment, ""
		return rule, true
	}
	rule := firewall.NewRule(r.Comment, ports, []netip.Prefix{source})
	rule.Name, rule.Description = r.Comment, ""
	return rule, true
}

func nftPorts(raw json.RawMessage) (firewall.PortRange, bool) {
	var single uint16
	if json.Unmarshal(raw, &single) == nil && single != 0 {
		return firewall.SinglePort(single), true
	}
	var rng struct{ Range [2]uint16 }
	if json.Unmarshal(raw, &rng) == nil && rng.Range[0] != 0 {
		return firewall.PortRange{First: rng.Range[0], Last: rng.Range[1]}, true
	}
	return firewall.PortRange{}, false
}

func nftPrefix(raw json.RawMessage) (netip.Prefix, bool) {
	var addr string
	if json.Unmarshal(raw, &addr) == nil {
		a, err := netip.ParseAddr(addr)
		return netip.PrefixFrom(a, a.BitLen()), err == nil
	}
	var p struct {
		Prefix struct {
			Addr string
			Len  int
		}
	}
	if json.Unmarshal(raw, &p) == nil {
		pf, err := netip.ParsePrefix(p.Prefix.Addr + "/" + strconv.Itoa(p.Prefix.Len))
		return pf, err == nil
	}
	return netip.Prefix{}, false
}

// nftMatchArgs is the source match for one prefix.
func nftMatchArgs(p netip.Prefix) []string {
	switch {
	case p == firewall.AnySource[0]:
		return []string{"meta", "nfproto", "ipv4"}
	case p == firewall.AnySource[1]:
		return []string{"meta", "nfproto", "ipv6"}
	case p.Addr().Is4():
		return []string{"ip", "saddr", p.String()}
	default:
		return []string{"ip6", "saddr", p.String()}
	}
}

func (n *NFTables) addRule(rule firewall.Rule, p netip.Prefix) Command {
	args := []string{"add", "rule", nftFamily, nftTable, nftChain}
	args = append(args, nftMatchArgs(p)...)
	// nft joins its arguments and parses them again, so the comment needs
	// its double quotes inside the argument.
	args = append(args, "tcp", "dport", rule.Ports.String(), "accept", "comment", strconv.Quote(rule.Name))
	return n.nft(args...)
}

func (n *NFTables) PlanOpen(ctx context.Context, rule firewall.Rule) (*firewall.Plan, error) {
	if err := rule.Validate(); err != nil {
		return nil, err
	}
	st, err := n.state(ctx)
	if err != nil {
		return nil, err
	}
	plan := &firewall.Plan{Action: firewall.Open, Rule: rule, Firewall: n.Name()}
	var adds []firewall.Step
	for _, src := range rule.Sources {
		if !st.has(rule, src) {
			adds = append(adds, step(n.run, n.addRule(rule, src)))
		}
	}
	if len(adds) > 0 {
		if !st.haveTable {
			plan.Steps = append(plan.Steps, step(n.run, n.nft("add", "table", nftFamily, nftTable)))
		}
		if !st.haveChain {
			plan.Steps = append(plan.Steps, step(n.run, n.nft("add", "chain", nftFamily, nftTable, nftChain, nftChainDef)))
		}
		plan.Steps = append(plan.Steps, adds...)
	}
	for _, b := range st.blockers {
		plan.Note("nftables chain `%s` drops incoming traffic by default, and nftables never lets an accept in one table (here `%s %s`) override a drop in another: also allow the port in that chain, e.g. `nft insert rule %s tcp dport %s accept`.",
			b, nftFamily, nftTable, b, rule.Ports)
	}
	return plan, nil
}

func (st *nftState) has(rule firewall.Rule, src netip.Prefix) bool {
	for _, r := range st.ours {
		if r.rule.Name == rule.Name && r.rule.Ports == rule.Ports && len(r.rule.Sources) == 1 && r.rule.Sources[0] == src {
			return true
		}
		// A rule without a family match covers both /0s.
		if r.rule.Name == rule.Name && r.rule.Ports == rule.Ports && len(r.rule.Sources) == 2 && r.rule.FromAnywhere() && (src == firewall.AnySource[0] || src == firewall.AnySource[1]) {
			return true
		}
	}
	return false
}

func (n *NFTables) PlanClose(ctx context.Context, rule firewall.Rule) (*firewall.Plan, error) {
	if err := rule.Validate(); err != nil {
		return nil, err
	}
	st, err := n.state(ctx)
	if err != nil {
		return nil, err
	}
	plan := &firewall.Plan{Action: firewall.Close, Rule: rule, Firewall: n.Name()}
	for _, r := range st.ours {
		if r.rule.Name != rule.Name || r.rule.Ports != rule.Ports {
			continue
		}
		covered := true
		for _, s := range r.rule.Sources {
			covered = covered && slices.Contains(rule.Sources, s)
		}
		if covered {
			plan.Steps = append(plan.Steps, step(n.run, n.nft("delete", "rule", nftFamily, nftTable, nftChain, "handle", strconv.Itoa(r.handle))))
		}
	}
	return plan, nil
}

func (n *NFTables) List(ctx context.Context) ([]firewall.Rule, error) {
	st, err := n.state(ctx)
	if err != nil {
		return nil, err
	}
	var rules []firewall.Rule
	for _, r := range st.ours {
		r.rule.Location = "table " + nftFamily + " " + nftTable + ", chain " + nftChain
		rules = append(rules, r.rule)
	}
	return firewall.MergeListed(rules), nil
}
