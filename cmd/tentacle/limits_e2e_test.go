//go:build linux

package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/tentacle-go/tentacle/agent/contracts"
	"github.com/tentacle-go/tentacle/agent/halibut"
)

// The real agent under a small file limit, flooded with slow connections
// that never identify themselves (from several loopback addresses, half
// silent before TLS, half trickling the preamble), still serves its Octopus
// Server at once: the cap on unidentified connections keeps descriptors
// free, and a newcomer closes an old unidentified connection instead of
// waiting for one to go. Before, the attackers took every descriptor and
// the legitimate request was never accepted.
func TestAgentServesItsServerWhileFloodedWithUnidentifiedConnections(t *testing.T) {
	const (
		fileLimit   = 220
		addresses   = 8
		perAddress  = 30 // under the default per-address cap, so the overall cap is what binds
		attackerGap = time.Second
	)
	lim := halibut.DefaultLimits()
	a := newRealAgent(t)
	// sh's ulimit sets the hard limit too, so the Go runtime cannot raise it.
	a.bin = "/bin/sh"
	a.startArgs = []string{"-c", fmt.Sprintf(`ulimit -n %d && exec "$0" agent --instance E2E`, fileLimit), builtBinary}
	a.start()
	addr := fmt.Sprintf("127.0.0.1:%d", a.port)

	var open atomic.Int32
	var wg sync.WaitGroup
	stop := make(chan struct{})
	t.Cleanup(func() { close(stop) })
	for i := range addresses * perAddress {
		src := fmt.Sprintf("127.0.0.%d", 2+i/perAddress)
		wg.Add(1)
		go func() {
			defer wg.Done()
			d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
			raw, err := d.Dial("tcp", addr)
			if err != nil {
				return
			}
			var c net.Conn = raw
			if i%2 == 1 {
				tc := tls.Client(raw, &tls.Config{InsecureSkipVerify: true})
				tc.SetDeadline(time.Now().Add(5 * time.Second))
				if err := tc.Handshake(); err != nil {
					raw.Close()
					return
				}
				tc.SetDeadline(time.Time{})
				c = tc
			}
			open.Add(1)
			go func() {
				defer c.Close()
				io.Copy(io.Discard, c) // until the agent closes it
				open.Add(-1)
			}()
			if i%2 == 1 {
				go func() {
					for {
						if _, err := c.Write([]byte("a")); err != nil {
							return
						}
						select {
						case <-stop:
							return
						case <-time.After(attackerGap):
						}
					}
				}()
			}
		}()
	}
	wg.Wait()
	held := open.Load()
	t.Logf("%d attacking connections held before the legitimate request", held)
	if held < int32(lim.MaxUnidentifiedConnections)-1 {
		t.Fatalf("only %d attacking connections held; the test needs the cap (%d) full", held, lim.MaxUnidentifiedConnections)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	caps, err := contracts.CapabilitiesClient{Caller: a.caller()}.GetCapabilities(ctx)
	elapsed := time.Since(start)
	if err != nil || len(caps.SupportedCapabilities) == 0 {
		t.Fatalf("the agent's own server was not served while flooded (after %v): %v", elapsed.Round(time.Millisecond), err)
	}
	still := open.Load()
	t.Logf("legitimate request served in %v; %d attacking connections still held", elapsed.Round(time.Millisecond), still)
	if still < int32(lim.MaxUnidentifiedConnections)-1 {
		t.Errorf("only %d attacking connections still held: more were closed than the one needed to make room", still)
	}
	if err := syscall.Kill(a.cmd.Process.Pid, 0); err != nil {
		t.Errorf("the agent died: %v", err)
	}
}
