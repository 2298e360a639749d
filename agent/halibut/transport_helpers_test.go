package halibut

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"sync"
	"testing"
	"time"
)

// testCerts are generated once per test binary: RSA-2048 self-signed, like
// a real Tentacle's and Octopus Server's.
var (
	certOnce               sync.Once
	serverCert, clientCert *tls.Certificate
	strangerCert           *tls.Certificate
)

func makeCert(t testing.TB, cn string) *tls.Certificate {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	return &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
}

func certs(t testing.TB) (server, client, stranger *tls.Certificate) {
	certOnce.Do(func() {
		serverCert = makeCert(t, "Octopus Tentacle")
		clientCert = makeCert(t, "Octopus Server")
		strangerCert = makeCert(t, "Stranger")
	})
	return serverCert, clientCert, strangerCert
}

// testLimits are the defaults with short retry pauses, so failure tests are
// quick; everything else is as in production.
func testLimits() Limits {
	lim := DefaultLimits()
	lim.RetryListeningSleepInterval = 10 * time.Millisecond
	return lim
}

// startListener serves svc on a loopback port and returns its endpoint.
func startListener(t *testing.T, svc *Service, trusted ...string) (*Listener, Endpoint) {
	t.Helper()
	srv, cli, _ := certs(t)
	if len(trusted) == 0 {
		trusted = []string{Thumbprint(cli.Leaf)}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := &Listener{Certificate: srv, Trust: NewTrustStore(trusted...), Service: svc, Limits: testLimits()}
	done := make(chan struct{})
	go func() { l.Serve(ln); close(done) }()
	t.Cleanup(func() {
		l.Shutdown(t.Context())
		<-done
	})
	return l, Endpoint{BaseURI: "https://" + ln.Addr().String() + "/", Thumbprint: Thumbprint(srv.Leaf)}
}

func newClient(t *testing.T, cert *tls.Certificate) *Client {
	c := &Client{Certificate: cert, Limits: testLimits()}
	t.Cleanup(c.Close)
	return c
}
