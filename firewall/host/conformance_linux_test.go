package host

import (
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tentacle-go/tentacle/firewall"
)

// Ports the lab listens on: the Tentacle port, one port inside a range, and
// a port opened to someone else only.
const (
	portMain      = 10933
	portRangeLow  = 20000
	portRangeHigh = 20005
	portInRange   = 20002
	portElsewhere = 10999
)

// backendLab is one backend set up for real in a fresh lab, with the
// namespace denying incoming connections by default.
type backendLab struct {
	name string
	// tools must be installed for the backend to be tested.
	tools []string
	// setup makes the namespace deny by default and returns the runner
	// the backend drives its tool through.
	setup func(t *testing.T, l *lab) nsRunner
	// keepsNames: the backend stores the rule name (firewalld does not).
	keepsNames bool
}

var backendLabs = []backendLab{
	{
		name: "nftables", tools: []string{"nft"}, keepsNames: true,
		setup: func(t *testing.T, l *lab) nsRunner {
			r := nsRunner{ns: l.server}
			// nftables never lets an accept in one table override a drop in
			// another, so the only default-deny that tentacle's rules can
			// open is one in its own chain: the lab puts the policy there,
			// which checks that the rules match the packets they should.
			// (TestNFTablesForeignDropPolicy covers a drop elsewhere.)
			r.must(t, "nft", "add", "table", nftFamily, nftTable)
			r.must(t, "nft", "add", "chain", nftFamily, nftTable, nftChain, "{ type filter hook input priority filter - 10 ; policy drop ; }")
			r.must(t, "nft", "add", "rule", nftFamily, nftTable, nftChain, "ct", "state", "established,related", "accept")
			r.must(t, "nft", "add", "rule", nftFamily, nftTable, nftChain, "meta", "l4proto", "ipv6-icmp", "accept")
			return r
		},
	},
	{
		name: "iptables", tools: []string{"iptables", "ip6tables"}, keepsNames: true,
		setup: func(t *testing.T, l *lab) nsRunner {
			r := nsRunner{ns: l.server}
			for _, tool := range []string{"iptables", "ip6tables"} {
				r.must(t, tool, "-w", "-A", "INPUT", "-m", "conntrack", "--ctstate", "ESTABLISHED,RELATED", "-j", "ACCEPT")
				r.must(t, tool, "-w", "-P", "INPUT", "DROP")
			}
			r.must(t, "ip6tables", "-w", "-A", "INPUT", "-p", "ipv6-icmp", "-j", "ACCEPT")
			return r
		},
	},
	{
		name: "ufw", tools: []string{"ufw", "iptables", "ip6tables"}, keepsNames: true,
		setup: func(t *testing.T, l *lab) nsRunner {
			if _, err := os.Stat("/etc/ufw"); err != nil {
				t.Skip("SKIP: /etc/ufw is missing; reinstall ufw")
			}
			r := nsRunner{ns: l.server, mounts: [][2]string{{copyDir(t, "/etc/ufw"), "/etc/ufw"}}}
			// ufw's packaged default is to deny incoming; enabling it in
			// the lab (with its copied configuration) makes that the policy.
			r.must(t, "ufw", "--force", "enable")
			return r
		},
	},
	{
		name: "firewalld", tools: []string{"firewalld", "firewall-cmd", "dbus-daemon", "nft"},
		setup: func(t *testing.T, l *lab) nsRunner {
			dir := t.TempDir()
			bus := "DBUS_SYSTEM_BUS_ADDRESS=unix:path=" + filepath.Join(dir, "system_bus_socket")
			env := []string{bus}
			// A private system bus: firewalld and firewall-cmd meet there
			// and nowhere else.
			busExited := startDaemon(t, env, filepath.Join(dir, "dbus.log"), "dbus-daemon", "--system", "--nofork", "--nopidfile",
				"--address="+strings.TrimPrefix(bus, "DBUS_SYSTEM_BUS_ADDRESS="))
			// firewalld gives up if the bus is not there yet.
			for {
				if _, err := os.Stat(filepath.Join(dir, "system_bus_socket")); err == nil {
					break
				}
				select {
				case <-busExited:
					log, _ := os.ReadFile(filepath.Join(dir, "dbus.log"))
					t.Fatalf("dbus-daemon exited:\n%s", log)
				case <-time.After(50 * time.Millisecond):
				}
			}
			etc := copyDir(t, "/etc/firewalld")
			exited := startDaemon(t, env, filepath.Join(dir, "firewalld.log"), "ip", "netns", "exec", l.server,
				"unshare", "--mount", "--propagation", "private", "sh", "-ec",
				`mount --bind "$1" /etc/firewalld; exec firewalld --nofork --nopid --log-target console`, "sh", etc)
			r := nsRunner{ns: l.server, env: env}
			// firewalld is Python and loads every zone, service and ipset
			// before it answers; on a machine busy with the rest of the
			// suite that has taken over 50 s. Wait for as long as the daemon
			// lives: a startup that fails ends the wait at once, and the
			// bound is only there so a wedged daemon cannot hang the run.
			const bound = 5 * time.Minute
			deadline := time.Now().Add(bound)
			for {
				if _, err := r.Run(context.Background(), "firewall-cmd", "--state"); err == nil {
					break
				}
				log := func() string { b, _ := os.ReadFile(filepath.Join(dir, "firewalld.log")); return string(b) }
				select {
				case <-exited:
					t.Fatalf("firewalld exited before it was ready:\n%s", log())
				case <-time.After(time.Second):
				}
				if time.Now().After(deadline) {
					t.Fatalf("firewalld still not ready after %s:\n%s", bound, log())
				}
			}
			return r
		},
	},
}

// TestConformance runs the same suite against every Linux backend, for
// real, in namespaces of its own: open, open again, list, close, close
// again, dry runs that change nothing, ranges and sources, each checked with
// the tool's own listing and a real TCP connection from the client side.
func TestConformance(t *testing.T) {
	requireNetns(t)
	for _, b := range backendLabs {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			requireTools(t, b.tools...)
			l := newLab(t)
			for _, p := range []int{portMain, portInRange, portElsewhere} {
				l.listen(t, p)
			}
			r := b.setup(t, l)
			fw, why, err := Detect(context.Background(), r)
			if err != nil {
				t.Fatalf("Detect: %v", err)
			}
			if fw.Name() != b.name {
				t.Errorf("Detect chose %s (%s), want %s", fw.Name(), why, b.name)
			}
			conformance(t, l, fw, b.keepsNames)
		})
	}
}

func conformance(t *testing.T, l *lab, fw firewall.Firewall, keepsNames bool) {
	ctx := context.Background()
	reach := func(want bool, port int, addrs ...string) {
		t.Helper()
		for _, a := range addrs {
			if got := l.reachable(a, port); got != want {
				t.Fatalf("connection to [%s]:%d: reachable=%v, want %v", a, port, got, want)
			}
		}
	}
	both := []string{l.serverV4, l.serverV6}
	listed := func() []firewall.Rule {
		t.Helper()
		rules, err := fw.List(ctx)
		if err != nil {
			t.Fatalf("List: %v", err)
		}
		return rules
	}
	find := func(rules []firewall.Rule, want firewall.Rule) []firewall.Rule {
		var out []firewall.Rule
		for _, r := range rules {
			if r.Ports == want.Ports && (!keepsNames || r.Name == want.Name) {
				out = append(out, r)
			}
		}
		return out
	}
	plan := func(action firewall.Action, rule firewall.Rule) *firewall.Plan {
		t.Helper()
		var p *firewall.Plan
		var err error
		if action == firewall.Open {
			p, err = fw.PlanOpen(ctx, rule)
		} else {
			p, err = fw.PlanClose(ctx, rule)
		}
		if err != nil {
			t.Fatalf("plan %s %v: %v", action, rule, err)
		}
		return p
	}
	apply := func(p *firewall.Plan) {
		t.Helper()
		if err := firewall.ApplyAndVerify(ctx, fw, p, func(s firewall.Step) { t.Logf("%s: %s", fw.Name(), s.Description) }); err != nil {
			t.Fatalf("apply: %v", err)
		}
	}

	rule := firewall.NewRule("", firewall.SinglePort(portMain), nil)
	reach(false, portMain, both...)
	if got := find(listed(), rule); len(got) != 0 {
		t.Fatalf("listed before open: %v", got)
	}

	// A dry run plans and changes nothing.
	dry := plan(firewall.Open, rule)
	if dry.Empty() {
		t.Fatal("dry-run open planned nothing")
	}
	if got := find(listed(), rule); len(got) != 0 {
		t.Fatalf("dry run changed the listing: %v", got)
	}
	reach(false, portMain, both...)

	apply(plan(firewall.Open, rule))
	reach(true, portMain, both...)
	got := find(listed(), rule)
	if len(got) != 1 || !firewall.SamePrefixSet(got[0].Sources, firewall.AnySource) {
		t.Fatalf("after open, listed %v, want one rule from anywhere", got)
	}

	// Open again: nothing to do, no duplicate.
	if again := plan(firewall.Open, rule); !again.Empty() {
		t.Fatalf("second open planned %v", stepsOf(again))
	}
	if got := find(listed(), rule); len(got) != 1 {
		t.Fatalf("after a second open, listed %v", got)
	}

	if dry := plan(firewall.Close, rule); dry.Empty() {
		t.Fatal("dry-run close planned nothing")
	}
	reach(true, portMain, both...)

	apply(plan(firewall.Close, rule))
	reach(false, portMain, both...)
	if got := find(listed(), rule); len(got) != 0 {
		t.Fatalf("after close, listed %v", got)
	}
	if again := plan(firewall.Close, rule); !again.Empty() {
		t.Fatalf("second close planned %v", stepsOf(again))
	}

	// A range, from the client's IPv4 address only.
	client := netip.MustParsePrefix(l.clientV4 + "/32")
	ranged := firewall.NewRule("Tentacle range", firewall.PortRange{First: portRangeLow, Last: portRangeHigh}, []netip.Prefix{client})
	apply(plan(firewall.Open, ranged))
	reach(true, portInRange, l.serverV4)
	reach(false, portInRange, l.serverV6)
	got = find(listed(), ranged)
	if len(got) != 1 || !slices.Equal(got[0].Sources, []netip.Prefix{client}) {
		t.Fatalf("listed %v, want the range from %s", got, client)
	}

	// Open to someone else: the client still cannot connect.
	elsewhere := firewall.NewRule("", firewall.SinglePort(portElsewhere), []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24"), netip.MustParsePrefix("2001:db8::/32")})
	apply(plan(firewall.Open, elsewhere))
	reach(false, portElsewhere, both...)

	apply(plan(firewall.Close, ranged))
	apply(plan(firewall.Close, elsewhere))
	reach(false, portInRange, l.serverV4)
	if rules := listed(); len(find(rules, ranged))+len(find(rules, elsewhere)) != 0 {
		t.Fatalf("after closing everything, listed %v", rules)
	}
}

// TestNFTablesForeignDropPolicy: with a drop policy in another table, an
// accept in tentacle's table cannot open the port; open says so, naming the
// chain and the command that would, and that command does.
func TestNFTablesForeignDropPolicy(t *testing.T) {
	requireNetns(t)
	requireTools(t, "nft")
	t.Parallel()
	l := newLab(t)
	l.listen(t, portMain)
	r := nsRunner{ns: l.server}
	r.must(t, "nft", "add", "table", "inet", "filter")
	r.must(t, "nft", "add", "chain", "inet", "filter", "input", "{ type filter hook input priority filter ; policy drop ; }")
	r.must(t, "nft", "add", "rule", "inet", "filter", "input", "ct", "state", "established,related", "accept")
	fw := NewNFTables(r)
	rule := firewall.NewRule("", firewall.SinglePort(portMain), []netip.Prefix{netip.MustParsePrefix(l.clientV4 + "/32")})
	p, err := fw.PlanOpen(context.Background(), rule)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Apply(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	if len(p.Notes) != 1 || !strings.Contains(p.Notes[0], "`inet filter input` drops") {
		t.Fatalf("notes: %q", p.Notes)
	}
	if l.reachable(l.serverV4, portMain) {
		t.Fatal("reachable although another table drops: the test's premise is wrong")
	}
	// The note's own suggestion opens it.
	r.must(t, "nft", "insert", "rule", "inet", "filter", "input", "tcp", "dport", "10933", "accept")
	if !strings.Contains(p.Notes[0], "nft insert rule inet filter input tcp dport 10933 accept") {
		t.Fatalf("note does not give the command: %q", p.Notes[0])
	}
	if !l.reachable(l.serverV4, portMain) {
		t.Fatal("still unreachable after following the note")
	}
}
