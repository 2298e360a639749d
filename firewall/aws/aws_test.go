//go:build unix

package aws

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tentacle-go/tentacle/firewall"
	"github.com/tentacle-go/tentacle/internal/mototest"
)

// moto is a moto_server on loopback, started once for the package.
var moto struct {
	endpoint string
	skip     string
	server   *mototest.Server
}

func TestMain(m *testing.M) {
	moto.server, moto.skip = mototest.Start()
	if moto.server != nil {
		moto.endpoint = moto.server.Endpoint
	}
	code := m.Run()
	moto.server.Stop()
	os.Exit(code)
}

// awsEnv is every variable of the SDK's that would let this machine's
// settings into a test.
var awsEnv = []string{
	"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_DEFAULT_PROFILE",
	"AWS_REGION", "AWS_DEFAULT_REGION", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN", "AWS_ROLE_SESSION_NAME",
	"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI",
	"AWS_CONTAINER_AUTHORIZATION_TOKEN", "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", "AWS_CA_BUNDLE",
	"AWS_EC2_METADATA_DISABLED", "AWS_EC2_METADATA_SERVICE_ENDPOINT", "AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE",
	"AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_EC2", "AWS_ENDPOINT_URL_STS", "AWS_ENDPOINT_URL_SSO",
	"AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE",
	"AWS_USE_FIPS_ENDPOINT", "AWS_USE_DUALSTACK_ENDPOINT",
}

// isolate keeps the machine's ~/.aws and environment out of a test: the
// config files are under a fresh HOME, and the metadata service is a
// loopback port where nothing listens.
func isolate(t *testing.T) (home string) {
	t.Helper()
	home = t.TempDir()
	for _, k := range awsEnv {
		t.Setenv(k, "")
	}
	t.Setenv("HOME", home)
	t.Setenv("USERPROFILE", home)
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(home, "config"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(home, "credentials"))
	t.Setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", "http://127.0.0.1:1")
	return home
}

// motoEnv points the SDK (the backend's, and the one the tests set up
// groups with) at static test keys and at no file and no metadata service
// of this machine.
func motoEnv(t *testing.T) {
	t.Helper()
	if moto.endpoint == "" {
		t.Skip(moto.skip)
	}
	isolate(t)
	t.Setenv("AWS_ACCESS_KEY_ID", "testing")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "testing")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	if err := moto.server.Reset(); err != nil {
		t.Fatal(err)
	}
}

// newGroup creates a security group in moto, as a user would beforehand.
func newGroup(t *testing.T, name string) string {
	t.Helper()
	group, err := mototest.CreateSecurityGroup(moto.endpoint, name)
	if err != nil {
		t.Fatal(err)
	}
	return group
}

func newBackend(t *testing.T, o Options) *SecurityGroups {
	t.Helper()
	o.EC2Endpoint = moto.endpoint
	if o.Region == "" && !o.Self {
		o.Region = "us-east-1"
	}
	sg, err := New(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	return sg
}

// apply(t, backend)(backend.PlanOpen(ctx, rule)) plans, applies and reads back, failing t on error.
func apply(t *testing.T, fw firewall.Firewall) func(*firewall.Plan, error) {
	return func(p *firewall.Plan, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		// Read back, as the CLI does: the fake must hold what was applied.
		if err := firewall.ApplyAndVerify(context.Background(), fw, p, nil); err != nil {
			t.Fatal(err)
		}
	}
}

func TestOpenListCloseAgainstMoto(t *testing.T) {
	motoEnv(t)
	ctx := context.Background()
	sg := newBackend(t, Options{GroupIDs: []string{newGroup(t, "tentacles")}})
	rule := firewall.NewRule("", firewall.SinglePort(10933), []netip.Prefix{netip.MustParsePrefix("203.0.113.0/24"), netip.MustParsePrefix("2001:db8::/64")})

	dry, err := sg.PlanOpen(ctx, rule)
	if err != nil || len(dry.Steps) != 1 {
		t.Fatalf("plan: %v %v", dry, err)
	}
	if want := `AuthorizeSecurityGroupIngress on sg-`; !strings.HasPrefix(dry.Steps[0].Description, want) ||
		!strings.HasSuffix(dry.Steps[0].Description, `tcp 10933 from 203.0.113.0/24, 2001:db8::/64 (description "Octopus Deploy Tentacle")`) {
		t.Errorf("step: %s", dry.Steps[0].Description)
	}
	if rules, _ := sg.List(ctx); len(rules) != 0 {
		t.Fatalf("the dry run changed the group: %v", rules)
	}

	apply(t, sg)(sg.PlanOpen(ctx, rule))
	again, err := sg.PlanOpen(ctx, rule)
	if err != nil || !again.Empty() {
		t.Fatalf("second open: %v %v", again, err)
	}
	rules, err := sg.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(rules) != 1 || rules[0].Name != firewall.DefaultRuleName || rules[0].Ports != rule.Ports || !firewall.SamePrefixSet(rules[0].Sources, rule.Sources) {
		t.Fatalf("listed %+v", rules)
	}

	apply(t, sg)(sg.PlanClose(ctx, rule))
	if rules, _ := sg.List(ctx); len(rules) != 0 {
		t.Fatalf("after close: %v", rules)
	}
	again, err = sg.PlanClose(ctx, rule)
	if err != nil || !again.Empty() {
		t.Fatalf("second close: %v %v", again, err)
	}
}

// Two runs at once (cloud-init on every boot, a second operator): the plan
// was made before the other run changed the group. AWS then answers
// InvalidPermission.Duplicate or .NotFound, and both mean done.
func TestStalePlansMeetDuplicateAndNotFound(t *testing.T) {
	motoEnv(t)
	ctx := context.Background()
	sg := newBackend(t, Options{GroupIDs: []string{newGroup(t, "tentacles")}})
	rule := firewall.NewRule("", firewall.PortRange{First: 10933, Last: 10940}, nil)

	stale, err := sg.PlanOpen(ctx, rule)
	if err != nil {
		t.Fatal(err)
	}
	apply(t, sg)(sg.PlanOpen(ctx, rule))
	if err := stale.Apply(ctx, nil); err != nil {
		t.Fatalf("a duplicate rule must count as already open: %v", err)
	}
	// The raw API really did say Duplicate.
	err = sg.ec2.call(ctx, "AuthorizeSecurityGroupIngress", permission(sg.targets[0], rule, rule.Sources), nil)
	if apiCode(err) != "InvalidPermission.Duplicate" {
		t.Fatalf("moto answered %v, want InvalidPermission.Duplicate", err)
	}

	stale, err = sg.PlanClose(ctx, rule)
	if err != nil {
		t.Fatal(err)
	}
	apply(t, sg)(sg.PlanClose(ctx, rule))
	if err := stale.Apply(ctx, nil); err != nil {
		t.Fatalf("revoking a missing rule must be fine: %v", err)
	}
	err = sg.ec2.call(ctx, "RevokeSecurityGroupIngress", permission(sg.targets[0], rule, rule.Sources), nil)
	if apiCode(err) != "InvalidPermission.NotFound" {
		t.Fatalf("moto answered %v, want InvalidPermission.NotFound", err)
	}
}

func TestUserErrors(t *testing.T) {
	motoEnv(t)
	ctx := context.Background()
	rule := firewall.NewRule("", firewall.SinglePort(10933), nil)
	userError := func(err error, want string) {
		t.Helper()
		var ue *firewall.UserError
		if !errors.As(err, &ue) || !strings.Contains(ue.Msg, want) {
			t.Errorf("got %v, want a user error containing %q", err, want)
		}
	}

	sg := newBackend(t, Options{GroupIDs: []string{"sg-0123456789abcdef0"}})
	_, err := sg.PlanOpen(ctx, rule)
	userError(err, "Security group sg-0123456789abcdef0 was not found in region us-east-1")

	_, err = New(ctx, Options{GroupIDs: []string{"web-servers"}, Region: "us-east-1"})
	userError(err, `"web-servers" is not a security group ID`)

	_, err = New(ctx, Options{Region: "us-east-1"})
	userError(err, "Say which security group")

	_, err = New(ctx, Options{GroupIDs: []string{"sg-0123456789abcdef0"}})
	userError(err, "No AWS region is set")

	_, err = New(ctx, Options{GroupIDs: []string{"sg-0123456789abcdef0"}, Region: "us-east-1", Profile: "nosuch"})
	userError(err, `The AWS profile "nosuch" was not found`)

	t.Setenv("AWS_ACCESS_KEY_ID", "")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "")
	_, err = New(ctx, Options{GroupIDs: []string{"sg-0123456789abcdef0"}, Region: "us-east-1", EC2Endpoint: moto.endpoint})
	userError(err, "No usable AWS credentials were found")
}

// imdsV2 is a metadata service that insists on IMDSv2: a session token from
// a PUT, then GETs that carry it, which serve answers.
func imdsV2(serve http.HandlerFunc) http.Handler {
	const token = "imds-token"
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPut && r.URL.Path == "/latest/api/token" {
			w.Header().Set("X-Aws-Ec2-Metadata-Token-Ttl-Seconds", r.Header.Get("X-Aws-Ec2-Metadata-Token-Ttl-Seconds"))
			fmt.Fprint(w, token)
			return
		}
		if r.Header.Get("X-Aws-Ec2-Metadata-Token") != token {
			http.Error(w, "IMDSv1 is disabled", http.StatusUnauthorized)
			return
		}
		serve(w, r)
	})
}

// TestSelf: --self reads the primary interface's groups from IMDSv2 (a
// local stand-in that insists on the v2 token), and the region too.
func TestSelf(t *testing.T) {
	motoEnv(t)
	first, second := newGroup(t, "web"), newGroup(t, "tentacles")
	imdsServer := httptest.NewServer(imdsV2(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/latest/meta-data/mac":
			fmt.Fprint(w, "0e:00:00:00:00:01")
		case "/latest/meta-data/network/interfaces/macs/0e:00:00:00:00:01/security-group-ids":
			fmt.Fprintf(w, "%s\n%s", first, second)
		case "/latest/dynamic/instance-identity/document":
			fmt.Fprint(w, `{"region": "us-east-1", "instanceId": "i-0123456789abcdef0"}`)
		default:
			http.NotFound(w, r)
		}
	}))
	defer imdsServer.Close()
	t.Setenv("AWS_EC2_METADATA_DISABLED", "")
	ctx := context.Background()
	sg := newBackend(t, Options{Self: true, IMDSEndpoint: imdsServer.URL})
	targets, all := sg.Groups()
	if len(targets) != 1 || targets[0] != first || len(all) != 2 || sg.region != "us-east-1" {
		t.Fatalf("targets %v, all %v, region %q", targets, all, sg.region)
	}
	rule := firewall.NewRule("", firewall.SinglePort(10933), nil)
	apply(t, sg)(sg.PlanOpen(ctx, rule))
	rules, _ := sg.List(ctx)
	if len(rules) != 1 || !strings.HasPrefix(rules[0].Location, first) {
		t.Fatalf("listed %+v", rules)
	}

	// Already open through the instance's other group: nothing to add.
	apply(t, sg)(sg.PlanClose(ctx, rule))
	other := newBackend(t, Options{GroupIDs: []string{second}})
	apply(t, other)(other.PlanOpen(ctx, rule))
	if p, err := sg.PlanOpen(ctx, rule); err != nil || !p.Empty() {
		t.Fatalf("open with the rule in another of the instance's groups: %v %v", p, err)
	}
	apply(t, sg)(sg.PlanClose(ctx, rule))
	if rules, _ := other.List(ctx); len(rules) != 0 {
		t.Fatalf("close --self left %v", rules)
	}

	// Off EC2: one sentence.
	_, err := New(ctx, Options{Self: true, Region: "us-east-1", IMDSEndpoint: "http://127.0.0.1:1"})
	var ue *firewall.UserError
	if !errors.As(err, &ue) || !strings.Contains(ue.Msg, "--self only works on an EC2 instance") {
		t.Fatalf("got %v", err)
	}
}
