package azure

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"time"

	"software.sslmate.com/src/go-pkcs12"
)

// A service principal's certificate proves itself to Entra ID with a
// client assertion: a JWT it signs, naming the certificate by thumbprint.
// The JWT is written here with crypto/rsa, in the form MSAL (and so
// azidentity) sends to Entra ID: PS256, the certificate's SHA-256
// thumbprint as x5t#S256, claims aud/iss/sub/jti/nbf/exp, ten minutes.

// certificate is a service principal's key and certificate (with the rest
// of its chain, for subject name/issuer authentication).
type certificate struct {
	key   *rsa.PrivateKey
	cert  *x509.Certificate
	chain []*x509.Certificate // cert first
}

// loadCertificate reads AZURE_CLIENT_CERTIFICATE_PATH: PEM holding the
// certificate and its unencrypted key, or PKCS#12 (PFX) with password.
func loadCertificate(path, password string) (*certificate, error) {
	data, err := readLimited(path, 1<<20)
	if err != nil {
		return nil, err
	}
	var key any
	var certs []*x509.Certificate
	if bytes.Contains(data, []byte("-----BEGIN")) {
		for rest := data; ; {
			var b *pem.Block
			if b, rest = pem.Decode(rest); b == nil {
				break
			}
			switch b.Type {
			case "CERTIFICATE":
				c, err := x509.ParseCertificate(b.Bytes)
				if err != nil {
					return nil, fmt.Errorf("%s: %w", path, err)
				}
				certs = append(certs, c)
			case "PRIVATE KEY":
				if key, err = x509.ParsePKCS8PrivateKey(b.Bytes); err != nil {
					return nil, fmt.Errorf("%s: %w", path, err)
				}
			case "RSA PRIVATE KEY":
				if _, encrypted := b.Headers["Proc-Type"]; encrypted {
					return nil, fmt.Errorf("%s: the key is encrypted; give a PFX file with AZURE_CLIENT_CERTIFICATE_PASSWORD instead", path)
				}
				if key, err = x509.ParsePKCS1PrivateKey(b.Bytes); err != nil {
					return nil, fmt.Errorf("%s: %w", path, err)
				}
			case "ENCRYPTED PRIVATE KEY":
				return nil, fmt.Errorf("%s: the key is encrypted; give a PFX file with AZURE_CLIENT_CERTIFICATE_PASSWORD instead", path)
			}
		}
	} else {
		var leaf *x509.Certificate
		var cas []*x509.Certificate
		key, leaf, cas, err = pkcs12.DecodeChain(data, password)
		if err != nil {
			return nil, fmt.Errorf("%s is neither PEM nor a PFX file that AZURE_CLIENT_CERTIFICATE_PASSWORD opens: %w", path, err)
		}
		certs = append([]*x509.Certificate{leaf}, cas...)
	}
	rk, ok := key.(*rsa.PrivateKey)
	switch {
	case key == nil:
		return nil, fmt.Errorf("%s holds no private key", path)
	case !ok:
		return nil, fmt.Errorf("%s holds a %T key; Entra ID takes RSA keys only", path, key)
	}
	c := &certificate{key: rk}
	for _, cert := range certs {
		if pub, ok := cert.PublicKey.(*rsa.PublicKey); ok && pub.Equal(&rk.PublicKey) {
			c.cert = cert
			c.chain = append([]*x509.Certificate{cert}, c.chain...)
		} else {
			c.chain = append(c.chain, cert)
		}
	}
	if c.cert == nil {
		return nil, fmt.Errorf("%s holds no certificate for its private key", path)
	}
	return c, nil
}

// assertion is a signed JWT for clientID to present at the token endpoint
// audience, valid from now for ten minutes.
func (c *certificate) assertion(clientID, audience string, now time.Time, sendChain bool) (string, error) {
	thumb := sha256.Sum256(c.cert.Raw)
	header := map[string]any{"alg": "PS256", "typ": "JWT", "x5t#S256": base64.RawURLEncoding.EncodeToString(thumb[:])}
	if sendChain {
		// x5c is standard base64 DER, leaf first (RFC 7515 4.1.6).
		var x5c []string
		for _, cert := range c.chain {
			x5c = append(x5c, base64.StdEncoding.EncodeToString(cert.Raw))
		}
		header["x5c"] = x5c
	}
	var jti [16]byte
	if _, err := rand.Read(jti[:]); err != nil {
		return "", err
	}
	jti[6] = jti[6]&0x0f | 0x40 // a version 4 UUID, as MSAL sends
	jti[8] = jti[8]&0x3f | 0x80
	claims := map[string]any{
		"aud": audience,
		"iss": clientID,
		"sub": clientID,
		"jti": fmt.Sprintf("%x-%x-%x-%x-%x", jti[0:4], jti[4:6], jti[6:8], jti[8:10], jti[10:]),
		"nbf": now.Unix(),
		"exp": now.Add(10 * time.Minute).Unix(),
	}
	h, err := json.Marshal(header)
	if err != nil {
		return "", err
	}
	p, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	signed := base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(p)
	digest := sha256.Sum256([]byte(signed))
	sig, err := rsa.SignPSS(rand.Reader, c.key, crypto.SHA256, digest[:], &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
	if err != nil {
		return "", errors.New("signing the client assertion: " + err.Error())
	}
	return signed + "." + base64.RawURLEncoding.EncodeToString(sig), nil
}
