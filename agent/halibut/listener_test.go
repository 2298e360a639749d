package halibut

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

func echoService() *Service {
	svc := &Service{}
	svc.Handle("IEchoService", "Say", func(ctx context.Context, call *Call) (any, error) {
		var s string
		if err := UnmarshalValue(call.Params[0], &s); err != nil {
			return nil, err
		}
		return "you said: " + s, nil
	})
	svc.Handle("IEchoService", "Fail", func(ctx context.Context, call *Call) (any, error) {
		return nil, errors.New("the disk is full")
	})
	svc.Handle("IEchoService", "Panic", func(ctx context.Context, call *Call) (any, error) {
		panic("handler bug")
	})
	svc.Handle("IEchoService", "Hash", func(ctx context.Context, call *Call) (any, error) {
		var ds DataStream
		if err := UnmarshalValue(call.Params[0], &ds); err != nil {
			return nil, err
		}
		f, err := call.StreamBody(ds)
		if err != nil {
			return nil, err
		}
		h := sha256.New()
		n, _ := io.Copy(h, f)
		return fmt.Sprintf("%d %x", n, h.Sum(nil)), nil
	})
	svc.Handle("IEchoService", "Download", func(ctx context.Context, call *Call) (any, error) {
		var n int64
		if err := UnmarshalValue(call.Params[0], &n); err != nil {
			return nil, err
		}
		return NewDataStream(n, io.LimitReader(zeroReader{}, n)), nil
	})
	return svc
}

func TestListeningRoundTripAndPooling(t *testing.T) {
	_, cli, _ := certs(t)
	_, ep := startListener(t, echoService())
	c := newClient(t, cli)
	for i := range 3 {
		got, err := c.Call(t.Context(), ep, "IEchoService", "Say", []any{fmt.Sprint("hello ", i)}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if got != fmt.Sprint("you said: hello ", i) {
			t.Errorf("got %v", got)
		}
	}
	// Sequential calls reuse one connection, checked with NEXT/PROCEED.
	if n := c.PooledConnections(ep); n != 1 {
		t.Errorf("%d pooled connections after sequential calls, want 1", n)
	}
}

func TestServiceErrorsReachTheCallerAsServerErrors(t *testing.T) {
	_, cli, _ := certs(t)
	_, ep := startListener(t, echoService())
	c := newClient(t, cli)
	for _, tc := range []struct {
		service, method, msg, errType string
	}{
		{"IEchoService", "Fail", "the disk is full", ""},
		{"IEchoService", "Panic", "handler bug", errTypeInvocation},
		{"INoSuchService", "Say", "Service not found: INoSuchService", errTypeServiceNotFound},
		{"IEchoService", "Shout", "Method IEchoService::ShoutAsync not found", errTypeMethodNotFound},
	} {
		_, err := c.Call(t.Context(), ep, tc.service, tc.method, []any{"x"}, nil)
		var se *ServerError
		if !errors.As(err, &se) || !strings.Contains(se.Message, tc.msg) {
			t.Errorf("%s.%s: %v", tc.service, tc.method, err)
			continue
		}
		got := ""
		if se.HalibutErrorType != nil {
			got = *se.HalibutErrorType
		}
		if got != tc.errType {
			t.Errorf("%s.%s: HalibutErrorType %q, want %q", tc.service, tc.method, got, tc.errType)
		}
	}
	// The connection survived every error.
	if got, err := c.Call(t.Context(), ep, "IEchoService", "Say", []any{"still here"}, nil); err != nil || got != "you said: still here" {
		t.Errorf("after errors: %v %v", got, err)
	}
	if n := c.PooledConnections(ep); n != 1 {
		t.Errorf("%d pooled connections, want 1", n)
	}
}

func TestDataStreamsBothWays(t *testing.T) {
	_, cli, _ := certs(t)
	_, ep := startListener(t, echoService())
	c := newClient(t, cli)
	payload := bytes.Repeat([]byte("0123456789abcdef"), 300_000) // 4.8 MB
	sum := sha256.Sum256(payload)
	got, err := c.Call(t.Context(), ep, "IEchoService", "Hash", []any{DataStreamFromBytes(payload)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("%d %s", len(payload), hex.EncodeToString(sum[:])); got != want {
		t.Errorf("upload: got %v want %v", got, want)
	}
	var received int64
	_, err = c.Call(t.Context(), ep, "IEchoService", "Download", []any{int64(3 << 20)}, func(ds DataStream, r io.Reader) error {
		n, err := io.Copy(io.Discard, r)
		received += n
		return err
	})
	if err != nil || received != 3<<20 {
		t.Errorf("download: %d bytes, %v", received, err)
	}
}

func TestUntrustedClientIsClosedWithoutAReply(t *testing.T) {
	_, _, stranger := certs(t)
	_, ep := startListener(t, echoService())
	c := newClient(t, stranger)
	_, err := c.Call(t.Context(), ep, "IEchoService", "Say", []any{"hi"}, nil)
	var ce *ConnectionInitializationError
	if !errors.As(err, &ce) || !strings.Contains(err.Error(), "does not trust") || !strings.Contains(err.Error(), Thumbprint(stranger.Leaf)) {
		t.Errorf("err = %v", err)
	}
}

func TestWrongServerThumbprintIsNotRetried(t *testing.T) {
	_, cli, stranger := certs(t)
	l, ep := startListener(t, echoService())
	_ = l
	ep.Thumbprint = Thumbprint(stranger.Leaf)
	c := newClient(t, cli)
	start := time.Now()
	_, err := c.Call(t.Context(), ep, "IEchoService", "Say", []any{"hi"}, nil)
	var uc *UnexpectedCertificateError
	if !errors.As(err, &uc) || uc.Expected != Thumbprint(stranger.Leaf) {
		t.Fatalf("err = %v", err)
	}
	if time.Since(start) > 2*time.Second {
		t.Error("a certificate mismatch was retried")
	}
}

// rawDial speaks to the listener byte by byte, as a .NET peer would.
func rawDial(t *testing.T, ep Endpoint, cert *tls.Certificate) (*tls.Conn, *bufio.Reader) {
	t.Helper()
	addr := strings.TrimSuffix(strings.TrimPrefix(ep.BaseURI, "https://"), "/")
	cfg := &tls.Config{InsecureSkipVerify: true}
	if cert != nil {
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return cert, nil }
	}
	tc, err := tls.Dial("tcp", addr, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tc.Close() })
	tc.SetDeadline(time.Now().Add(10 * time.Second))
	return tc, bufio.NewReader(tc)
}

func TestListeningConversationTrace(t *testing.T) {
	_, cli, _ := certs(t)
	_, ep := startListener(t, echoService())
	tc, r := rawDial(t, ep, cli)
	// A Linux .NET dialer sends LF-only preamble lines; the listener accepts them.
	io.WriteString(tc, "MX\n\n")
	io.WriteString(tc, "MX-CLIENT 1.0\r\n\r\n")
	got := make([]byte, len("MX-SERVER 1.0\r\n\r\n"))
	if _, err := io.ReadFull(r, got); err != nil || string(got) != "MX-SERVER 1.0\r\n\r\n" {
		t.Fatalf("identity reply %q, %v", got, err)
	}
	for i := range 2 {
		req := &RequestMessage{ID: fmt.Sprint("IEchoService::SayAsync[", i, "] / x"), ActivityID: NewGuid(),
			Endpoint: NewServiceEndPoint(ep.BaseURI, ep.Thumbprint, DefaultLimits()), Service: "IEchoService", Method: "Say", Params: []any{"trace"}}
		if err := WriteMessage(tc, req, DefaultLimits()); err != nil {
			t.Fatal(err)
		}
		msg, err := ReadMessage(r, DefaultLimits())
		if err != nil {
			t.Fatal(err)
		}
		resp, err := msg.Response()
		if err != nil || resp.ID != req.ID || resp.Result != "you said: trace" {
			t.Fatalf("response %+v %v", resp, err)
		}
		io.WriteString(tc, "NEXT\r\n")
		line, _ := r.ReadString('\n')
		if line != "PROCEED\r\n" {
			t.Fatalf("after NEXT: %q", line)
		}
	}
	io.WriteString(tc, "END\r\n")
}

func TestBrowserGetsTheFriendlyPage(t *testing.T) {
	_, ep := startListener(t, echoService())
	tc, r := rawDial(t, ep, nil)
	io.WriteString(tc, "GET / HTTP/1.1\r\nHost: tentacle\r\n\r\n")
	all, _ := io.ReadAll(r)
	s := string(all)
	if !strings.HasPrefix(s, "HTTP/1.0 200 OK\r\n") || !strings.Contains(s, "Content-Type: text/html; charset=utf-8") || !strings.Contains(s, "Octopus Tentacle") {
		t.Errorf("page: %q", s)
	}
}

func TestGarbageAfterIdentificationClosesOnlyThatConnection(t *testing.T) {
	_, cli, _ := certs(t)
	_, ep := startListener(t, echoService())
	for _, junk := range []string{"MX-HACKER 1.0\r\n\r\n", "MX-CLIENT 1.0\rX", "MX-CLIENT 1.0\r\nnot empty\r\n", strings.Repeat("A", 100_000)} {
		tc, r := rawDial(t, ep, cli)
		io.WriteString(tc, "MX\r\n\r\n")
		io.WriteString(tc, junk)
		if b, _ := io.ReadAll(r); len(b) != 0 {
			t.Errorf("%q: listener replied %q", junk[:min(len(junk), 20)], b)
		}
	}
	c := newClient(t, cli)
	if _, err := c.Call(t.Context(), ep, "IEchoService", "Say", []any{"ok"}, nil); err != nil {
		t.Errorf("listener unusable after bad peers: %v", err)
	}
}

func TestShutdownFinishesRequestsInFlight(t *testing.T) {
	_, cli, _ := certs(t)
	svc := echoService()
	started := make(chan struct{})
	var finished atomic.Bool
	svc.Handle("IEchoService", "Slow", func(ctx context.Context, call *Call) (any, error) {
		close(started)
		time.Sleep(300 * time.Millisecond)
		finished.Store(true)
		return "done", nil
	})
	l, ep := startListener(t, svc)
	c := newClient(t, cli)
	// One idle pooled connection and one busy call.
	if _, err := c.Call(t.Context(), ep, "IEchoService", "Say", []any{"x"}, nil); err != nil {
		t.Fatal(err)
	}
	c2 := newClient(t, cli)
	result := make(chan error, 1)
	go func() {
		got, err := c2.Call(context.Background(), ep, "IEchoService", "Slow", nil, nil)
		if err == nil && got != "done" {
			err = fmt.Errorf("got %v", got)
		}
		result <- err
	}()
	<-started
	if err := l.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !finished.Load() {
		t.Error("Shutdown returned before the request in flight finished")
	}
	if err := <-result; err != nil {
		t.Errorf("the request in flight did not get its response: %v", err)
	}
	addr := strings.TrimSuffix(strings.TrimPrefix(ep.BaseURI, "https://"), "/")
	if conn, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		conn.Close()
		t.Error("still accepting after Shutdown")
	}
}

// A reset is recognised by its errno on every OS: Windows' text ("An existing
// connection was forcibly closed by the remote host.") names no reset, and
// a refused client there often sees one instead of the refusal.
func TestIsResetRecognisesTheOSReset(t *testing.T) {
	errno := syscall.ECONNRESET
	if runtime.GOOS == "windows" {
		errno = syscall.Errno(10054) // WSAECONNRESET
	}
	err := &net.OpError{Op: "read", Net: "tcp", Err: &os.SyscallError{Syscall: "read", Err: errno}}
	if !isReset(fmt.Errorf("handshake: %w", err)) {
		t.Errorf("isReset(%v) = false", err)
	}
	if isReset(&net.OpError{Op: "read", Net: "tcp", Err: &os.SyscallError{Syscall: "read", Err: syscall.ECONNREFUSED}}) {
		t.Error("a refused connection is not a reset")
	}
}
