package halibut

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// A polling server refuses a Tentacle it does not trust, and a Tentacle
// refuses a server whose thumbprint is not the one it trusts.
func TestPollingRefusesUntrustedCertificatesBothWays(t *testing.T) {
	tentacle, server, stranger := certs(t)
	lim := testLimits()
	lim.PollingReconnectMinDelay = 20 * time.Millisecond
	lim.PollingReconnectMaxDelay = 40 * time.Millisecond
	for _, tc := range []struct {
		name                 string
		serverTrusts, pinned string
	}{
		{"server does not trust the tentacle", Thumbprint(stranger.Leaf), Thumbprint(server.Leaf)},
		{"tentacle pinned another server", Thumbprint(tentacle.Leaf), Thumbprint(stranger.Leaf)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ln, _ := net.Listen("tcp", "127.0.0.1:0")
			cl := &countingListener{Listener: ln}
			ps := &PollingServer{Certificate: server, Trust: NewTrustStore(tc.serverTrusts), Limits: lim}
			go ps.Serve(cl)
			defer ps.Shutdown(context.Background())
			p := &Poller{Certificate: tentacle, Service: echoService(), Limits: lim, ServerAddress: "https://" + ln.Addr().String() + "/",
				ServerThumbprint: tc.pinned, SubscriptionID: "poll://untrusted/", Connections: 1}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() { p.Run(ctx); close(done) }()
			waitFor(t, func() bool { return cl.accepted.Load() >= 3 }, "repeated refused attempts")
			if ps.Subscribers("poll://untrusted/") != 0 || p.Connected() != 0 {
				t.Error("an untrusted peer got a polling connection")
			}
			cancel()
			<-done
		})
	}
}

// A client that sends half a request and stops is cut off by the receive
// deadline, and the listener keeps serving others.
func TestListenerDetectsAPeerThatStopsMidMessage(t *testing.T) {
	_, cli, _ := certs(t)
	svc := echoService()
	srv, _, _ := certs(t)
	lim := testLimits()
	lim.ReceiveTimeout = 200 * time.Millisecond
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	l := &Listener{Certificate: srv, Trust: NewTrustStore(Thumbprint(cli.Leaf)), Service: svc, Limits: lim}
	go l.Serve(ln)
	defer l.Shutdown(context.Background())
	ep := Endpoint{BaseURI: "https://" + ln.Addr().String() + "/", Thumbprint: Thumbprint(srv.Leaf)}

	tc, r := rawDial(t, ep, cli)
	io.WriteString(tc, "MX\r\n\r\nMX-CLIENT 1.0\r\n\r\n")
	if line, _ := r.ReadString('\n'); line != "MX-SERVER 1.0\r\n" {
		t.Fatalf("identity: %q", line)
	}
	r.ReadString('\n')
	var msg bytes.Buffer
	WriteMessage(&msg, &RequestMessage{ID: "x", Service: "IEchoService", Method: "Say", Params: []any{strings.Repeat("payload ", 5000)}}, DefaultLimits())
	tc.Write(msg.Bytes()[:msg.Len()/2]) // and then silence
	start := time.Now()
	tc.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := r.ReadByte(); err == nil {
		t.Fatal("the listener answered half a request")
	}
	if waited := time.Since(start); waited > 3*time.Second {
		t.Errorf("stalled peer detected after %v, want about the 200 ms receive timeout", waited)
	}
	c := newClient(t, cli)
	if _, err := c.Call(t.Context(), ep, "IEchoService", "Say", []any{"next"}, nil); err != nil {
		t.Errorf("listener unusable after a stalled peer: %v", err)
	}
}

// A service that stops mid-response is detected by the client's deadline.
func TestClientDetectsAServiceThatStopsMidResponse(t *testing.T) {
	srv, cli, _ := certs(t)
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	defer ln.Close()
	go func() {
		raw, err := ln.Accept()
		if err != nil {
			return
		}
		defer raw.Close()
		tc := tls.Server(raw, serverTLSConfig(srv))
		r := bufio.NewReader(tc)
		readPreamble(r, 100)
		readIdentity(r, 100)
		io.WriteString(tc, "MX-SERVER 1.0\r\n\r\n")
		in, err := ReadMessage(r, DefaultLimits())
		if err != nil {
			return
		}
		req, _ := in.Request()
		var out bytes.Buffer
		WriteMessage(&out, &ResponseMessage{ID: req.ID, Result: strings.Repeat("r", 100000)}, DefaultLimits())
		tc.Write(out.Bytes()[:out.Len()/3])
		time.Sleep(5 * time.Second)
	}()
	lim := testLimits()
	lim.ReceiveTimeout = 200 * time.Millisecond
	c := &Client{Certificate: cli, Limits: lim}
	start := time.Now()
	_, err := c.Call(t.Context(), Endpoint{BaseURI: "https://" + ln.Addr().String() + "/", Thumbprint: Thumbprint(srv.Leaf)}, "IEchoService", "Say", []any{"x"}, nil)
	var ne net.Error
	if err == nil || !errors.As(err, &ne) || !ne.Timeout() {
		t.Errorf("err = %v, want a timeout", err)
	}
	if time.Since(start) > 3*time.Second {
		t.Errorf("took %v", time.Since(start))
	}
}

// The subscriber side of §10.4's trace, byte for byte, against a scripted
// server: identity, a null request answered with NEXT, then a real request.
func TestSubscriberConversationTrace(t *testing.T) {
	tentacle, server, _ := certs(t)
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	defer ln.Close()
	result := make(chan error, 1)
	go func() {
		result <- func() error {
			raw, err := ln.Accept()
			if err != nil {
				return err
			}
			defer raw.Close()
			tc := tls.Server(raw, serverTLSConfig(server))
			tc.SetDeadline(time.Now().Add(10 * time.Second))
			r := bufio.NewReader(tc)
			expect := func(want string) error {
				got := make([]byte, len(want))
				if _, err := io.ReadFull(r, got); err != nil || string(got) != want {
					return errors.New("got " + string(got) + ", want " + want)
				}
				return nil
			}
			if err := expect("MX\r\n\r\nMX-SUBSCRIBER 1.0 poll://tracesubscription/\r\n\r\n"); err != nil {
				return err
			}
			io.WriteString(tc, "MX-SERVER 1.0\r\n\r\n")
			WriteMessage(tc, nil, DefaultLimits()) // null request
			if err := expect("NEXT\r\n"); err != nil {
				return err
			}
			io.WriteString(tc, "PROCEED\r\n")
			WriteMessage(tc, &RequestMessage{ID: "trace-1", Service: "IEchoService", Method: "Say", Params: []any{"t"}}, DefaultLimits())
			in, err := ReadMessage(r, DefaultLimits())
			if err != nil {
				return err
			}
			resp, err := in.Response()
			if err != nil || resp.ID != "trace-1" || resp.Result != "you said: t" {
				return errors.New("bad response")
			}
			if err := expect("NEXT\r\n"); err != nil {
				return err
			}
			io.WriteString(tc, "PROCEED\r\n")
			return nil
		}()
	}()
	p := &Poller{Certificate: tentacle, Service: echoService(), Limits: testLimits(), ServerAddress: "https://" + ln.Addr().String() + "/",
		ServerThumbprint: Thumbprint(server.Leaf), SubscriptionID: "poll://TraceSubscription/", Connections: 1}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { p.Run(ctx); close(done) }()
	if err := <-result; err != nil {
		t.Error(err)
	}
	cancel()
	<-done
}
