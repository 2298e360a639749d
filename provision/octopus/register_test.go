package octopus_test

import (
	"context"
	"crypto/x509"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/tentacle-go/tentacle/provision/octopus"
	"github.com/tentacle-go/tentacle/provision/octopus/octopustest"
)

const tentacleThumb = "1234567890ABCDEF1234567890ABCDEF12345678"

func connect(t *testing.T, srv *octopustest.Server, creds octopus.Credentials, space string) *octopus.Client {
	t.Helper()
	c, err := octopus.Connect(context.Background(), octopus.Options{Server: srv.URL, Credentials: creds, Space: space})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func target(name string) octopus.Registration {
	return octopus.Registration{Kind: octopus.DeploymentTarget, Name: name, Environments: []string{"Production", "test"}, Roles: []string{"web"},
		Endpoint: octopus.Endpoint{Listening: "https://web01:10933/", Thumbprint: tentacleThumb}}
}

func TestRegisterListeningTargetOnTheWire(t *testing.T) {
	srv := octopustest.NewServer(t)
	c := connect(t, srv, octopus.Credentials{APIKey: srv.APIKey}, "")
	r := target("web01")
	r.Tenants, r.TenantTags, r.TenantedDeploymentParticipation = []string{"acme-corp"}, []string{"Region/Europe"}, "TenantedOrUntenanted"
	r.Policy, r.Endpoint.ProxyName = "Default Machine Policy", "Corporate Proxy"
	got, err := c.Register(context.Background(), r)
	if err != nil {
		t.Fatal(err)
	}
	ms := srv.Machines()
	if len(ms) != 1 || ms[0].ID != got.ID {
		t.Fatalf("%+v", ms)
	}
	m := ms[0]
	if m.SpaceID != "Spaces-1" || !slices.Equal(m.EnvironmentIDs, []string{"Environments-3", "Environments-2"}) || m.Roles[0] != "web" ||
		m.TenantIDs[0] != "Tenants-1" || m.TenantTags[0] != "Region/Europe" || m.MachinePolicyID != "MachinePolicies-1" ||
		m.Endpoint.CommunicationStyle != "TentaclePassive" || m.Endpoint.URI != "https://web01:10933/" || *m.Endpoint.ProxyID != "Proxies-1" {
		t.Errorf("stored %+v", m)
	}
	// The flow: root, user, spaces, space home, then the space's collections.
	reqs := strings.Join(srv.Requests(), "\n")
	for _, want := range []string{"GET /api", "GET /api/users/me", "GET /api/users/Users-1/spaces", "GET /api/Spaces-1", "GET /api/Spaces-1/machines?name=web01", "GET /api/Spaces-1/environments/v2?skip=0&take=2147483647", "POST /api/Spaces-1/machines"} {
		if !strings.Contains(reqs, want) {
			t.Errorf("no %q in the requests:\n%s", want, reqs)
		}
	}
	thumb, err := c.ServerThumbprint(context.Background())
	if err != nil || thumb != srv.Thumbprint() {
		t.Errorf("server thumbprint %s %v", thumb, err)
	}
}

func TestReRegistrationNeedsForce(t *testing.T) {
	srv := octopustest.NewServer(t, octopustest.WithPageSize(1))
	c := connect(t, srv, octopus.Credentials{APIKey: srv.APIKey}, "")
	first, err := c.Register(context.Background(), target("web01"))
	if err != nil {
		t.Fatal(err)
	}
	c.Register(context.Background(), target("web011")) // a partial name match on page one
	_, err = c.Register(context.Background(), target("WEB01"))
	var ue *octopus.UserError
	if !errors.As(err, &ue) || !strings.Contains(err.Error(), "already exists") || !strings.Contains(err.Error(), "--force") {
		t.Fatalf("err = %v", err)
	}
	r := target("web01")
	r.Force, r.Roles = true, []string{"web", "api"}
	again, err := c.Register(context.Background(), r)
	if err != nil || !again.Replaced || again.ID != first.ID {
		t.Fatalf("%+v %v", again, err)
	}
	if n := len(srv.Machines()); n != 2 {
		t.Errorf("%d machines", n)
	}
}

func TestRegistrationErrorsSayWhatToFix(t *testing.T) {
	srv := octopustest.NewServer(t)
	ctx := context.Background()
	_, err := octopus.Connect(ctx, octopus.Options{Server: srv.URL, Credentials: octopus.Credentials{APIKey: "API-WRONG"}})
	// The root document is anonymous: a wrong key shows on the first
	// authenticated call, which Connect makes to find the space.
	if err == nil || !strings.Contains(err.Error(), "refused the credentials (401") {
		t.Errorf("wrong key: %v", err)
	}
	if _, err := octopus.Connect(ctx, octopus.Options{Server: srv.URL, Credentials: octopus.Credentials{APIKey: srv.APIKey}, Space: "Marketing"}); err == nil || !strings.Contains(err.Error(), `The space "Marketing" was not found`) || !strings.Contains(err.Error(), "Default, Finance") {
		t.Errorf("unknown space: %v", err)
	}
	c := connect(t, srv, octopus.Credentials{APIKey: srv.APIKey}, "")
	r := target("x")
	r.Environments = []string{"Production", "Staging", "QA"}
	if _, err := c.Register(ctx, r); err == nil || !strings.Contains(err.Error(), "names, slugs or Ids: Staging, QA") {
		t.Errorf("unknown environments: %v", err)
	}
	r = target("x")
	r.TenantTags = []string{"Region/Mars"}
	if _, err := c.Register(ctx, r); err == nil || !strings.Contains(err.Error(), "Region/Mars") {
		t.Errorf("unknown tenant tag: %v", err)
	}
	r = target("x")
	r.Roles = nil
	if _, err := c.Register(ctx, r); err == nil || !strings.Contains(err.Error(), "--role") {
		t.Errorf("no role: %v", err)
	}
	if _, err := octopus.Connect(ctx, octopus.Options{Server: "http://127.0.0.1:1", Credentials: octopus.Credentials{APIKey: "k"}}); err == nil || !strings.Contains(err.Error(), "Cannot reach the Octopus Server") {
		t.Errorf("unreachable: %v", err)
	}
	if len(srv.Machines()) != 0 {
		t.Error("a failed registration stored a machine")
	}
}

func TestOtherCredentialsSpacesAndOldServers(t *testing.T) {
	ctx := context.Background()
	srv := octopustest.NewServer(t)
	for _, creds := range []octopus.Credentials{{BearerToken: srv.BearerToken}, {Username: srv.Username, Password: srv.Password}} {
		c := connect(t, srv, creds, "Finance")
		r := target("fin-" + creds.Username)
		r.Environments = []string{"Production"}
		if _, err := c.Register(ctx, r); err != nil {
			t.Fatalf("%+v: %v", creds, err)
		}
	}
	if _, err := octopus.Connect(ctx, octopus.Options{Server: srv.URL, Credentials: octopus.Credentials{Username: srv.Username, Password: "nope"}}); err == nil {
		t.Error("a wrong password signed in")
	}
	old := octopustest.NewServer(t, octopustest.WithoutSpaces(), octopustest.WithoutEnvironmentsV2(), octopustest.WithPageSize(2))
	c := connect(t, old, octopus.Credentials{APIKey: old.APIKey}, "")
	if _, err := c.Register(ctx, target("legacy")); err != nil {
		t.Fatal(err)
	}
	if m := old.Machines(); len(m) != 1 || m[0].EnvironmentIDs[0] != "Environments-3" {
		t.Errorf("%+v", m)
	}
	ancient := octopustest.NewServer(t, octopustest.WithVersion("2.6.5"))
	if _, err := octopus.Connect(ctx, octopus.Options{Server: ancient.URL, Credentials: octopus.Credentials{APIKey: ancient.APIKey}}); err == nil || !strings.Contains(err.Error(), "needs 3.0") {
		t.Errorf("old version: %v", err)
	}
}

func TestTLSFailureAndIgnoreSslErrors(t *testing.T) {
	srv := octopustest.NewServer(t, octopustest.WithTLS())
	ctx := context.Background()
	_, err := octopus.Connect(ctx, octopus.Options{Server: srv.URL, Credentials: octopus.Credentials{APIKey: srv.APIKey}})
	if err == nil || !strings.Contains(err.Error(), "TLS certificate") || !strings.Contains(err.Error(), "--ignoreSslErrors") {
		t.Errorf("untrusted TLS: %v", err)
	}
	if _, err := octopus.Connect(ctx, octopus.Options{Server: srv.URL, Credentials: octopus.Credentials{APIKey: srv.APIKey}, InsecureSkipVerify: true}); err != nil {
		t.Errorf("with --ignoreSslErrors: %v", err)
	}
}

func TestWorkersAndDeregistration(t *testing.T) {
	srv := octopustest.NewServer(t)
	ctx := context.Background()
	c := connect(t, srv, octopus.Credentials{APIKey: srv.APIKey}, "")
	w := octopus.Registration{Kind: octopus.Worker, Name: "worker-1", WorkerPools: []string{"linux-workers"}, Endpoint: octopus.Endpoint{Subscription: "poll://abcdefghjkmnpqrstuvw/", Thumbprint: tentacleThumb}}
	if _, err := c.Register(ctx, w); err != nil {
		t.Fatal(err)
	}
	if m := srv.Machines(); !m[0].Worker || m[0].WorkerPoolIDs[0] != "WorkerPools-2" || m[0].Endpoint.CommunicationStyle != "TentacleActive" {
		t.Errorf("%+v", m[0])
	}
	if _, err := c.Deregister(ctx, octopus.DeploymentTarget, tentacleThumb, false); err == nil || !strings.Contains(err.Error(), "No machine") {
		t.Errorf("no target: %v", err)
	}
	// Two clones share one certificate.
	c.Register(ctx, target("clone-a"))
	c.Register(ctx, target("clone-b"))
	if _, err := c.Deregister(ctx, octopus.DeploymentTarget, tentacleThumb, false); err == nil || !strings.Contains(err.Error(), "--multiple") {
		t.Errorf("clones: %v", err)
	}
	removed, err := c.Deregister(ctx, octopus.DeploymentTarget, tentacleThumb, true)
	if err != nil || len(removed) != 2 {
		t.Errorf("%v %v", removed, err)
	}
	if removed, err := c.Deregister(ctx, octopus.Worker, tentacleThumb, false); err != nil || len(removed) != 1 || removed[0].Name != "worker-1" {
		t.Errorf("%v %v", removed, err)
	}
	if n := len(srv.Machines()); n != 0 {
		t.Errorf("%d left", n)
	}
}

func TestHandshake(t *testing.T) {
	srv := octopustest.NewServer(t)
	ctx := context.Background()
	for _, addr := range []string{srv.PollingAddress, srv.WebSocketAddress} {
		seen, err := octopus.Handshake(ctx, addr, octopus.HandshakeOptions{})
		if err != nil || seen.Thumbprint != srv.Thumbprint() {
			t.Errorf("%s: %+v %v", addr, seen, err)
		}
		// Halibut's self-signed certificate names no host and chains to nothing.
		if seen.ValidationErr == nil {
			t.Errorf("%s: a self-signed certificate passed validation: %v", addr, seen.ValidationErr)
		}
	}
	octopus.HandshakeAttempts = 2
	if _, err := octopus.Handshake(ctx, "https://127.0.0.1:1/", octopus.HandshakeOptions{}); err == nil || !strings.Contains(err.Error(), "cannot be reached") {
		t.Errorf("closed port: %v", err)
	}
}

// A WebSocket endpoint behind a certificate that chains to a trusted root
// and names the host passes validation; the same certificate reached by a
// name it does not carry, or checked against other roots, does not.
func TestHandshakeValidatesTheWebSocketCertificate(t *testing.T) {
	public := octopustest.NewPublicCertificate(t)
	srv := octopustest.NewServer(t, octopustest.WithWebSocketCertificate(public.TLS))
	ctx := context.Background()
	seen, err := octopus.Handshake(ctx, srv.WebSocketAddress, octopus.HandshakeOptions{Roots: public.Roots})
	if err != nil || seen.Thumbprint != public.Thumbprint || seen.ValidationErr != nil {
		t.Fatalf("%+v %v", seen, err)
	}
	other := octopustest.NewPublicCertificate(t)
	seen, _ = octopus.Handshake(ctx, srv.WebSocketAddress, octopus.HandshakeOptions{Roots: other.Roots})
	if seen.ValidationErr == nil {
		t.Error("a certificate from an untrusted CA passed validation")
	}
	// A certificate for another name, from a trusted CA.
	elsewhere := octopustest.NewPublicCertificate(t, "octopus.example")
	srv = octopustest.NewServer(t, octopustest.WithWebSocketCertificate(elsewhere.TLS))
	seen, err = octopus.Handshake(ctx, srv.WebSocketAddress, octopus.HandshakeOptions{Roots: elsewhere.Roots})
	var wrongHost x509.HostnameError
	if err != nil || !errors.As(seen.ValidationErr, &wrongHost) {
		t.Errorf("wrong host: %+v %v", seen, err)
	}
}
