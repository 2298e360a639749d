//go:build unix

package aws

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tentacle-go/tentacle/firewall"
	"github.com/tentacle-go/tentacle/provision/octopus/octopustest"
)

// signedBy is an EC2 endpoint in front of moto that records which access key
// signed each request, and refuses the keys in expired as AWS refuses
// expired credentials.
type signedBy struct {
	mu      sync.Mutex
	keys    []string
	expired []string
}

func (s *signedBy) handler(t *testing.T) http.Handler {
	target, err := url.Parse(moto.endpoint)
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(target)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Authorization: AWS4-HMAC-SHA256 Credential=AKID/date/region/ec2/aws4_request, ...
		_, cred, _ := strings.Cut(r.Header.Get("Authorization"), "Credential=")
		key, _, _ := strings.Cut(cred, "/")
		s.mu.Lock()
		s.keys = append(s.keys, key)
		refused := slices.Contains(s.expired, key)
		s.mu.Unlock()
		if refused {
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprint(w, `<Response><Errors><Error><Code>RequestExpired</Code><Message>Request has expired.</Message></Error></Errors></Response>`)
			return
		}
		proxy.ServeHTTP(w, r)
	})
}

func (s *signedBy) seen() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.keys)
}

// A profile behind a TLS-inspecting proxy: its ca_bundle makes the proxy's
// CA trusted, and its services section gives EC2's endpoint (per-service
// endpoint_url). Without the ca_bundle the same endpoint is refused.
func TestProfileWithCABundle(t *testing.T) {
	motoEnv(t)
	group := newGroup(t, "tentacles")
	// What a company's TLS-inspecting proxy presents: a certificate from a
	// CA that only ca_bundle makes trusted.
	inspecting := octopustest.NewPublicCertificate(t, "127.0.0.1")
	var signed signedBy
	front := httptest.NewUnstartedServer(signed.handler(t))
	front.TLS = &tls.Config{Certificates: []tls.Certificate{inspecting.TLS}}
	front.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshakes below are expected
	front.StartTLS()
	t.Cleanup(front.Close)

	home := isolate(t)
	caFile := filepath.Join(home, "corp-ca.pem")
	writeFile(t, caFile, string(inspecting.RootsPEM))
	writeFile(t, filepath.Join(home, "config"), fmt.Sprintf(`[profile corp]
region = us-east-1
ca_bundle = %s
services = corp-endpoints

[profile no-ca]
region = us-east-1
services = corp-endpoints

[services corp-endpoints]
ec2 =
  endpoint_url = %s
`, caFile, front.URL))
	writeFile(t, filepath.Join(home, "credentials"), "[corp]\naws_access_key_id = AKIDCORP\naws_secret_access_key = s\n[no-ca]\naws_access_key_id = AKIDNOCA\naws_secret_access_key = s\n")
	ctx := context.Background()

	sg, err := New(ctx, Options{GroupIDs: []string{group}, Profile: "corp"})
	if err != nil {
		t.Fatal(err)
	}
	rule := firewall.NewRule("", firewall.SinglePort(10933), nil)
	apply(t, sg)(sg.PlanOpen(ctx, rule))
	rules, err := sg.List(ctx)
	if err != nil || len(rules) != 1 {
		t.Fatalf("listed %v %v", rules, err)
	}
	if keys := signed.seen(); len(keys) < 3 || slices.ContainsFunc(keys, func(k string) bool { return k != "AKIDCORP" }) {
		t.Fatalf("requests through the inspecting endpoint were signed by %v, want AKIDCORP (profile corp) for each", keys)
	}

	t.Setenv("AWS_MAX_ATTEMPTS", "1") // a refused certificate is retried otherwise, to no end
	untrusted, err := New(ctx, Options{GroupIDs: []string{group}, Profile: "no-ca"})
	if err != nil {
		t.Fatal(err)
	}
	before := len(signed.seen())
	if _, err := untrusted.List(ctx); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("without ca_bundle: %v, want a certificate error", err)
	}
	if n := len(signed.seen()); n != before {
		t.Fatalf("a request got through an untrusted TLS connection")
	}
}

// instanceProfile is a metadata service (IMDSv2) whose role credentials are
// handed out in turn: the first has already expired when it is handed out,
// as a cached credential has when its hour is over.
type instanceProfile struct {
	mu     sync.Mutex
	issued []string
}

func (p *instanceProfile) serve(w http.ResponseWriter, r *http.Request) {
	const role = "tentacle-role"
	switch r.URL.Path {
	case "/latest/meta-data/iam/security-credentials/":
		fmt.Fprint(w, role)
	case "/latest/meta-data/iam/security-credentials/" + role:
		p.mu.Lock()
		key, expires := "ASIAFIRST", time.Now().Add(-time.Minute)
		if len(p.issued) > 0 {
			key, expires = "ASIASECOND", time.Now().Add(time.Hour)
		}
		p.issued = append(p.issued, key)
		p.mu.Unlock()
		json.NewEncoder(w).Encode(map[string]string{"Code": "Success", "Type": "AWS-HMAC", "AccessKeyId": key,
			"SecretAccessKey": "secret-" + key, "Token": "token-" + key, "Expiration": expires.UTC().Format(time.RFC3339),
			"LastUpdated": time.Now().UTC().Format(time.RFC3339)})
	default:
		http.NotFound(w, r)
	}
}

// Credentials that have expired are fetched again before the next request:
// no request is signed with the expired key (which AWS would refuse).
func TestExpiredCredentialsAreRefreshed(t *testing.T) {
	motoEnv(t)
	group := newGroup(t, "tentacles")
	// From here on the only credentials are the instance profile's.
	t.Setenv("AWS_ACCESS_KEY_ID", "")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "")
	var profile instanceProfile
	metadata := httptest.NewServer(imdsV2(profile.serve))
	t.Cleanup(metadata.Close)
	signed := signedBy{expired: []string{"ASIAFIRST"}}
	front := httptest.NewServer(signed.handler(t))
	t.Cleanup(front.Close)
	ctx := context.Background()

	sg, err := New(ctx, Options{GroupIDs: []string{group}, Region: "us-east-1", EC2Endpoint: front.URL, IMDSEndpoint: metadata.URL})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sg.List(ctx); err != nil {
		t.Fatalf("list after the credentials expired: %v", err)
	}
	rule := firewall.NewRule("", firewall.SinglePort(10933), nil)
	apply(t, sg)(sg.PlanOpen(ctx, rule))
	profile.mu.Lock()
	issued := slices.Clone(profile.issued)
	profile.mu.Unlock()
	if !slices.Equal(issued, []string{"ASIAFIRST", "ASIASECOND"}) {
		t.Fatalf("the metadata service handed out %v, want the expired ASIAFIRST, then ASIASECOND", issued)
	}
	if keys := signed.seen(); len(keys) < 3 || slices.ContainsFunc(keys, func(k string) bool { return k != "ASIASECOND" }) {
		t.Fatalf("requests were signed by %v, want ASIASECOND for each", keys)
	}
}

func writeFile(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
}

// A profile with role_arn and source_profile: the SDK assumes the role with
// moto's STS, and EC2 is called with the role's keys. One whose role needs
// an MFA code asks on a terminal, and without one says so.
func TestAssumeRoleProfile(t *testing.T) {
	motoEnv(t)
	group := newGroup(t, "tentacles")
	var signed signedBy
	front := httptest.NewServer(signed.handler(t))
	t.Cleanup(front.Close)
	home := isolate(t)
	t.Setenv("AWS_ENDPOINT_URL_STS", moto.endpoint)
	t.Setenv("AWS_ENDPOINT_URL_EC2", front.URL)
	writeFile(t, filepath.Join(home, "config"), `[profile deployer]
role_arn = arn:aws:iam::123456789012:role/tentacle
source_profile = base
region = us-east-1

[profile deployer-mfa]
role_arn = arn:aws:iam::123456789012:role/tentacle
source_profile = base
mfa_serial = arn:aws:iam::123456789012:mfa/ops
region = us-east-1
`)
	writeFile(t, filepath.Join(home, "credentials"), "[base]\naws_access_key_id = AKIDBASE\naws_secret_access_key = s\n")
	ctx := context.Background()

	sg, err := New(ctx, Options{GroupIDs: []string{group}, Profile: "deployer"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sg.List(ctx); err != nil {
		t.Fatal(err)
	}
	keys := signed.seen()
	if len(keys) != 1 || keys[0] == "AKIDBASE" || !strings.HasPrefix(keys[0], "ASIA") {
		t.Fatalf("EC2 was called with %v, want the assumed role's temporary key (ASIA…)", keys)
	}

	// No terminal: stdin is /dev/null, as under cloud-init or in CI.
	null, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer null.Close()
	stdin := os.Stdin
	os.Stdin = null
	t.Cleanup(func() { os.Stdin = stdin })
	_, err = New(ctx, Options{GroupIDs: []string{group}, Profile: "deployer-mfa"})
	var ue *firewall.UserError
	if !errors.As(err, &ue) || !strings.Contains(ue.Msg, "needs an MFA code (mfa_serial) and there is no terminal") {
		t.Fatalf("got %v, want a user error saying an MFA code is needed", err)
	}
}
