package halibut

import (
	"bytes"
	"context"
	"crypto/sha1"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

const akiCritical = "x509: authority key identifier incorrectly marked critical"

// opensslNonConformingCert makes, with OpenSSL, a certificate shaped as
// Halibut's generator makes them (Basic Constraints and Authority Key
// Identifier critical), which Go's x509 parser refuses. It is returned as
// crypto/tls serves our own identity: raw DER and key, no parsed Leaf.
func opensslNonConformingCert(t *testing.T) *tls.Certificate {
	t.Helper()
	openssl, err := exec.LookPath("openssl")
	if err != nil {
		t.Skip("openssl is not installed (make deps installs it): cannot make a certificate Go's x509 refuses")
	}
	dir := t.TempDir()
	keyPath, crtPath := filepath.Join(dir, "k.pem"), filepath.Join(dir, "c.pem")
	out, err := exec.Command(openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", keyPath, "-out", crtPath,
		"-days", "3650", "-subj", "/CN=Halibut Style", "-addext", "basicConstraints=critical,CA:FALSE",
		"-addext", "subjectKeyIdentifier=hash", "-addext", "authorityKeyIdentifier=critical,keyid:always").CombinedOutput()
	if err != nil {
		t.Fatalf("openssl req: %v\n%s", err, out)
	}
	crtPEM, _ := os.ReadFile(crtPath)
	keyPEM, _ := os.ReadFile(keyPath)
	crt, _ := pem.Decode(crtPEM)
	kb, _ := pem.Decode(keyPEM)
	key, err := x509.ParsePKCS8PrivateKey(kb.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := x509.ParseCertificate(crt.Bytes); err == nil || err.Error() != akiCritical {
		t.Fatalf("the fixture should be refused by Go's parser, got %v", err)
	}
	return &tls.Certificate{Certificate: [][]byte{crt.Bytes}, PrivateKey: key}
}

// logBuffer collects a component's log lines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// errorLine is the first ERROR line that contains all of want.
func (b *logBuffer) errorLine(want ...string) string {
	b.mu.Lock()
	defer b.mu.Unlock()
next:
	for _, line := range strings.Split(b.buf.String(), "\n") {
		if !strings.Contains(line, "level=ERROR") {
			continue
		}
		for _, w := range want {
			if !strings.Contains(line, w) {
				continue next
			}
		}
		return line
	}
	return ""
}

// Our own identity may be a certificate Go refuses: crypto/tls serves the
// DER without parsing it. OpenSSL, an independent TLS stack (like .NET's,
// which Octopus Server uses), receives exactly those bytes.
func TestListenerServesCertificateGoRefuses(t *testing.T) {
	own := opensslNonConformingCert(t)
	_, cli, _ := certs(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := &Listener{Certificate: own, Trust: NewTrustStore(Thumbprint(cli.Leaf)), Service: echoService(), Limits: testLimits()}
	done := make(chan struct{})
	go func() { l.Serve(ln); close(done) }()
	t.Cleanup(func() { l.Shutdown(t.Context()); <-done })

	// The certificate as a TLS 1.3 client receives it...
	out, _ := exec.Command("openssl", "s_client", "-connect", ln.Addr().String(), "-showcerts").CombinedOutput()
	at := bytes.Index(out, []byte("-----BEGIN CERTIFICATE-----"))
	if at < 0 {
		t.Fatalf("openssl s_client received no certificate:\n%s", out)
	}
	block, _ := pem.Decode(out[at:])
	sum := sha1.Sum(block.Bytes)
	if got := strings.ToUpper(hex.EncodeToString(sum[:])); got != thumbprintDER(own.Certificate[0]) {
		t.Errorf("served thumbprint %s, want %s", got, thumbprintDER(own.Certificate[0]))
	}
	// ...and the conversation goes on over it (the page a browser gets; the
	// listener closes without close_notify, which s_client reports).
	cmd := exec.Command("openssl", "s_client", "-connect", ln.Addr().String(), "-quiet")
	cmd.Stdin = strings.NewReader("GET / HTTP/1.0\r\n\r\n")
	out, _ = cmd.CombinedOutput()
	if !bytes.Contains(out, []byte("<h1>Octopus Tentacle</h1>")) {
		t.Fatalf("no friendly page over TLS:\n%s", out)
	}
}

// A peer whose certificate Go refuses cannot complete a handshake with us
// (crypto/tls parses it before any callback; see PeerCertificateError).
// Both sides then say why, at Error, in each direction and role; and the
// thumbprint pin is not bypassed: trusted or not, no connection is made.
func TestCertificateGoRefusesIsNamedOnBothSides(t *testing.T) {
	odd := opensslNonConformingCert(t)
	oddThumb := thumbprintDER(odd.Certificate[0])
	server, tentacle, stranger := certs(t)

	isCause := func(t *testing.T, err error, ours bool) {
		t.Helper()
		var pe *PeerCertificateError
		if !errors.As(err, &pe) || pe.Ours != ours || pe.Cause != akiCritical || !strings.Contains(err.Error(), "new-certificate") {
			t.Fatalf("err = %v", err)
		}
	}

	listen := func(t *testing.T, cert *tls.Certificate, trusted string) (Endpoint, *logBuffer) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		logs := &logBuffer{}
		l := &Listener{Certificate: cert, Trust: NewTrustStore(trusted), Service: echoService(), Limits: testLimits(), Logger: logs.logger()}
		done := make(chan struct{})
		go func() { l.Serve(ln); close(done) }()
		t.Cleanup(func() { l.Shutdown(context.Background()); <-done })
		return Endpoint{BaseURI: "https://" + ln.Addr().String() + "/", Thumbprint: thumbprintDER(cert.Certificate[0])}, logs
	}

	t.Run("listening Tentacle's certificate", func(t *testing.T) {
		ep, logs := listen(t, odd, Thumbprint(tentacle.Leaf))
		_, err := newClient(t, tentacle).Call(t.Context(), ep, "IEchoService", "Say", []any{"hi"}, nil)
		isCause(t, err, false)
		waitFor(t, func() bool { return logs.errorLine("error decoding message", akiCritical) != "" }, "the listener's own-certificate error")
	})

	t.Run("Octopus Server's certificate calling a listening Tentacle", func(t *testing.T) {
		ep, logs := listen(t, server, oddThumb) // trusted, still refused
		_, err := newClient(t, odd).Call(t.Context(), ep, "IEchoService", "Say", []any{"hi"}, nil)
		isCause(t, err, true)
		waitFor(t, func() bool { return logs.errorLine("TLS client at", akiCritical) != "" }, "the listener's peer-certificate error")
	})

	poll := func(t *testing.T, serverCert, agentCert *tls.Certificate, expected string) (*PollingServer, *logBuffer, *logBuffer) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		serverLogs, agentLogs := &logBuffer{}, &logBuffer{}
		ps := &PollingServer{Certificate: serverCert, Trust: NewTrustStore(thumbprintDER(agentCert.Certificate[0])), Limits: testLimits(), Logger: serverLogs.logger()}
		served := make(chan struct{})
		go func() { ps.Serve(ln); close(served) }()
		p := &Poller{Certificate: agentCert, Service: echoService(), Limits: testLimits(), Logger: agentLogs.logger(),
			ServerAddress: "https://" + ln.Addr().String() + "/", ServerThumbprint: expected,
			SubscriptionID: "poll://abcdefghjkmnpqrstuvw/", Connections: 1}
		ctx, cancel := context.WithCancel(context.Background())
		ran := make(chan struct{})
		go func() { p.Run(ctx); close(ran) }()
		t.Cleanup(func() {
			cancel()
			<-ran
			ps.Shutdown(context.Background())
			<-served
			if t.Failed() {
				t.Logf("server log:\n%s\nagent log:\n%s", serverLogs.String(), agentLogs.String())
			}
		})
		return ps, serverLogs, agentLogs
	}

	for _, pin := range []struct{ name, thumb string }{{"trusted", oddThumb}, {"untrusted", Thumbprint(stranger.Leaf)}} {
		t.Run("Octopus Server's certificate, polling, "+pin.name, func(t *testing.T) {
			ps, serverLogs, agentLogs := poll(t, odd, tentacle, pin.thumb)
			waitFor(t, func() bool { return agentLogs.errorLine("TLS server at", akiCritical, "new-certificate") != "" }, "the agent's error")
			waitFor(t, func() bool { return serverLogs.errorLine("error decoding message", akiCritical) != "" }, "the server's error")
			if n := ps.Subscribers("poll://abcdefghjkmnpqrstuvw/"); n != 0 {
				t.Errorf("%d connections identified", n)
			}
		})
	}

	t.Run("polling Tentacle's certificate", func(t *testing.T) {
		ps, serverLogs, agentLogs := poll(t, server, odd, Thumbprint(server.Leaf))
		waitFor(t, func() bool { return serverLogs.errorLine("TLS client at", akiCritical) != "" }, "the server's error")
		waitFor(t, func() bool { return agentLogs.errorLine("error decoding message", akiCritical) != "" }, "the agent's error")
		if n := ps.Subscribers("poll://abcdefghjkmnpqrstuvw/"); n != 0 {
			t.Errorf("%d connections identified", n)
		}
	})
}

// The messages recognised come from crypto/tls itself: if a Go release
// rewords them, this fails rather than the agent silently losing the cause.
func TestCryptoTLSCertificateParseMessages(t *testing.T) {
	for _, prefix := range []string{tlsServerCertificateUnparsable, tlsClientCertificateUnparsable} {
		pe, ok := asPeerCertificateError(errors.New(prefix+akiCritical), "the peer", nil)
		if !ok || pe.Cause != akiCritical || pe.Ours {
			t.Errorf("%q: %+v %v", prefix, pe, ok)
		}
	}
	if _, ok := asPeerCertificateError(errors.New("tls: handshake failure"), "the peer", nil); ok {
		t.Error("an unrelated handshake error was taken for a certificate error")
	}
}
