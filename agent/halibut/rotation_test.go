package halibut

import (
	"context"
	"crypto/tls"
	"net"
	"testing"
	"time"
)

// A Tentacle that trusts a server's next certificate ahead of a rotation
// keeps polling when the server switches to it.
func TestPollerAcceptsTheServersNextCertificate(t *testing.T) {
	tentacle, current, next := certs(t)
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	ps := &PollingServer{Certificate: next, Trust: NewTrustStore(Thumbprint(tentacle.Leaf)), Limits: testLimits()} // already rotated
	go ps.Serve(ln)
	defer ps.Shutdown(context.Background())
	p := &Poller{Certificate: tentacle, Service: echoService(), Limits: testLimits(), ServerAddress: "https://" + ln.Addr().String() + "/",
		ServerThumbprint: Thumbprint(current.Leaf), AlsoTrusted: []string{Thumbprint(next.Leaf)}, SubscriptionID: "poll://rotation/", Connections: 1}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { p.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	waitFor(t, func() bool { return ps.Subscribers("poll://rotation/") == 1 }, "the poller to accept the rotated certificate")
	if got, err := ps.Call(t.Context(), "poll://rotation/", Thumbprint(tentacle.Leaf), "IEchoService", "Say", []any{"rotated"}, nil); err != nil || got != "you said: rotated" {
		t.Errorf("%v %v", got, err)
	}
}

// Polling over 443 through an SNI-routing proxy needs the host name in the
// TLS ClientHello.
func TestDialSendsTheServerNameForSNI(t *testing.T) {
	srv, cli, _ := certs(t)
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	defer ln.Close()
	names := make(chan string, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		cfg := serverTLSConfig(srv)
		cfg.GetConfigForClient = func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
			names <- hello.ServerName
			return nil, nil
		}
		tls.Server(c, cfg).Handshake()
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := dialHalibut(ctx, ln.Addr().String(), "polling.octopus.example", []string{Thumbprint(srv.Leaf)}, cli, nil, nil, testLimits())
	if err == nil {
		c.Close()
	}
	if got := <-names; got != "polling.octopus.example" {
		t.Errorf("SNI %q", got)
	}
}
