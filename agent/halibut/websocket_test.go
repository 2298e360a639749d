package halibut

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"testing"
	"time"
)

// startWebSocketPolling serves a PollingServer over wss:// on loopback (an
// http.Server with the handler at /OctopusComms) and a Poller connecting
// to it, as a Tentacle polling over port 443 would.
func startWebSocketPolling(t testing.TB, svc *Service, lim Limits, trustTentacle bool) (*PollingServer, *Poller) {
	t.Helper()
	tentacle, server, stranger := certs(t)
	trusted := Thumbprint(stranger.Leaf)
	if trustTentacle {
		trusted = Thumbprint(tentacle.Leaf)
	}
	ps := &PollingServer{Certificate: server, Trust: NewTrustStore(trusted), Limits: lim}
	mux := http.NewServeMux()
	mux.Handle("/OctopusComms", ps.WebSocketHandler())
	hs := &http.Server{Handler: mux, TLSConfig: WebSocketTLSConfig(server), TLSNextProto: map[string]func(*http.Server, *tls.Conn, http.Handler){}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go hs.ServeTLS(ln, "", "")
	p := &Poller{
		Certificate: tentacle, Service: svc, Limits: lim,
		ServerAddress: "wss://" + ln.Addr().String() + "/OctopusComms", ServerThumbprint: Thumbprint(server.Leaf),
		SubscriptionID: "poll://wsabcdefghjkmnpqrst/", Connections: 2,
	}
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan struct{})
	go func() { p.Run(ctx); close(ran) }()
	t.Cleanup(func() {
		cancel()
		<-ran
		ps.Shutdown(context.Background())
		hs.Close()
	})
	return ps, p
}

func TestWebSocketPolling(t *testing.T) {
	lim := testLimits()
	lim.PollingQueueWaitTimeout = 50 * time.Millisecond // exercise null requests too
	ps, p := startWebSocketPolling(t, echoService(), lim, true)
	waitFor(t, func() bool { return ps.Subscribers(p.SubscriptionID) == 2 }, "websocket pollers to connect")
	time.Sleep(200 * time.Millisecond)
	got, err := ps.Call(t.Context(), p.SubscriptionID, Thumbprint(p.Certificate.Leaf), "IEchoService", "Say", []any{"over websocket"}, nil)
	if err != nil || got != "you said: over websocket" {
		t.Fatalf("%v %v", got, err)
	}
	payload := make([]byte, 3<<20)
	got, err = ps.Call(t.Context(), p.SubscriptionID, Thumbprint(p.Certificate.Leaf), "IEchoService", "Hash", []any{DataStreamFromBytes(payload)}, nil)
	sum := sha256.Sum256(payload)
	if want := fmt.Sprintf("%d %x", len(payload), sum); err != nil || got != want {
		t.Fatalf("got %v, %v; want %s", got, err, want)
	}
}

func TestWebSocketRefusesAnUntrustedTentacle(t *testing.T) {
	lim := testLimits()
	lim.PollingReconnectMinDelay = 20 * time.Millisecond
	lim.PollingReconnectMaxDelay = 50 * time.Millisecond
	ps, p := startWebSocketPolling(t, echoService(), lim, false)
	time.Sleep(300 * time.Millisecond)
	if n := ps.Subscribers(p.SubscriptionID); n != 0 || p.Connected() != 0 {
		t.Errorf("an untrusted Tentacle got %d subscriptions (%d connected)", n, p.Connected())
	}
}

// BenchmarkWebSocketPolling is polling over wss://: a small RPC's latency
// (median, p99) and an 8 MiB upload's throughput, through the server's
// handler and the poller's dialer.
func BenchmarkWebSocketPolling(b *testing.B) {
	ps, p := startWebSocketPolling(b, echoService(), DefaultLimits(), true)
	waitFor(b, func() bool { return ps.Subscribers(p.SubscriptionID) == 2 }, "websocket pollers to connect")
	ctx := context.Background()
	thumb := Thumbprint(p.Certificate.Leaf)
	b.Run("rpc", func(b *testing.B) {
		reportLatency(b, func() {
			if _, err := ps.Call(ctx, p.SubscriptionID, thumb, "IEchoService", "Say", []any{"ping"}, nil); err != nil {
				b.Fatal(err)
			}
		})
	})
	b.Run("upload-8MiB", func(b *testing.B) {
		payload := make([]byte, 8<<20)
		b.SetBytes(int64(len(payload)))
		for b.Loop() {
			if _, err := ps.Call(ctx, p.SubscriptionID, thumb, "IEchoService", "Hash", []any{DataStreamFromBytes(payload)}, nil); err != nil {
				b.Fatal(err)
			}
		}
	})
}
