package halibut

import (
	"context"
	"net"
	"slices"
	"testing"
	"time"
)

// nagleLimits are the TCP settings of a stock Halibut peer (an Octopus
// Server): Nagle's algorithm on (Halibut's TcpNoDelay = false) and the
// operating system's delayed ACKs.
func nagleLimits() Limits {
	lim := DefaultLimits()
	lim.TCPNoDelay = false
	lim.TCPQuickAck = false
	return lim
}

// startPollingPair runs a PollingServer with serverLim and one Poller with
// agentLim on loopback, and waits until the poller has identified.
func startPollingPair(tb testing.TB, svc *Service, serverLim, agentLim Limits) (*PollingServer, *Poller) {
	tb.Helper()
	tentacle, server, _ := certs(tb)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	ps := &PollingServer{Certificate: server, Trust: NewTrustStore(Thumbprint(tentacle.Leaf)), Limits: serverLim}
	served := make(chan struct{})
	go func() { ps.Serve(ln); close(served) }()
	p := &Poller{
		Certificate: tentacle, Service: svc, Limits: agentLim,
		ServerAddress: "https://" + ln.Addr().String() + "/", ServerThumbprint: Thumbprint(server.Leaf),
		SubscriptionID: "poll://abcdefghjkmnpqrstuvw/", Connections: 1,
	}
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan struct{})
	go func() { p.Run(ctx); close(ran) }()
	tb.Cleanup(func() {
		cancel()
		<-ran
		ps.Shutdown(context.Background())
		<-served
	})
	deadline := time.Now().Add(10 * time.Second)
	for ps.Subscribers(p.SubscriptionID) != 1 {
		if time.Now().After(deadline) {
			tb.Fatal("the poller did not connect")
		}
		time.Sleep(2 * time.Millisecond)
	}
	return ps, p
}

// BenchmarkPollingRPCRoundTrip is one small RPC through a polling connection
// (request down, response up, NEXT/PROCEED) against a server that leaves
// Nagle on, with the agent's immediate ACKs on and off, and against a
// server with Nagle off for reference. It reports the median and 99th
// percentile latency.
func BenchmarkPollingRPCRoundTrip(b *testing.B) {
	cases := []struct {
		name          string
		serverNoDelay bool
		agentQuickAck bool
	}{
		{"server=nagle/agent=quickack", false, true},
		{"server=nagle/agent=delayed-ack", false, false},
		{"server=nodelay/agent=quickack", true, true},
		{"server=nodelay/agent=delayed-ack", true, false},
	}
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			serverLim := nagleLimits()
			serverLim.TCPNoDelay = tc.serverNoDelay
			agentLim := DefaultLimits()
			agentLim.TCPQuickAck = tc.agentQuickAck
			ps, p := startPollingPair(b, echoService(), serverLim, agentLim)
			ctx := context.Background()
			call := func() {
				if _, err := ps.Call(ctx, p.SubscriptionID, Thumbprint(p.Certificate.Leaf), "IEchoService", "Say", []any{"ping"}, nil); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportAllocs()
			reportLatency(b, call)
		})
	}
}

// BenchmarkListeningRPCRoundTrip is the listening side of the same question:
// a client that leaves Nagle on (as Octopus Server's Halibut does) calling
// our listener, with the listener's immediate ACKs on and off, for a small
// RPC and for a 100 KiB upload (several segments, so Nagle holds the tail
// until the head is acknowledged).
func BenchmarkListeningRPCRoundTrip(b *testing.B) {
	upload := make([]byte, 100<<10)
	for _, quickAck := range []bool{true, false} {
		name := "agent=quickack"
		if !quickAck {
			name = "agent=delayed-ack"
		}
		srv, cli, _ := certs(b)
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		agentLim := DefaultLimits()
		agentLim.TCPQuickAck = quickAck
		l := &Listener{Certificate: srv, Trust: NewTrustStore(Thumbprint(cli.Leaf)), Service: echoService(), Limits: agentLim}
		go l.Serve(ln)
		c := &Client{Certificate: cli, Limits: nagleLimits()}
		ep := Endpoint{BaseURI: "https://" + ln.Addr().String() + "/", Thumbprint: Thumbprint(srv.Leaf)}
		for _, rpc := range []struct {
			name   string
			method string
			params func() []any
		}{
			{"say", "Say", func() []any { return []any{"ping"} }},
			{"upload-100KiB", "Hash", func() []any { return []any{DataStreamFromBytes(upload)} }},
		} {
			b.Run("client=nagle/"+name+"/"+rpc.name, func(b *testing.B) {
				ctx := context.Background()
				call := func() {
					if _, err := c.Call(ctx, ep, "IEchoService", rpc.method, rpc.params(), nil); err != nil {
						b.Fatal(err)
					}
				}
				reportLatency(b, call)
			})
		}
		c.Close()
		l.Shutdown(context.Background())
	}
}

// reportLatency warms call up once, then times each call of the benchmark
// loop and reports the median and 99th percentile.
func reportLatency(b *testing.B, call func()) {
	b.Helper()
	call()
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for b.Loop() {
		start := time.Now()
		call()
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
}
