package octopustest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha1"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"math/big"
	"net"
	"strings"
	"testing"
	"time"
)

// PublicCertificate is a certificate for loopback addresses issued by a throwaway CA: what a WebSocket endpoint behind a reverse proxy
// with a public certificate presents, for tests of standard validation.
type PublicCertificate struct {
	TLS tls.Certificate
	// Roots holds the CA; RootsPEM is the same, for SSL_CERT_FILE.
	Roots    *x509.CertPool
	RootsPEM []byte
	// Thumbprint is the leaf's SHA-1 thumbprint, upper-case hex.
	Thumbprint string
}

// NewPublicCertificate makes a CA and a leaf it signs, valid for an hour,
// for hosts (names or IP addresses; by default 127.0.0.1, ::1 and localhost).
func NewPublicCertificate(t testing.TB, hosts ...string) PublicCertificate {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "octopustest CA"},
		NotBefore: now.Add(-time.Minute), NotAfter: now.Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	leafTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "localhost"},
		NotBefore: now.Add(-time.Minute), NotAfter: now.Add(time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, KeyUsage: x509.KeyUsageDigitalSignature,
	}
	if len(hosts) == 0 {
		hosts = []string{"127.0.0.1", "::1", "localhost"}
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			leafTmpl.IPAddresses = append(leafTmpl.IPAddresses, ip)
		} else {
			leafTmpl.DNSNames = append(leafTmpl.DNSNames, h)
		}
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafTmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	sum := sha1.Sum(leafDER)
	return PublicCertificate{
		TLS:        tls.Certificate{Certificate: [][]byte{leafDER}, PrivateKey: key},
		Roots:      roots,
		RootsPEM:   pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		Thumbprint: strings.ToUpper(hex.EncodeToString(sum[:])),
	}
}
