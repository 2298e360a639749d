//go:build linux

package faults

import (
	"context"
	"path/filepath"
	"testing"
	"time"
)

// The polling endpoint (the server side) restarts in the middle of a long script, with
// its queues lost as a real restart loses them. The poller notices at once (the
// connections close), backs off while the port refuses, and reconnects to the new
// endpoint; the server, asking again from the last sequence it had, gets every remaining
// line once and the exit code, and a StartScript it re-sends with the ticket does not
// start the script again.
func TestServerRestartedMidScript(t *testing.T) {
	if !inOwnNamespaces(t) {
		return
	}
	lim := fastLimits()
	srv := newServer(t, lim)
	srv.servePolling("")
	in := newInstance(t, srv, true, "")
	a := runAgent(t, in, lim)
	waitFor(t, 10*time.Second, "the poller connects", func() bool { return srv.polling.Subscribers(in.sub) > 0 })
	s := in.scripts(srv)
	ctx := context.Background()

	const n, interval, down = 40, 100 * time.Millisecond, time.Second
	marker := filepath.Join(t.TempDir(), "ran")
	cmd := script("AcrossARestart", marker, n, interval, 5)
	if _, err := s.StartScript(ctx, cmd); err != nil {
		t.Fatal(err)
	}
	f := &follower{ticket: "AcrossARestart"}
	waitFor(t, 10*time.Second, "the first lines", func() bool {
		f.poll(ctx, s)
		return len(f.lines) >= 5
	})
	addr := srv.addr
	srv.stopPolling()
	stopped := time.Now()
	agentNoticed := waitFor(t, 5*time.Second, "the agent notices the restart", func() bool { return a.Pollers()[0].Connected() == 0 })
	time.Sleep(down - time.Since(stopped))
	srv.servePolling(addr)
	restarted := time.Now()
	// Refused connections back off up to PollingReconnectMaxDelay, jittered.
	waitFor(t, lim.PollingReconnectMaxDelay+5*time.Second, "the poller reconnects to the restarted server", func() bool { return srv.polling.Subscribers(in.sub) > 0 })
	reconnected := time.Since(restarted)
	if _, err := s.StartScript(ctx, cmd); err != nil {
		t.Fatalf("StartScript re-sent after the restart: %v", err)
	}
	f.toCompletion(t, s, n*interval+30*time.Second)
	f.checkEveryLineOnce(t, n, 5)
	ranOnce(t, marker)
	t.Logf("figures: the agent noticed the restart after %v; the server was down %v; the poller was back %v after it restarted; %d lines once, exit %d, ran once",
		agentNoticed.Round(time.Millisecond), down, reconnected.Round(time.Millisecond), len(f.lines), f.code)
}
