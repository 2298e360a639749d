package azure

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	goruntime "runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	azfake "github.com/Azure/azure-sdk-for-go/sdk/azcore/fake"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/network/armnetwork/v9"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/network/armnetwork/v9/fake"

	"github.com/tentacle-go/tentacle/firewall"
)

// The behavioural tests run the backend against armnetwork's own fake
// server, so that the SDK checks the paths and bodies this package's REST
// client sends. fakeARM adapts that fake (which the SDK's pipeline reaches
// with the API name in the context and a private long-running-operation
// header) to an http.RoundTripper speaking ARM's real protocol: errors as
// ARM error JSON, PUTs that finish through Azure-AsyncOperation and
// DELETEs through Location. Nothing leaves the process.
type fakeARM struct {
	srv *fake.ServerFactoryTransport

	mu    sync.Mutex
	polls int // status requests of long-running operations
	seen  []string
}

// fakeEndpoint is never dialled (the transport answers), and could not be.
const fakeEndpoint = "https://management.azure.invalid"

const (
	fakeStatusSuffix = "/get/fake/status" // what the fake strips to find its poller
	apiGetNSG        = "SecurityGroupsClient.Get"
	apiGetRule       = "SecurityRulesClient.Get"
	apiPutRule       = "SecurityRulesClient.BeginCreateOrUpdate"
	apiDeleteRule    = "SecurityRulesClient.BeginDelete"
)

func (a *fakeARM) RoundTrip(req *http.Request) (*http.Response, error) {
	if v := req.URL.Query().Get("api-version"); v != "2025-05-01" {
		return nil, fmt.Errorf("fakeARM: %s %s: api-version %q", req.Method, req.URL, v)
	}
	if req.Header.Get("Authorization") != "Bearer fake-token" {
		return nil, fmt.Errorf("fakeARM: %s %s: Authorization %q", req.Method, req.URL, req.Header.Get("Authorization"))
	}
	if req.Body != nil && req.Method == http.MethodPut {
		b, _ := io.ReadAll(req.Body)
		var v map[string]any
		if req.Header.Get("Content-Type") != "application/json" || json.Unmarshal(b, &v) != nil {
			return nil, fmt.Errorf("fakeARM: PUT %s: not JSON: %s", req.URL, b)
		}
		req.Body = io.NopCloser(bytes.NewReader(b))
	}
	path := req.URL.Path
	poll := strings.HasSuffix(path, fakeStatusSuffix)
	var api string
	switch {
	case poll && req.Method == http.MethodGet:
		api = req.URL.Query().Get("fake-api")
	case req.Method == http.MethodGet && !strings.Contains(path, "/securityRules/"):
		api = apiGetNSG
	case req.Method == http.MethodGet:
		api = apiGetRule // a PUT's result, read when its operation is done
	case req.Method == http.MethodPut:
		api = apiPutRule
	case req.Method == http.MethodDelete:
		api = apiDeleteRule
	default:
		return nil, fmt.Errorf("fakeARM: unexpected %s %s", req.Method, req.URL)
	}
	a.mu.Lock()
	a.seen = append(a.seen, req.Method+" "+path)
	if poll {
		a.polls++
	}
	a.mu.Unlock()
	async := api == apiPutRule // PUTs answer Azure-AsyncOperation, DELETEs Location

	resp, err := a.srv.Do(req.WithContext(context.WithValue(req.Context(), runtime.CtxAPINameKey{}, api)))
	var re *azcore.ResponseError
	if errors.As(err, &re) {
		armErr := map[string]any{"code": re.ErrorCode, "message": "fake " + re.ErrorCode}
		if poll && async {
			return jsonResponse(req, http.StatusOK, map[string]any{"status": "Failed", "error": armErr}), nil
		}
		return jsonResponse(req, re.StatusCode, map[string]any{"error": armErr}), nil
	}
	if err != nil {
		return nil, err
	}
	state := resp.Header.Get("Fake-Poller-Status")
	resp.Header.Del("Fake-Poller-Status")
	statusURL := (&url.URL{Scheme: req.URL.Scheme, Host: req.URL.Host, Path: strings.TrimSuffix(path, fakeStatusSuffix) + fakeStatusSuffix,
		RawQuery: url.Values{"api-version": {"2025-05-01"}, "fake-api": {api}}.Encode()}).String()
	switch {
	case state == "" || !poll && state != "InProgress":
		return resp, nil // not long-running, or done at once
	case !poll && async:
		resp.Header.Set("Azure-AsyncOperation", statusURL)
		return resp, nil
	case !poll:
		resp.Header.Set("Location", statusURL)
		resp.StatusCode = http.StatusAccepted
		return resp, nil
	case async:
		return jsonResponse(req, http.StatusOK, map[string]any{"status": state}), nil
	case state == "InProgress":
		resp.StatusCode = http.StatusAccepted
		resp.Header.Set("Location", statusURL)
		return resp, nil
	}
	return resp, nil
}

func jsonResponse(req *http.Request, status int, v any) *http.Response {
	b, _ := json.Marshal(v)
	return &http.Response{StatusCode: status, Header: http.Header{"Content-Type": {"application/json"}},
		Body: io.NopCloser(bytes.NewReader(b)), Request: req, ContentLength: int64(len(b))}
}

// staticToken is a credential for the fake.
type staticToken string

func (s staticToken) GetToken(context.Context, policy.TokenRequestOptions) (azcore.AccessToken, error) {
	return azcore.AccessToken{Token: string(s), ExpiresOn: time.Now().Add(time.Hour)}, nil
}

// offline is a transport for credentials that must find nothing: it refuses
// every request in the process (the managed identity probe would otherwise
// go to the link-local metadata address).
type offline struct{}

func (offline) Do(req *http.Request) (*http.Response, error) {
	return nil, fmt.Errorf("no network in this test: %s %s", req.Method, req.URL.Host)
}

// noAzure takes this machine's Azure settings and tools out of a test.
func noAzure(t *testing.T) {
	t.Helper()
	for _, v := range []string{"AZURE_TENANT_ID", "AZURE_CLIENT_ID", "AZURE_CLIENT_SECRET", "AZURE_CLIENT_CERTIFICATE_PATH",
		"AZURE_CLIENT_CERTIFICATE_PASSWORD", "AZURE_CLIENT_SEND_CERTIFICATE_CHAIN", "AZURE_FEDERATED_TOKEN_FILE",
		"AZURE_AUTHORITY_HOST", "IDENTITY_ENDPOINT", "IDENTITY_HEADER", "MSI_ENDPOINT", "MSI_SECRET",
		"AZURE_RESOURCE_MANAGER_ENDPOINT", "AZURE_TOKEN_CREDENTIALS", "AZURE_USERNAME", "AZURE_PASSWORD"} {
		t.Setenv(v, "") // restored when the test ends
		os.Unsetenv(v)  // azidentity refuses some set to "" (AZURE_TOKEN_CREDENTIALS)
	}
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("USERPROFILE", home)
	t.Setenv("AZURE_CONFIG_DIR", filepath.Join(home, ".azure"))
	t.Setenv("PATH", t.TempDir())
}

// nsgFake is one NSG behind armnetwork's fake servers, backed by a map and
// checking what ARM checks: the resource group and NSG exist, inbound
// priorities are unique. deny makes every call answer 403.
type nsgFake struct {
	mu    sync.Mutex
	rg    string
	nsg   string
	rules map[string]armnetwork.SecurityRule
	deny  bool
	calls []string
	// failWrite makes the next PUT's long-running operation end Failed
	// with this code.
	failWrite string
	arm       *fakeARM
}

func newNSGFake() *nsgFake {
	return &nsgFake{rg: "tentacles", nsg: "web-nsg", rules: map[string]armnetwork.SecurityRule{}}
}

// check records call and answers as ARM would for rg and nsg; the caller
// holds f.mu.
func (f *nsgFake) check(call, rg, nsg string, errResp *azfake.ErrorResponder) bool {
	f.calls = append(f.calls, call)
	switch {
	case f.deny:
		errResp.SetResponseError(http.StatusForbidden, "AuthorizationFailed")
	case rg != f.rg:
		errResp.SetResponseError(http.StatusNotFound, "ResourceGroupNotFound")
	case nsg != f.nsg:
		errResp.SetResponseError(http.StatusNotFound, "ResourceNotFound")
	default:
		return true
	}
	return false
}

func (f *nsgFake) transport() *fakeARM {
	if f.arm == nil {
		f.arm = &fakeARM{srv: f.server()}
	}
	return f.arm
}

func (f *nsgFake) server() *fake.ServerFactoryTransport {
	return fake.NewServerFactoryTransport(&fake.ServerFactory{
		SecurityGroupsServer: fake.SecurityGroupsServer{
			Get: func(ctx context.Context, rg, nsg string, _ *armnetwork.SecurityGroupsClientGetOptions) (resp azfake.Responder[armnetwork.SecurityGroupsClientGetResponse], errResp azfake.ErrorResponder) {
				f.mu.Lock()
				defer f.mu.Unlock()
				if !f.check("get nsg", rg, nsg, &errResp) {
					return
				}
				g := armnetwork.SecurityGroup{Name: to.Ptr(nsg), Properties: &armnetwork.SecurityGroupPropertiesFormat{}}
				for _, r := range f.rules {
					g.Properties.SecurityRules = append(g.Properties.SecurityRules, to.Ptr(r))
				}
				resp.SetResponse(http.StatusOK, armnetwork.SecurityGroupsClientGetResponse{SecurityGroup: g}, nil)
				return
			},
		},
		SecurityRulesServer: fake.SecurityRulesServer{
			Get: func(ctx context.Context, rg, nsg, name string, _ *armnetwork.SecurityRulesClientGetOptions) (resp azfake.Responder[armnetwork.SecurityRulesClientGetResponse], errResp azfake.ErrorResponder) {
				f.mu.Lock()
				defer f.mu.Unlock()
				if !f.check("get "+name, rg, nsg, &errResp) {
					return
				}
				r, ok := f.rules[name]
				if !ok {
					errResp.SetResponseError(http.StatusNotFound, "NotFound")
					return
				}
				resp.SetResponse(http.StatusOK, armnetwork.SecurityRulesClientGetResponse{SecurityRule: r}, nil)
				return
			},
			BeginCreateOrUpdate: func(ctx context.Context, rg, nsg, name string, rule armnetwork.SecurityRule, _ *armnetwork.SecurityRulesClientBeginCreateOrUpdateOptions) (resp azfake.PollerResponder[armnetwork.SecurityRulesClientCreateOrUpdateResponse], errResp azfake.ErrorResponder) {
				f.mu.Lock()
				defer f.mu.Unlock()
				if !f.check("put "+name, rg, nsg, &errResp) {
					return
				}
				for other, r := range f.rules {
					if other != name && *r.Properties.Direction == *rule.Properties.Direction && *r.Properties.Priority == *rule.Properties.Priority {
						errResp.SetResponseError(http.StatusBadRequest, "SecurityRuleConflict")
						return
					}
				}
				resp.AddNonTerminalResponse(http.StatusCreated, nil)
				resp.AddNonTerminalResponse(http.StatusCreated, nil)
				if f.failWrite != "" {
					resp.SetTerminalError(http.StatusConflict, f.failWrite)
					f.failWrite = ""
					return
				}
				rule.Name = to.Ptr(name)
				f.rules[name] = rule
				resp.SetTerminalResponse(http.StatusOK, armnetwork.SecurityRulesClientCreateOrUpdateResponse{SecurityRule: rule}, nil)
				return
			},
			BeginDelete: func(ctx context.Context, rg, nsg, name string, _ *armnetwork.SecurityRulesClientBeginDeleteOptions) (resp azfake.PollerResponder[armnetwork.SecurityRulesClientDeleteResponse], errResp azfake.ErrorResponder) {
				f.mu.Lock()
				defer f.mu.Unlock()
				if !f.check("delete "+name, rg, nsg, &errResp) {
					return
				}
				delete(f.rules, name)
				resp.AddNonTerminalResponse(http.StatusAccepted, nil)
				resp.SetTerminalResponse(http.StatusOK, armnetwork.SecurityRulesClientDeleteResponse{}, nil)
				return
			},
		},
	})
}

func (f *nsgFake) writes() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, c := range f.calls {
		if !strings.HasPrefix(c, "get") {
			n++
		}
	}
	return n
}

func newBackend(t *testing.T, f *nsgFake, o Options) *SecurityGroup {
	t.Helper()
	if o.Subscription == "" {
		o.Subscription = "00000000-0000-0000-0000-000000000000"
	}
	if o.ResourceGroup == "" {
		o.ResourceGroup = f.rg
	}
	if o.NSG == "" {
		o.NSG = f.nsg
	}
	o.Credential = staticToken("fake-token")
	o.Transport = &http.Client{Transport: f.transport()}
	o.Endpoint = fakeEndpoint
	o.PollFrequency = time.Millisecond
	s, err := New(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

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

func TestOpenListClose(t *testing.T) {
	ctx := context.Background()
	f := newNSGFake()
	// The user's own rules: SSH at 100, a deny-all at 4000.
	f.rules["ssh"] = armnetwork.SecurityRule{Name: to.Ptr("ssh"), Properties: &armnetwork.SecurityRulePropertiesFormat{
		Access: to.Ptr(armnetwork.SecurityRuleAccessAllow), Direction: to.Ptr(armnetwork.SecurityRuleDirectionInbound),
		Protocol: to.Ptr(armnetwork.SecurityRuleProtocolTCP), Priority: to.Ptr[int32](100),
		SourceAddressPrefix: to.Ptr("198.51.100.7"), DestinationAddressPrefix: to.Ptr("*"), DestinationPortRange: to.Ptr("22")}}
	f.rules["deny-all"] = armnetwork.SecurityRule{Name: to.Ptr("deny-all"), Properties: &armnetwork.SecurityRulePropertiesFormat{
		Access: to.Ptr(armnetwork.SecurityRuleAccessDeny), Direction: to.Ptr(armnetwork.SecurityRuleDirectionInbound),
		Protocol: to.Ptr(armnetwork.SecurityRuleProtocolAsterisk), Priority: to.Ptr[int32](4000),
		SourceAddressPrefix: to.Ptr("*"), DestinationAddressPrefix: to.Ptr("*"), DestinationPortRange: to.Ptr("*")}}
	s := newBackend(t, f, Options{})
	rule := firewall.NewRule("", firewall.SinglePort(10933), []netip.Prefix{netip.MustParsePrefix("203.0.113.10/32")})

	dry, err := s.PlanOpen(ctx, rule)
	if err != nil {
		t.Fatal(err)
	}
	want := `create security rule "Octopus-Deploy-Tentacle-10933" in NSG web-nsg (resource group tentacles): inbound allow TCP 10933 from 203.0.113.10/32, priority 101`
	if len(dry.Steps) != 1 || dry.Steps[0].Description != want {
		t.Fatalf("plan %q, want %q", stepsOf(dry), want)
	}
	if f.writes() != 0 {
		t.Fatal("planning wrote to the NSG")
	}
	apply(t, s)(s.PlanOpen(ctx, rule))
	got := f.rules["Octopus-Deploy-Tentacle-10933"]
	if *got.Properties.Priority != 101 || *got.Properties.SourceAddressPrefix != "203.0.113.10/32" || *got.Properties.DestinationPortRange != "10933" {
		t.Fatalf("created %+v", *got.Properties)
	}

	// Identical rule: left alone, however it is named.
	writes := f.writes()
	if again, err := s.PlanOpen(ctx, rule); err != nil || !again.Empty() {
		t.Fatalf("second open: %v %v", stepsOf(again), err)
	}
	if f.writes() != writes {
		t.Fatal("a second open wrote")
	}

	listed, err := s.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var ours []firewall.Rule
	for _, r := range listed {
		if r.Ports.Contains(10933) {
			ours = append(ours, r)
		}
	}
	if len(ours) != 1 || ours[0].Name != "Octopus-Deploy-Tentacle-10933" || ours[0].Location != "NSG web-nsg, priority 101" {
		t.Fatalf("listed %+v", listed)
	}

	// Same name, new sources: updated in place, keeping its priority.
	wider := firewall.NewRule("", firewall.SinglePort(10933), nil)
	apply(t, s)(s.PlanOpen(ctx, wider))
	if got := f.rules["Octopus-Deploy-Tentacle-10933"]; *got.Properties.Priority != 101 || *got.Properties.SourceAddressPrefix != "*" {
		t.Fatalf("updated %+v", *got.Properties)
	}

	apply(t, s)(s.PlanClose(ctx, wider))
	if _, ok := f.rules["Octopus-Deploy-Tentacle-10933"]; ok {
		t.Fatal("close left the rule")
	}
	if again, err := s.PlanClose(ctx, wider); err != nil || !again.Empty() {
		t.Fatalf("second close: %v %v", stepsOf(again), err)
	}
	if len(f.rules) != 2 {
		t.Fatalf("the user's rules were touched: %v", f.rules)
	}
	// The writes were long-running: each PUT (two of them) followed
	// Azure-AsyncOperation (polled "InProgress", then "Succeeded"), the
	// DELETE followed Location (202 at first, then polled 200).
	if f.arm.polls != 2+2+1 {
		t.Fatalf("only %d status polls: %v", f.arm.polls, f.arm.seen)
	}
}

// A change that Azure accepts and then fails is an error, not success.
func TestFailedOperation(t *testing.T) {
	ctx := context.Background()
	f := newNSGFake()
	f.failWrite = "InternalServerError"
	s := newBackend(t, f, Options{})
	p, err := s.PlanOpen(ctx, firewall.NewRule("", firewall.SinglePort(10933), nil))
	if err != nil {
		t.Fatal(err)
	}
	err = p.Apply(ctx, nil)
	var re *azcore.ResponseError
	if !errors.As(err, &re) || re.ErrorCode != "InternalServerError" {
		t.Fatalf("got %v, want the operation's failure", err)
	}
}

// A rule someone else deleted between plan and apply is not an error.
func TestCloseAlreadyGone(t *testing.T) {
	ctx := context.Background()
	f := newNSGFake()
	s := newBackend(t, f, Options{})
	rule := firewall.NewRule("", firewall.SinglePort(10933), nil)
	apply(t, s)(s.PlanOpen(ctx, rule))
	p, err := s.PlanClose(ctx, rule)
	if err != nil || len(p.Steps) != 1 {
		t.Fatalf("plan %v %v", stepsOf(p), err)
	}
	f.nsg = "renamed" // every call on the old name now answers 404
	if err := p.Apply(ctx, nil); err != nil {
		t.Fatal(err)
	}
}

func TestPriority(t *testing.T) {
	ctx := context.Background()
	f := newNSGFake()
	s := newBackend(t, f, Options{Priority: 300})
	rule := firewall.NewRule("", firewall.PortRange{First: 10933, Last: 10940}, nil)
	apply(t, s)(s.PlanOpen(ctx, rule))
	if p := *f.rules["Octopus-Deploy-Tentacle-10933-10940"].Properties.Priority; p != 300 {
		t.Fatalf("priority %d", p)
	}
	other := newBackend(t, f, Options{Priority: 300})
	_, err := other.PlanOpen(ctx, firewall.NewRule("", firewall.SinglePort(10943), nil))
	userError(t, err, `Priority 300 is already used by inbound rule "Octopus-Deploy-Tentacle-10933-10940"`)

	_, err = New(ctx, Options{Subscription: "s", ResourceGroup: "g", NSG: "n", Priority: 5000, Credential: staticToken("fake-token")})
	userError(t, err, "The priority 5000 is out of range")
	if _, err := ParsePriority("abc"); err == nil {
		t.Fatal("ParsePriority accepted abc")
	}
}

func TestUserErrors(t *testing.T) {
	ctx := context.Background()
	f := newNSGFake()
	rule := firewall.NewRule("", firewall.SinglePort(10933), nil)

	_, err := newBackend(t, f, Options{NSG: "nope"}).PlanOpen(ctx, rule)
	userError(t, err, "Network security group nope was not found in resource group tentacles")
	_, err = newBackend(t, f, Options{ResourceGroup: "nope"}).PlanOpen(ctx, rule)
	userError(t, err, "Resource group nope was not found")

	f.deny = true
	_, err = newBackend(t, f, Options{}).PlanOpen(ctx, rule)
	userError(t, err, "The identity in use may not read the rules of network security group web-nsg")
	f.deny = false

	_, err = New(ctx, Options{ResourceGroup: "g", NSG: "n"})
	userError(t, err, "Say which subscription")

	// No credential anywhere: nothing in the environment, no instance
	// metadata service, no `az`.
	noAzure(t)
	_, err = New(ctx, Options{Subscription: "s", ResourceGroup: "g", NSG: "n", Transport: offline{}})
	userError(t, err, "No usable Azure credentials were found")
	// The SDK runs az through cmd.exe on Windows, and says what it missed.
	if goruntime.GOOS == "windows" {
		userError(t, err, `AzureCLICredential: exec: "cmd.exe": executable file not found`)
	} else {
		userError(t, err, "AzureCLICredential: executable not found on path")
	}
	if f.writes() != 0 {
		t.Fatalf("errors wrote: %v", f.calls)
	}
}

// The PUT body is what armnetwork itself would send for the same rule.
func TestRuleBodyMatchesSDK(t *testing.T) {
	for _, sources := range [][]netip.Prefix{nil, {netip.MustParsePrefix("203.0.113.10/32")},
		{netip.MustParsePrefix("203.0.113.0/24"), netip.MustParsePrefix("2001:db8::/32")}} {
		rule := firewall.NewRule("", firewall.PortRange{First: 10933, Last: 10934}, sources)
		p := &armnetwork.SecurityRulePropertiesFormat{
			Access:                   to.Ptr(armnetwork.SecurityRuleAccessAllow),
			Direction:                to.Ptr(armnetwork.SecurityRuleDirectionInbound),
			Protocol:                 to.Ptr(armnetwork.SecurityRuleProtocolTCP),
			Priority:                 to.Ptr[int32](123),
			Description:              to.Ptr(rule.Description),
			SourcePortRange:          to.Ptr("*"),
			DestinationAddressPrefix: to.Ptr("*"),
			DestinationPortRange:     to.Ptr("10933-10934"),
		}
		switch len(sources) {
		case 0:
			p.SourceAddressPrefix = to.Ptr("*")
		case 1:
			p.SourceAddressPrefix = to.Ptr(sources[0].String())
		default:
			for _, s := range sources {
				p.SourceAddressPrefixes = append(p.SourceAddressPrefixes, to.Ptr(s.String()))
			}
		}
		sdk, err := json.Marshal(armnetwork.SecurityRule{Name: to.Ptr(RuleName(rule)), Properties: p})
		if err != nil {
			t.Fatal(err)
		}
		ours, err := json.Marshal(newSecurityRule(rule, 123))
		if err != nil {
			t.Fatal(err)
		}
		var a, b any
		json.Unmarshal(sdk, &a)
		json.Unmarshal(ours, &b)
		if !reflect.DeepEqual(a, b) {
			t.Errorf("ours\n%s\nSDK\n%s", ours, sdk)
		}
	}
}

func userError(t *testing.T, err error, want string) {
	t.Helper()
	var ue *firewall.UserError
	if !errors.As(err, &ue) || !strings.Contains(ue.Msg, want) {
		t.Fatalf("got %v, want a user error containing %q", err, want)
	}
}

func stepsOf(p *firewall.Plan) []string {
	if p == nil {
		return nil
	}
	var out []string
	for _, s := range p.Steps {
		out = append(out, s.Description)
	}
	return out
}

// azcore sends bearer tokens over https only: a plain-http endpoint is one
// sentence before any token is asked for.
func TestPlainHTTPEndpoint(t *testing.T) {
	_, err := New(context.Background(), Options{Subscription: "s", ResourceGroup: "g", NSG: "n", Credential: staticToken("fake-token"),
		Endpoint: "http://127.0.0.1:1"})
	userError(t, err, `The Azure Resource Manager endpoint "http://127.0.0.1:1" is not an https URL`)
}
