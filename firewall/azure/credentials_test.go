package azure

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"software.sslmate.com/src/go-pkcs12"
)

const armScope = "https://management.azure.com/.default"

// noAzure makes this test see a machine with no Azure anything: every
// variable the chain reads cleared, the instance metadata service moved to
// a closed port on loopback (never 169.254.169.254), an empty PATH and
// HOME, so that the machine's own environment and ~/.azure are not used.
func noAzure(t *testing.T) {
	t.Helper()
	for _, v := range []string{"AZURE_TENANT_ID", "AZURE_CLIENT_ID", "AZURE_CLIENT_SECRET", "AZURE_CLIENT_CERTIFICATE_PATH",
		"AZURE_CLIENT_CERTIFICATE_PASSWORD", "AZURE_CLIENT_SEND_CERTIFICATE_CHAIN", "AZURE_FEDERATED_TOKEN_FILE",
		"AZURE_AUTHORITY_HOST", "IDENTITY_ENDPOINT", "IDENTITY_HEADER", "AZURE_RESOURCE_MANAGER_ENDPOINT"} {
		t.Setenv(v, "")
	}
	t.Setenv("AZURE_POD_IDENTITY_AUTHORITY_HOST", closedPort(t))
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("USERPROFILE", home)
	t.Setenv("AZURE_CONFIG_DIR", filepath.Join(home, ".azure"))
	t.Setenv("PATH", t.TempDir())
}

// closedPort is an http URL on loopback where nothing listens.
func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return "http://" + addr
}

// tokenServer is an httptest server answering token requests with answer,
// counting them.
type tokenServer struct {
	*httptest.Server
	hits atomic.Int32
}

func newTokenServer(t *testing.T, answer func(w http.ResponseWriter, r *http.Request)) *tokenServer {
	ts := &tokenServer{}
	ts.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ts.hits.Add(1)
		answer(w, r)
	}))
	t.Cleanup(ts.Close)
	return ts
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// entra is a fake Entra ID token endpoint for tenant "tenant-1" that
// checks the client credentials grant and lets check judge the client's
// proof; it answers token.
func entra(t *testing.T, token string, check func(r *http.Request) error) *tokenServer {
	return newTokenServer(t, func(w http.ResponseWriter, r *http.Request) {
		err := r.ParseForm()
		switch {
		case err != nil:
		case r.Method != http.MethodPost || r.URL.Path != "/tenant-1/oauth2/v2.0/token":
			err = fmt.Errorf("%s %s", r.Method, r.URL.Path)
			t.Errorf("token request: %v", err)
		case r.PostForm.Get("grant_type") != "client_credentials" || r.PostForm.Get("client_id") != "client-1" || r.PostForm.Get("scope") != armScope:
			err = fmt.Errorf("form %v", r.PostForm)
			t.Errorf("token request: %v", err)
		default:
			err = check(r)
		}
		if err != nil {
			writeJSON(w, http.StatusUnauthorized, map[string]any{"error": "invalid_client", "error_description": "AADSTS7000215: " + err.Error() + "\r\nTrace ID: x"})
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599, "access_token": token})
	})
}

func mustToken(t *testing.T, ts TokenSource, want string) time.Time {
	t.Helper()
	got, exp, err := ts.Token(context.Background(), armScope)
	if err != nil || got != want {
		t.Fatalf("token %q, %v; want %q", got, err, want)
	}
	return exp
}

func TestClientSecret(t *testing.T) {
	noAzure(t)
	srv := entra(t, "tok-secret", func(r *http.Request) error {
		if r.PostForm.Get("client_secret") != "s3cret" {
			return fmt.Errorf("client_secret %q", r.PostForm.Get("client_secret"))
		}
		return nil
	})
	t.Setenv("AZURE_AUTHORITY_HOST", srv.URL+"/")
	t.Setenv("AZURE_TENANT_ID", "tenant-1")
	t.Setenv("AZURE_CLIENT_ID", "client-1")
	t.Setenv("AZURE_CLIENT_SECRET", "s3cret")
	cred := DefaultCredential()
	exp := mustToken(t, cred, "tok-secret")
	if d := time.Until(exp); d < 59*time.Minute || d > time.Hour {
		t.Fatalf("expires in %s", d)
	}
	mustToken(t, cred, "tok-secret")
	if n := srv.hits.Load(); n != 1 {
		t.Fatalf("%d token requests, want 1 (cached)", n)
	}

	// A wrong secret: the chain stops there, with Entra ID's reason.
	t.Setenv("AZURE_CLIENT_SECRET", "wrong")
	_, _, err := DefaultCredential().Token(context.Background(), armScope)
	if err == nil || !strings.Contains(err.Error(), "environment: Entra ID answered HTTP 401: invalid_client: AADSTS7000215") {
		t.Fatalf("got %v", err)
	}
	t.Setenv("AZURE_AUTHORITY_HOST", "http://login.example.com/")
	if _, _, err := DefaultCredential().Token(context.Background(), armScope); err == nil || !strings.Contains(err.Error(), "not an https URL") {
		t.Fatalf("plain http authority: %v", err)
	}
}

// newTestCertificate is a self-signed RSA certificate and its key.
func newTestCertificate(t *testing.T) (*rsa.PrivateKey, *x509.Certificate) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "tentacle-sp"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return key, cert
}

// checkAssertion verifies a client assertion as Entra ID would: the
// signature with the certificate's public key, the thumbprint, the claims.
func checkAssertion(jwt string, cert *x509.Certificate, audience string, wantChain bool) error {
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		return fmt.Errorf("not a JWT: %q", jwt)
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		return err
	}
	digest := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if err := rsa.VerifyPSS(cert.PublicKey.(*rsa.PublicKey), crypto.SHA256, digest[:], sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthAuto}); err != nil {
		return fmt.Errorf("signature: %v", err)
	}
	var header struct {
		Alg, Typ string
		X5tS256  string   `json:"x5t#S256"`
		X5c      []string `json:"x5c"`
	}
	var claims struct {
		Aud, Iss, Sub, Jti string
		Nbf, Exp           int64
	}
	for i, v := range []any{&header, &claims} {
		b, err := base64.RawURLEncoding.DecodeString(parts[i])
		if err != nil {
			return err
		}
		if err := json.Unmarshal(b, v); err != nil {
			return err
		}
	}
	thumb := sha256.Sum256(cert.Raw)
	switch {
	case header.Alg != "PS256" || header.Typ != "JWT":
		return fmt.Errorf("header %+v", header)
	case header.X5tS256 != base64.RawURLEncoding.EncodeToString(thumb[:]):
		return fmt.Errorf("x5t#S256 %q", header.X5tS256)
	case wantChain != (len(header.X5c) == 1 && header.X5c[0] == base64.StdEncoding.EncodeToString(cert.Raw)):
		return fmt.Errorf("x5c %v", header.X5c)
	case claims.Aud != audience || claims.Iss != "client-1" || claims.Sub != "client-1" || len(claims.Jti) != 36:
		return fmt.Errorf("claims %+v", claims)
	case claims.Exp-claims.Nbf != 600 || time.Since(time.Unix(claims.Nbf, 0)).Abs() > time.Minute:
		return fmt.Errorf("validity %d..%d", claims.Nbf, claims.Exp)
	}
	return nil
}

func TestClientCertificate(t *testing.T) {
	key, cert := newTestCertificate(t)
	dir := t.TempDir()
	pkcs8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	pemFile := filepath.Join(dir, "sp.pem")
	pemData := append(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8}), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw})...)
	pkcs1File := filepath.Join(dir, "sp-pkcs1.pem")
	pkcs1Data := append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}), pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})...)
	pfx, err := pkcs12.Modern.Encode(key, cert, nil, "pfx-pass")
	if err != nil {
		t.Fatal(err)
	}
	pfxFile := filepath.Join(dir, "sp.pfx")
	for f, b := range map[string][]byte{pemFile: pemData, pkcs1File: pkcs1Data, pfxFile: pfx} {
		if err := os.WriteFile(f, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}

	for _, c := range []struct {
		name, path, password string
		chain                bool
	}{{"pem", pemFile, "", false}, {"pkcs1", pkcs1File, "", true}, {"pfx", pfxFile, "pfx-pass", false}} {
		t.Run(c.name, func(t *testing.T) {
			noAzure(t)
			var srv *tokenServer
			srv = entra(t, "tok-cert", func(r *http.Request) error {
				if r.PostForm.Get("client_secret") != "" || r.PostForm.Get("client_assertion_type") != jwtBearer {
					return fmt.Errorf("form %v", r.PostForm)
				}
				return checkAssertion(r.PostForm.Get("client_assertion"), cert, srv.URL+"/tenant-1/oauth2/v2.0/token", c.chain)
			})
			t.Setenv("AZURE_AUTHORITY_HOST", srv.URL)
			t.Setenv("AZURE_TENANT_ID", "tenant-1")
			t.Setenv("AZURE_CLIENT_ID", "client-1")
			t.Setenv("AZURE_CLIENT_CERTIFICATE_PATH", c.path)
			t.Setenv("AZURE_CLIENT_CERTIFICATE_PASSWORD", c.password)
			if c.chain {
				t.Setenv("AZURE_CLIENT_SEND_CERTIFICATE_CHAIN", "true")
			}
			mustToken(t, DefaultCredential(), "tok-cert")
		})
	}

	t.Run("wrong password", func(t *testing.T) {
		noAzure(t)
		t.Setenv("AZURE_TENANT_ID", "tenant-1")
		t.Setenv("AZURE_CLIENT_ID", "client-1")
		t.Setenv("AZURE_CLIENT_CERTIFICATE_PATH", pfxFile)
		t.Setenv("AZURE_CLIENT_CERTIFICATE_PASSWORD", "nope")
		_, _, err := DefaultCredential().Token(context.Background(), armScope)
		if err == nil || !strings.Contains(err.Error(), "neither PEM nor a PFX file that AZURE_CLIENT_CERTIFICATE_PASSWORD opens") {
			t.Fatalf("got %v", err)
		}
	})
}

func TestWorkloadIdentity(t *testing.T) {
	noAzure(t)
	file := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(file, []byte("federated.jwt.one\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var want atomic.Value
	want.Store("federated.jwt.one")
	srv := entra(t, "tok-workload", func(r *http.Request) error {
		if r.PostForm.Get("client_assertion_type") != jwtBearer || r.PostForm.Get("client_assertion") != want.Load() {
			return fmt.Errorf("form %v", r.PostForm)
		}
		return nil
	})
	t.Setenv("AZURE_AUTHORITY_HOST", srv.URL)
	t.Setenv("AZURE_TENANT_ID", "tenant-1")
	t.Setenv("AZURE_CLIENT_ID", "client-1")
	t.Setenv("AZURE_FEDERATED_TOKEN_FILE", file)
	mustToken(t, DefaultCredential(), "tok-workload")

	// The kubelet rotates the file: a new credential reads the new one.
	if err := os.WriteFile(file, []byte("federated.jwt.two"), 0o600); err != nil {
		t.Fatal(err)
	}
	want.Store("federated.jwt.two")
	mustToken(t, DefaultCredential(), "tok-workload")
}

func TestManagedIdentityIMDS(t *testing.T) {
	noAzure(t)
	var clientID atomic.Value
	clientID.Store("")
	srv := newTokenServer(t, func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if r.URL.Path != "/metadata/identity/oauth2/token" || r.Header.Get("Metadata") != "true" || q.Get("api-version") != "2018-02-01" ||
			q.Get("resource") != "https://management.azure.com/" || q.Get("client_id") != clientID.Load() {
			writeJSON(w, http.StatusBadRequest, map[string]any{"error": "invalid_request", "error_description": "Identity not found"})
			return
		}
		// IMDS writes its numbers as strings.
		writeJSON(w, http.StatusOK, map[string]any{"access_token": "tok-imds", "expires_in": "86399",
			"expires_on": fmt.Sprint(time.Now().Add(24 * time.Hour).Unix()), "resource": "https://management.azure.com/", "token_type": "Bearer"})
	})
	t.Setenv("AZURE_POD_IDENTITY_AUTHORITY_HOST", srv.URL)
	exp := mustToken(t, DefaultCredential(), "tok-imds")
	if d := time.Until(exp); d < 23*time.Hour {
		t.Fatalf("expires in %s", d)
	}

	// AZURE_CLIENT_ID alone picks a user-assigned identity.
	t.Setenv("AZURE_CLIENT_ID", "user-assigned-1")
	clientID.Store("user-assigned-1")
	mustToken(t, DefaultCredential(), "tok-imds")
	clientID.Store("another")
	_, _, err := DefaultCredential().Token(context.Background(), armScope)
	if err == nil || !strings.Contains(err.Error(), "user-assigned identity with client ID user-assigned-1 (AZURE_CLIENT_ID) is not assigned") {
		t.Fatalf("got %v", err)
	}
}

func TestManagedIdentityAppService(t *testing.T) {
	noAzure(t)
	srv := newTokenServer(t, func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if r.URL.Path != "/msi/token" || r.Header.Get("X-IDENTITY-HEADER") != "header-secret" || q.Get("api-version") != "2019-08-01" ||
			q.Get("resource") != "https://management.azure.com/" {
			t.Errorf("request %s %v", r.URL, r.Header)
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"access_token": "tok-appservice", "expires_on": fmt.Sprint(time.Now().Add(time.Hour).Unix()),
			"resource": "https://management.azure.com/", "token_type": "Bearer"})
	})
	t.Setenv("IDENTITY_ENDPOINT", srv.URL+"/msi/token")
	t.Setenv("IDENTITY_HEADER", "header-secret")
	mustToken(t, DefaultCredential(), "tok-appservice")
}

// fakeAz puts an `az` on a fresh PATH that prints stdout, or stderr and
// fails, and records its arguments.
func fakeAz(t *testing.T, stdout, stderr string) (argsFile string) {
	t.Helper()
	if runtime.GOOS == "windows" {
		t.Skip("the fake az is a shell script")
	}
	dir := t.TempDir()
	argsFile = filepath.Join(dir, "args")
	out := filepath.Join(dir, "out")
	// Shell builtins only: PATH holds nothing else.
	script := "#!/bin/sh\necho \"$@\" > '" + argsFile + "'\nwhile IFS= read -r l; do printf '%s\\n' \"$l\"; done < '" + out + "'"
	text := stdout
	if stderr != "" {
		text = stderr
		script += " >&2\nexit 1"
	}
	if err := os.WriteFile(out, []byte(text+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "az"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir)
	return argsFile
}

func TestAzureCLI(t *testing.T) {
	noAzure(t)
	exp := time.Now().Add(50 * time.Minute).Truncate(time.Second)
	// What az 2.6x prints.
	args := fakeAz(t, fmt.Sprintf(`{
  "accessToken": "tok-cli",
  "expiresOn": %q,
  "expires_on": %d,
  "subscription": "00000000-0000-0000-0000-000000000000",
  "tenant": "11111111-1111-1111-1111-111111111111",
  "tokenType": "Bearer"
}`, exp.Format("2006-01-02 15:04:05.000000"), exp.Unix()), "")
	if got := mustToken(t, DefaultCredential(), "tok-cli"); !got.Equal(exp) {
		t.Fatalf("expires %s, want %s", got, exp)
	}
	b, _ := os.ReadFile(args)
	if got := strings.TrimSpace(string(b)); got != "account get-access-token --output json --resource https://management.azure.com/" {
		t.Fatalf("az %s", got)
	}

	// Older az: expiresOn only, in local time.
	fakeAz(t, fmt.Sprintf(`{"accessToken": "tok-cli-old", "expiresOn": %q, "tokenType": "Bearer"}`, exp.Format("2006-01-02 15:04:05.000000")), "")
	if got := mustToken(t, DefaultCredential(), "tok-cli-old"); !got.Equal(exp) {
		t.Fatalf("expires %s, want %s", got, exp)
	}

	// Not logged in: the all-failed sentence says why for each source.
	fakeAz(t, "", "ERROR: Please run 'az login' to setup account.")
	_, err := New(context.Background(), Options{Subscription: "s", ResourceGroup: "g", NSG: "n"})
	userError(t, err, "No usable Azure credentials were found")
	for _, want := range []string{"environment: AZURE_TENANT_ID, AZURE_CLIENT_ID, AZURE_CLIENT_SECRET or AZURE_CLIENT_CERTIFICATE_PATH not set",
		"workload identity: AZURE_FEDERATED_TOKEN_FILE", "managed identity: no instance metadata service at 127.0.0.1:",
		"Azure CLI: az account get-access-token: Please run 'az login' to setup account"} {
		userError(t, err, want)
	}
}

// The chain takes the first source set up, and does not look further.
func TestChainOrder(t *testing.T) {
	noAzure(t)
	imds := newTokenServer(t, func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"access_token": "tok-imds", "expires_in": "3600"})
	})
	t.Setenv("AZURE_POD_IDENTITY_AUTHORITY_HOST", imds.URL)
	args := fakeAz(t, `{"accessToken": "tok-cli", "expires_on": 4102444800}`, "")
	login := entra(t, "tok-secret", func(*http.Request) error { return nil })
	t.Setenv("AZURE_AUTHORITY_HOST", login.URL)
	t.Setenv("AZURE_TENANT_ID", "tenant-1")
	t.Setenv("AZURE_CLIENT_ID", "client-1")
	t.Setenv("AZURE_CLIENT_SECRET", "s3cret")
	mustToken(t, DefaultCredential(), "tok-secret")
	if imds.hits.Load() != 0 {
		t.Fatal("the environment's secret did not come first")
	}
	t.Setenv("AZURE_CLIENT_SECRET", "")
	mustToken(t, DefaultCredential(), "tok-imds")
	if _, err := os.Stat(args); err == nil {
		t.Fatal("az ran although managed identity worked")
	}
	t.Setenv("AZURE_POD_IDENTITY_AUTHORITY_HOST", closedPort(t))
	mustToken(t, DefaultCredential(), "tok-cli")

	// A VM without an identity: IMDS answers 400, and the chain moves on.
	t.Setenv("AZURE_CLIENT_ID", "") // else it names a user-assigned identity, whose absence is an error
	noIdentity := newTokenServer(t, func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusBadRequest, map[string]any{"error": "invalid_request", "error_description": "Identity not found"})
	})
	t.Setenv("AZURE_POD_IDENTITY_AUTHORITY_HOST", noIdentity.URL)
	mustToken(t, DefaultCredential(), "tok-cli")
	if noIdentity.hits.Load() != 1 {
		t.Fatalf("IMDS asked %d times", noIdentity.hits.Load())
	}
}

// countingSource gives a new token, valid for life, on every call.
type countingSource struct {
	mu   sync.Mutex
	n    int
	life time.Duration
	now  func() time.Time
	fail error
}

func (c *countingSource) name() string { return "counting" }

func (c *countingSource) token(_ context.Context, scope string) (accessToken, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.fail != nil {
		return accessToken{}, c.fail
	}
	c.n++
	return accessToken{token: fmt.Sprintf("%s#%d", scope, c.n), expires: c.now().Add(c.life)}, nil
}

func TestTokenCache(t *testing.T) {
	now := time.Now()
	clock := func() time.Time { return now }
	src := &countingSource{life: time.Hour, now: clock}
	skipped := &countingSource{fail: notSetUp("not here"), now: clock}
	c := &chain{sources: []source{skipped, src}, now: clock}
	mustToken(t, c, armScope+"#1")
	now = now.Add(54 * time.Minute)
	mustToken(t, c, armScope+"#1")
	if tok, _, _ := c.Token(context.Background(), "other/.default"); tok != "other/.default#2" {
		t.Fatalf("other scope: %s", tok)
	}
	now = now.Add(2 * time.Minute) // within five minutes of expiry
	mustToken(t, c, armScope+"#3")

	// The source that worked is kept: once it fails, that is the error.
	src.fail = errors.New("revoked")
	now = now.Add(time.Hour)
	if _, _, err := c.Token(context.Background(), armScope); err == nil || err.Error() != "counting: revoked" {
		t.Fatalf("got %v", err)
	}

	// Short-lived tokens are kept for half their life.
	short := &countingSource{life: 4 * time.Minute, now: clock}
	c = &chain{sources: []source{short}, now: clock}
	mustToken(t, c, armScope+"#1")
	now = now.Add(time.Minute)
	mustToken(t, c, armScope+"#1")
	now = now.Add(90 * time.Second)
	mustToken(t, c, armScope+"#2")
}

// Off Azure nothing answers at the metadata address: the chain moves on
// at once (a refused loopback port stands in for it here; a dropped
// connection is bounded by imdsConnectTimeout).
func TestManagedIdentityUnreachableIsQuick(t *testing.T) {
	noAzure(t)
	start := time.Now()
	_, _, err := DefaultCredential().Token(context.Background(), armScope)
	if err == nil || !strings.Contains(err.Error(), "no instance metadata service") {
		t.Fatalf("got %v", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("took %s", d)
	}
}

// quickIMDS is the managed identity source for IMDS at srv, with waits
// short enough for tests.
func quickIMDS(t *testing.T, srv *tokenServer) *managedIdentitySource {
	t.Helper()
	t.Setenv("AZURE_POD_IDENTITY_AUTHORITY_HOST", srv.URL)
	m := newManagedIdentitySource("")
	m.imdsBackoff, m.imdsGoneFor = 2*time.Millisecond, 100*time.Millisecond
	return m
}

func imdsToken(w http.ResponseWriter) {
	writeJSON(w, http.StatusOK, map[string]any{"access_token": "tok-imds", "expires_in": "86399",
		"expires_on": fmt.Sprint(time.Now().Add(24 * time.Hour).Unix()), "token_type": "Bearer"})
}

// Right after boot, or after an identity is assigned, IMDS answers 410 and
// 404 for a while: they are waited out rather than taken as "no identity".
func TestManagedIdentityIMDSNotReadyYet(t *testing.T) {
	noAzure(t)
	var n atomic.Int32
	var answer atomic.Value // func(http.ResponseWriter)
	srv := newTokenServer(t, func(w http.ResponseWriter, r *http.Request) { answer.Load().(func(http.ResponseWriter))(w) })
	answer.Store(func(w http.ResponseWriter) {
		switch n.Add(1) {
		case 1, 2, 3:
			writeJSON(w, http.StatusGone, map[string]any{"error": "service_unavailable", "error_description": "IMDS is being updated"})
		case 4, 5:
			writeJSON(w, http.StatusNotFound, map[string]any{"error": "not_found", "error_description": "Identity not found"})
		default:
			imdsToken(w)
		}
	})
	m := quickIMDS(t, srv)
	c := &chain{sources: []source{m, &cliSource{timeout: cliTimeout}}, now: time.Now}
	mustToken(t, c, "tok-imds")
	if got := srv.hits.Load(); got != 6 {
		t.Fatalf("%d requests", got)
	}

	// Not for ever: 404 a few times, 410 for imdsGoneFor.
	for _, c := range []struct {
		status   int
		min, max int32
	}{{http.StatusNotFound, imdsNotFoundRetries + 1, imdsNotFoundRetries + 1}, {http.StatusGone, 5, 20}} {
		srv.hits.Store(0)
		answer.Store(func(w http.ResponseWriter) {
			writeJSON(w, c.status, map[string]any{"error": "x", "error_description": "not yet"})
		})
		start := time.Now()
		_, err := m.token(context.Background(), armScope)
		var u *unavailable
		if !errors.As(err, &u) || !strings.Contains(err.Error(), fmt.Sprintf("HTTP %d", c.status)) {
			t.Fatalf("%d: got %v", c.status, err)
		}
		if got := srv.hits.Load(); got < c.min || got > c.max {
			t.Fatalf("%d: %d requests", c.status, got)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Fatalf("%d: took %s", c.status, d)
		}
	}

	// The context ends the waiting.
	m.imdsBackoff, m.imdsGoneFor = time.Hour, 100*time.Hour
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := m.token(ctx, armScope); err == nil || ctx.Err() == nil {
		t.Fatalf("got %v", err)
	}
}

// Another cloud's metadata service at IMDS's address (AWS answers the
// Azure path 404 in plain text or HTML) is passed over at once, even with
// the real waits; an IMDS-looking answer by its Server header is retried.
func TestManagedIdentityForeign404IsQuick(t *testing.T) {
	noAzure(t)
	var server atomic.Value
	server.Store("EC2ws")
	srv := newTokenServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Server", server.Load().(string))
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprint(w, "<?xml version=\"1.0\"?><html><title>404 - Not Found</title></html>")
	})
	t.Setenv("AZURE_POD_IDENTITY_AUTHORITY_HOST", srv.URL)
	start := time.Now()
	_, _, err := DefaultCredential().Token(context.Background(), armScope)
	if err == nil || !strings.Contains(err.Error(), "HTTP 404") || !strings.Contains(err.Error(), "az is not on PATH") {
		t.Fatalf("got %v", err)
	}
	if n := srv.hits.Load(); n != 1 {
		t.Fatalf("%d requests", n)
	}
	if d := time.Since(start); d > 900*time.Millisecond {
		t.Fatalf("took %s", d)
	}

	server.Store("IMDS/150.870.65.1325")
	srv.hits.Store(0)
	m := quickIMDS(t, srv)
	if _, err := m.token(context.Background(), armScope); err == nil {
		t.Fatal("no error")
	}
	if n := srv.hits.Load(); n != imdsNotFoundRetries+1 {
		t.Fatalf("%d requests", n)
	}
}

// App Service's endpoint is not IMDS: its 404 is not waited out.
func TestManagedIdentityAppServiceNotRetried(t *testing.T) {
	noAzure(t)
	srv := newTokenServer(t, func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusNotFound, map[string]any{"error": "not_found", "error_description": "no identity"})
	})
	t.Setenv("IDENTITY_ENDPOINT", srv.URL+"/msi/token")
	t.Setenv("IDENTITY_HEADER", "header-secret")
	if _, _, err := DefaultCredential().Token(context.Background(), armScope); err == nil {
		t.Fatal("no error")
	}
	if n := srv.hits.Load(); n != 1 {
		t.Fatalf("%d requests", n)
	}
}

// Redirects are not followed by any token client: the secret headers
// (X-IDENTITY-HEADER, Metadata) and the client secret never reach another
// host.
func TestTokenClientsDoNotFollowRedirects(t *testing.T) {
	noAzure(t)
	other := newTokenServer(t, func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("redirect followed: %s %v", r.URL, r.Header)
		imdsToken(w)
	})
	redirect := newTokenServer(t, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL+r.URL.RequestURI(), http.StatusTemporaryRedirect)
	})
	check := func(what string) {
		t.Helper()
		_, _, err := DefaultCredential().Token(context.Background(), armScope)
		if err == nil || !strings.Contains(err.Error(), "HTTP 307") {
			t.Errorf("%s: got %v", what, err)
		}
	}

	t.Setenv("AZURE_POD_IDENTITY_AUTHORITY_HOST", redirect.URL)
	check("IMDS")

	t.Setenv("IDENTITY_ENDPOINT", redirect.URL+"/msi/token")
	t.Setenv("IDENTITY_HEADER", "header-secret")
	check("App Service")

	t.Setenv("AZURE_AUTHORITY_HOST", redirect.URL)
	t.Setenv("AZURE_TENANT_ID", "tenant")
	t.Setenv("AZURE_CLIENT_ID", "client")
	t.Setenv("AZURE_CLIENT_SECRET", "secret")
	check("Entra ID")

	if n := other.hits.Load(); n != 0 {
		t.Fatalf("%d requests reached the other host", n)
	}
	if n := redirect.hits.Load(); n != 3 {
		t.Fatalf("%d requests to the redirecting host", n)
	}
}
