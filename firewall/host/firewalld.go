package host

import (
	"context"
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"strings"
	"sync"

	"github.com/tentacle-go/tentacle/firewall"
)

// Firewalld is the firewalld backend. Every change is made twice, to the
// running firewall and to the permanent configuration, so that the port is
// open now and after a reload or reboot, and each half is planned on its own
// (a port opened at runtime only is made permanent, and the reverse).
//
// firewalld keeps no names on ports or rich rules, so rules are matched by
// port and source alone and are listed without a name.
type Firewalld struct{ run Runner }

// NewFirewalld drives firewall-cmd through r.
func NewFirewalld(r Runner) *Firewalld { return &Firewalld{run: r} }

func (f *Firewalld) Name() string { return "firewalld" }

// fwdEntry is one thing firewalld can hold for a rule: a port (from
// anywhere) or a rich rule (from one source).
type fwdEntry struct {
	port string // "10933/tcp", or "" for a rich rule
	rich string
}

func (e fwdEntry) flag(verb string) string {
	if e.port != "" {
		return "--" + verb + "-port=" + e.port
	}
	return "--" + verb + "-rich-rule=" + e.rich
}

// fwdEntries is how a rule is stored: from anywhere, a port; otherwise one
// rich rule per source.
func fwdEntries(rule firewall.Rule) []fwdEntry {
	ports := rule.Ports.String()
	if rule.FromAnywhere() && len(rule.Sources) == 2 {
		return []fwdEntry{{port: ports + "/tcp"}}
	}
	var out []fwdEntry
	for _, p := range rule.Sources {
		family := "ipv6"
		if p.Addr().Is4() {
			family = "ipv4"
		}
		out = append(out, fwdEntry{rich: fmt.Sprintf(`rule family="%s" source address="%s" port port="%s" protocol="tcp" accept`, family, p, ports)})
	}
	return out
}

// fwdZone is one view (runtime or permanent) of the default zone.
type fwdZone struct {
	name    string
	entries []fwdEntry
}

func (f *Firewalld) zone(ctx context.Context, permanent bool) (*fwdZone, error) {
	args := []string{"--list-all"}
	if permanent {
		args = []string{"--permanent", "--list-all"}
	}
	out, err := f.run.Run(ctx, "firewall-cmd", args...)
	if err != nil {
		return nil, f.explain(err)
	}
	return parseFirewalldListAll(string(out)), nil
}

func (f *Firewalld) explain(err error) error {
	if ce, ok := err.(*CommandError); ok && (ce.ExitCode == 252 || strings.Contains(ce.Stderr+ce.Stdout, "not running")) {
		return firewall.Userf("firewalld is not running: start it (systemctl start firewalld), or choose another firewall with --backend.")
	}
	return explain(err)
}

// parseFirewalldListAll reads `firewall-cmd --list-all`:
//
//	public (active)
//	  target: default
//	  ports: 10933/tcp 20000-20010/tcp
//	  rich rules:
//		rule family="ipv4" source address="10.0.0.0/24" port port="10933" protocol="tcp" accept
func parseFirewalldListAll(out string) *fwdZone {
	z := &fwdZone{}
	inRich := false
	for i, line := range strings.Split(out, "\n") {
		if i == 0 {
			z.name, _, _ = strings.Cut(strings.TrimSpace(line), " ")
			continue
		}
		trimmed := strings.TrimSpace(line)
		if inRich && strings.HasPrefix(trimmed, "rule ") {
			z.entries = append(z.entries, fwdEntry{rich: trimmed})
			continue
		}
		inRich = false
		key, value, ok := strings.Cut(trimmed, ":")
		if !ok {
			continue
		}
		switch key {
		case "ports":
			for _, p := range strings.Fields(value) {
				z.entries = append(z.entries, fwdEntry{port: p})
			}
		case "rich rules":
			inRich = true
		}
	}
	return z
}

var richRule = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`^rule family="(ipv4|ipv6)" source address="([^"]+)" port port="([0-9-]+)" protocol="tcp" accept$`)
})

// rule reads an entry back; ok is false for anything that is not a TCP
// allow of the shapes fwdEntries writes.
func (e fwdEntry) rule() (firewall.Rule, bool) {
	var ports firewall.PortRange
	var sources []netip.Prefix
	if e.port != "" {
		p, proto, _ := strings.Cut(e.port, "/")
		r, err := firewall.ParsePortRange(p)
		if proto != "tcp" || err != nil {
			return firewall.Rule{}, false
		}
		ports = r
	} else {
		m := richRule().FindStringSubmatch(e.rich)
		if m == nil {
			return firewall.Rule{}, false
		}
		src, err := firewall.ParseSources([]string{m[2]})
		r, perr := firewall.ParsePortRange(m[3])
		if err != nil || perr != nil {
			return firewall.Rule{}, false
		}
		ports, sources = r, src
	}
	rule := firewall.NewRule("", ports, sources)
	rule.Name, rule.Description = "", ""
	return rule, true
}

func (f *Firewalld) plan(ctx context.Context, action firewall.Action, rule firewall.Rule) (*firewall.Plan, error) {
	if err := rule.Validate(); err != nil {
		return nil, err
	}
	runtime, err := f.zone(ctx, false)
	if err != nil {
		return nil, err
	}
	permanent, err := f.zone(ctx, true)
	if err != nil {
		return nil, err
	}
	plan := &firewall.Plan{Action: action, Rule: rule, Firewall: f.Name()}
	verb := "add"
	if action == firewall.Close {
		verb = "remove"
	}
	for _, e := range fwdEntries(rule) {
		for _, z := range []struct {
			zone      *fwdZone
			permanent bool
		}{{runtime, false}, {permanent, true}} {
			present := slices.Contains(z.zone.entries, e)
			if present == (action == firewall.Open) {
				continue
			}
			args := []string{"--zone=" + z.zone.name, e.flag(verb)}
			if z.permanent {
				args = append([]string{"--permanent"}, args...)
			}
			c := Command{Name: "firewall-cmd", Args: args}
			plan.Steps = append(plan.Steps, firewall.NewStep(c.String(), func(ctx context.Context) error {
				_, err := f.run.Run(ctx, c.Name, c.Args...)
				return f.explain(err)
			}))
		}
	}
	return plan, nil
}

func (f *Firewalld) PlanOpen(ctx context.Context, rule firewall.Rule) (*firewall.Plan, error) {
	return f.plan(ctx, firewall.Open, rule)
}

func (f *Firewalld) PlanClose(ctx context.Context, rule firewall.Rule) (*firewall.Plan, error) {
	return f.plan(ctx, firewall.Close, rule)
}

// List lists the TCP ports and source-restricted TCP rich rules of the
// default zone, saying for each whether it is runtime, permanent or both.
func (f *Firewalld) List(ctx context.Context) ([]firewall.Rule, error) {
	runtime, err := f.zone(ctx, false)
	if err != nil {
		return nil, err
	}
	permanent, err := f.zone(ctx, true)
	if err != nil {
		return nil, err
	}
	var rules []firewall.Rule
	seen := map[fwdEntry]bool{}
	for _, e := range append(slices.Clone(runtime.entries), permanent.entries...) {
		if seen[e] {
			continue
		}
		seen[e] = true
		r, ok := e.rule()
		if !ok {
			continue
		}
		inRuntime, inPermanent := slices.Contains(runtime.entries, e), slices.Contains(permanent.entries, e)
		switch {
		case inRuntime && inPermanent:
			r.Location = "zone " + runtime.name + " (runtime and permanent)"
		case inRuntime:
			r.Location = "zone " + runtime.name + " (runtime only: gone after a reload)"
		default:
			r.Location = "zone " + permanent.name + " (permanent only: not in effect until a reload)"
		}
		rules = append(rules, r)
	}
	return firewall.MergeListed(rules), nil
}
