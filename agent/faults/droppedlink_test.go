//go:build linux

package faults

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tentacle-go/tentacle/agent/halibut"
)

// dropLink makes the link to and from port vanish silently: every packet either way is
// dropped (nft, on the test's own loopback), no FIN, no RST, as when a firewall or NAT
// in between forgets the connection or a cable is pulled.
func dropLink(t *testing.T, port int) {
	t.Helper()
	rules := fmt.Sprintf("table inet faults {\n chain output {\n  type filter hook output priority 0; policy accept;\n  tcp dport %d drop\n  tcp sport %d drop\n }\n}\n", port, port)
	cmd := exec.Command("nft", "-f", "-")
	cmd.Stdin = strings.NewReader(rules)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("nft: %v\n%s", err, out)
	}
	// Read back: the rules are in place.
	out, err := exec.Command("nft", "list", "table", "inet", "faults").CombinedOutput()
	if err != nil || !strings.Contains(string(out), fmt.Sprintf("tcp dport %d drop", port)) {
		t.Fatalf("the drop rule is not in the ruleset: %v\n%s", err, out)
	}
}

// restoreLink removes dropLink's rules.
func restoreLink(t *testing.T) {
	t.Helper()
	if out, err := exec.Command("nft", "delete", "table", "inet", "faults").CombinedOutput(); err != nil {
		t.Fatalf("nft delete: %v\n%s", err, out)
	}
}

func TestDroppedLinkListening(t *testing.T) {
	if inOwnNamespaces(t) {
		droppedLink(t, fastLimits(), false)
	}
}

func TestDroppedLinkPolling(t *testing.T) {
	if inOwnNamespaces(t) {
		droppedLink(t, fastLimits(), true)
	}
}

// soakEnv turns on the soak tests, which `make soak` runs: the same faults with the
// agent's default limits, in minutes rather than seconds.
const soakEnv = "TENTACLE_SOAK"

func soakOnly(t *testing.T) {
	if os.Getenv(soakEnv) == "" {
		t.Skipf("SKIP: a soak test (minutes); `make soak` runs it (%s=1)", soakEnv)
	}
}

// With the default limits, a dropped link is noticed within 30 s on both sides (issue 20).
func TestSoakDroppedLinkDefaultLimitsListening(t *testing.T) {
	soakOnly(t)
	if inOwnNamespaces(t) {
		droppedLink(t, halibut.DefaultLimits(), false)
	}
}

func TestSoakDroppedLinkDefaultLimitsPolling(t *testing.T) {
	soakOnly(t)
	if inOwnNamespaces(t) {
		droppedLink(t, halibut.DefaultLimits(), true)
	}
}

// droppedLink: with a script running, the link between agent and server drops silently.
// Both sides notice within the dead-link bound of lim: the agent closes its connection, and
// the server's call in flight fails (listening: after the client's retries to connect); the server keeps asking and retrying StartScript
// with the same ticket as Octopus does; when the link returns, the poller reconnects, and
// the script's log from the last sequence has every line once, the exit code, and the
// script ran once.
func droppedLink(t *testing.T, lim halibut.Limits, polling bool) {
	bound := deadLinkBound(lim)
	// Timers fire late by a little: 30 s with the defaults' 25 s bound, 6 s with fastLimits' 2 s.
	noticeWithin := bound + max(bound/5, 4*time.Second)
	srv := newServer(t, lim)
	if polling {
		srv.servePolling("")
	}
	in := newInstance(t, srv, polling, "")
	a := runAgent(t, in, lim)
	port := in.port
	if polling {
		fmt.Sscanf(srv.addr[strings.LastIndex(srv.addr, ":")+1:], "%d", &port)
		waitFor(t, 10*time.Second, "the poller connects", func() bool { return srv.polling.Subscribers(in.sub) > 0 })
	}
	agentConnected := func() bool {
		if polling {
			return a.Pollers()[0].Connected() > 0
		}
		return metric(in, "tentacle_listening_connections") > 0
	}
	s := in.scripts(srv)
	ctx := context.Background()

	// The script outlasts the outage: the time to notice, plus as long again, plus reconnecting.
	const interval = 100 * time.Millisecond
	n := int((2*bound + 2*time.Second) / interval)
	marker := filepath.Join(t.TempDir(), "ran")
	cmd := script("AcrossTheOutage", marker, n, interval, 3)
	if _, err := s.StartScript(ctx, cmd); err != nil {
		t.Fatal(err)
	}
	f := &follower{ticket: "AcrossTheOutage"}
	waitFor(t, 10*time.Second, "the first lines", func() bool {
		f.poll(ctx, s)
		return len(f.lines) >= 3
	})
	if !agentConnected() {
		t.Fatal("the agent has no connection to the server before the drop")
	}

	dropLink(t, port)
	dropped := time.Now()
	// The server asks for status across the drop: that call must fail within the bound,
	// not hang for ReceiveResponseTimeout (5 min).
	callFailed := make(chan time.Duration, 1)
	go func() {
		err := f.poll(ctx, s)
		if err == nil {
			t.Errorf("GetStatus succeeded across a dropped link")
		}
		callFailed <- time.Since(dropped)
	}()
	agentNoticed := waitFor(t, noticeWithin, "the agent notices the dropped link", func() bool { return !agentConnected() })
	var callFailedAfter time.Duration
	select {
	case callFailedAfter = <-callFailed:
	case <-time.After(noticeWithin + 2*lim.ConnectTimeout + lim.PollingRequestQueueTimeout):
		t.Fatal("a GetStatus sent into the dropped link did not fail within the bound")
	}
	// Octopus retries StartScript when it cannot know whether it arrived.
	if _, err := s.StartScript(ctx, cmd); err == nil {
		t.Error("StartScript succeeded across a dropped link")
	}
	time.Sleep(max(0, bound-time.Since(dropped)))
	restoreLink(t)
	restored := time.Now()

	if polling {
		waitFor(t, 3*bound+lim.PollingReconnectMaxDelay, "the poller reconnects", func() bool { return srv.polling.Subscribers(in.sub) > 0 })
	}
	reconnected := time.Since(restored)
	if _, err := s.StartScript(ctx, cmd); err != nil {
		t.Fatalf("StartScript retried after the link returned: %v", err)
	}
	f.toCompletion(t, s, time.Duration(n)*interval+30*time.Second)
	f.checkEveryLineOnce(t, n, 3)
	ranOnce(t, marker)
	server := "listening"
	if polling {
		server = "polling"
	}
	t.Logf("figures (%s; dead-link bound %v): agent closed its connection after %v; a server call in flight failed after %v; reconnected %v after the link returned; %d lines once, exit %d, ran once",
		server, bound, agentNoticed.Round(time.Millisecond), callFailedAfter.Round(time.Millisecond), reconnected.Round(time.Millisecond), len(f.lines), f.code)
}
