package azure

import (
	"context"
	"errors"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/arm"
	azfake "github.com/Azure/azure-sdk-for-go/sdk/azcore/fake"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/network/armnetwork/v9"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/network/armnetwork/v9/fake"

	"github.com/tentacle-go/tentacle/firewall"
)

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
}

func newNSGFake() *nsgFake {
	return &nsgFake{rg: "tentacles", nsg: "web-nsg", rules: map[string]armnetwork.SecurityRule{}}
}

func (f *nsgFake) check(rg, nsg string, errResp *azfake.ErrorResponder) bool {
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

func (f *nsgFake) transport() *fake.ServerFactoryTransport {
	return fake.NewServerFactoryTransport(&fake.ServerFactory{
		SecurityGroupsServer: fake.SecurityGroupsServer{
			Get: func(ctx context.Context, rg, nsg string, _ *armnetwork.SecurityGroupsClientGetOptions) (resp azfake.Responder[armnetwork.SecurityGroupsClientGetResponse], errResp azfake.ErrorResponder) {
				f.mu.Lock()
				defer f.mu.Unlock()
				f.calls = append(f.calls, "get nsg")
				if !f.check(rg, nsg, &errResp) {
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
			BeginCreateOrUpdate: func(ctx context.Context, rg, nsg, name string, rule armnetwork.SecurityRule, _ *armnetwork.SecurityRulesClientBeginCreateOrUpdateOptions) (resp azfake.PollerResponder[armnetwork.SecurityRulesClientCreateOrUpdateResponse], errResp azfake.ErrorResponder) {
				f.mu.Lock()
				defer f.mu.Unlock()
				f.calls = append(f.calls, "put "+name)
				if !f.check(rg, nsg, &errResp) {
					return
				}
				for other, r := range f.rules {
					if other != name && *r.Properties.Direction == *rule.Properties.Direction && *r.Properties.Priority == *rule.Properties.Priority {
						errResp.SetResponseError(http.StatusBadRequest, "SecurityRuleConflict")
						return
					}
				}
				rule.Name = to.Ptr(name)
				f.rules[name] = rule
				resp.AddNonTerminalResponse(http.StatusCreated, nil)
				resp.SetTerminalResponse(http.StatusOK, armnetwork.SecurityRulesClientCreateOrUpdateResponse{SecurityRule: rule}, nil)
				return
			},
			BeginDelete: func(ctx context.Context, rg, nsg, name string, _ *armnetwork.SecurityRulesClientBeginDeleteOptions) (resp azfake.PollerResponder[armnetwork.SecurityRulesClientDeleteResponse], errResp azfake.ErrorResponder) {
				f.mu.Lock()
				defer f.mu.Unlock()
				f.calls = append(f.calls, "delete "+name)
				if !f.check(rg, nsg, &errResp) {
					return
				}
				delete(f.rules, name)
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
	o.Credential = &azfake.TokenCredential{}
	o.ClientOptions = &arm.ClientOptions{ClientOptions: policy.ClientOptions{Transport: f.transport()}}
	o.PollFrequency = 1
	s, err := New(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func apply(t *testing.T) func(*firewall.Plan, error) {
	return func(p *firewall.Plan, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		if err := p.Apply(context.Background(), nil); err != nil {
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
	apply(t)(s.PlanOpen(ctx, rule))
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
	apply(t)(s.PlanOpen(ctx, wider))
	if got := f.rules["Octopus-Deploy-Tentacle-10933"]; *got.Properties.Priority != 101 || *got.Properties.SourceAddressPrefix != "*" {
		t.Fatalf("updated %+v", *got.Properties)
	}

	apply(t)(s.PlanClose(ctx, wider))
	if _, ok := f.rules["Octopus-Deploy-Tentacle-10933"]; ok {
		t.Fatal("close left the rule")
	}
	if again, err := s.PlanClose(ctx, wider); err != nil || !again.Empty() {
		t.Fatalf("second close: %v %v", stepsOf(again), err)
	}
	if len(f.rules) != 2 {
		t.Fatalf("the user's rules were touched: %v", f.rules)
	}
}

func TestPriority(t *testing.T) {
	ctx := context.Background()
	f := newNSGFake()
	s := newBackend(t, f, Options{Priority: 300})
	rule := firewall.NewRule("", firewall.PortRange{First: 10933, Last: 10940}, nil)
	apply(t)(s.PlanOpen(ctx, rule))
	if p := *f.rules["Octopus-Deploy-Tentacle-10933-10940"].Properties.Priority; p != 300 {
		t.Fatalf("priority %d", p)
	}
	other := newBackend(t, f, Options{Priority: 300})
	_, err := other.PlanOpen(ctx, firewall.NewRule("", firewall.SinglePort(10943), nil))
	userError(t, err, `Priority 300 is already used by inbound rule "Octopus-Deploy-Tentacle-10933-10940"`)

	_, err = New(ctx, Options{Subscription: "s", ResourceGroup: "g", NSG: "n", Priority: 5000, Credential: &azfake.TokenCredential{}})
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

	// No credential anywhere: the Azure CLI credential finds no `az`.
	t.Setenv("PATH", t.TempDir())
	cli, err := azidentity.NewAzureCLICredential(nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = New(ctx, Options{Subscription: "s", ResourceGroup: "g", NSG: "n", Credential: cli})
	userError(t, err, "No usable Azure credentials were found")
	if f.writes() != 0 {
		t.Fatalf("errors wrote: %v", f.calls)
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
