// Package azure opens the Tentacle's port with an inbound security rule in
// an Azure network security group (NSG), through the Azure SDK for Go:
// credentials from azidentity's DefaultAzureCredential (a service
// principal's secret or certificate in the environment, workload identity,
// a managed identity, the Azure CLI's or Azure Developer CLI's login; see
// AZURE_TOKEN_CREDENTIALS to pin one), requests through armnetwork's clients
// and so azcore's pipeline (retries, Retry-After, long-running operations).
//
// Nothing here runs before a cloud command does: no package-level state, and
// the credential and clients are built in New.
//
// What upstream's documentation calls "Azure endpoints" are the classic
// (ASM) endpoints of Cloud Services and classic VMs, both retired; in
// Resource Manager an inbound NSG rule is what lets traffic reach a VM.
package azure

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/arm"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/network/armnetwork/v9"

	"github.com/tentacle-go/tentacle/firewall"
)

// Priorities an NSG rule may have; lower wins. The first free one is taken
// so that the allow is evaluated before any broad deny the user added.
const (
	minPriority = 100
	maxPriority = 4096
)

const (
	// pollFrequency is how often a long-running rule change is checked; rule
	// changes take seconds, and the SDK's default (30 s) would mostly wait.
	pollFrequency = 2 * time.Second
	// maxOperation bounds the wait for a rule change, which takes seconds,
	// so that a stuck operation cannot hang provisioning for ever.
	maxOperation = 10 * time.Minute
)

// Options say which NSG, and as whom.
type Options struct {
	Subscription, ResourceGroup, NSG string
	// Priority for a new rule; 0: the first free one from 100.
	Priority int32
	// Credential gives ARM tokens; nil: azidentity's DefaultAzureCredential.
	Credential azcore.TokenCredential
	// Transport sends the SDK's requests (ARM's and the credential's); nil:
	// azcore's default (which honours HTTPS_PROXY). Tests put armnetwork's
	// fake here.
	Transport policy.Transporter
	// Endpoint is ARM's base URL; "": $AZURE_RESOURCE_MANAGER_ENDPOINT, else
	// Azure's public cloud. Tokens are asked for Endpoint's "/.default"
	// scope, which is right for the sovereign clouds too
	// (https://management.usgovcloudapi.net, https://management.chinacloudapi.cn).
	Endpoint string
	// PollFrequency; 0: pollFrequency.
	PollFrequency time.Duration
}

// SecurityGroup is the Azure backend: one NSG.
type SecurityGroup struct {
	o      Options
	groups *armnetwork.SecurityGroupsClient
	rules  *armnetwork.SecurityRulesClient
}

// New checks the options and that a credential can be had; nothing is read
// from or changed in the NSG yet.
func New(ctx context.Context, o Options) (*SecurityGroup, error) {
	switch {
	case o.Subscription == "":
		return nil, firewall.Userf("Say which subscription the network security group is in: --subscription ID (see `az account show`).")
	case o.ResourceGroup == "":
		return nil, firewall.Userf("Say which resource group the network security group is in: --resource-group NAME.")
	case o.NSG == "":
		return nil, firewall.Userf("Say which network security group to change: --nsg NAME (the one attached to the VM's network interface or subnet).")
	case o.Priority != 0 && (o.Priority < minPriority || o.Priority > maxPriority):
		return nil, firewall.Userf("The priority %d is out of range: give a number from %d to %d, or leave it out to take the first free one.", o.Priority, minPriority, maxPriority)
	}
	if o.Endpoint == "" {
		o.Endpoint = os.Getenv("AZURE_RESOURCE_MANAGER_ENDPOINT")
	}
	azureCloud := cloud.AzurePublic
	if o.Endpoint != "" {
		u, err := url.Parse(o.Endpoint)
		if err != nil || u.Scheme != "https" || u.Host == "" {
			// azcore sends bearer tokens over https only.
			return nil, firewall.Userf("The Azure Resource Manager endpoint %q is not an https URL: check AZURE_RESOURCE_MANAGER_ENDPOINT.", o.Endpoint)
		}
		azureCloud = cloud.Configuration{ActiveDirectoryAuthorityHost: cloud.AzurePublic.ActiveDirectoryAuthorityHost,
			Services: map[cloud.ServiceName]cloud.ServiceConfiguration{cloud.ResourceManager: {Endpoint: o.Endpoint, Audience: o.Endpoint}}}
	}
	if o.PollFrequency == 0 {
		o.PollFrequency = pollFrequency
	}
	if o.Credential == nil {
		cred, err := azidentity.NewDefaultAzureCredential(&azidentity.DefaultAzureCredentialOptions{ClientOptions: azcore.ClientOptions{Transport: o.Transport}})
		if err != nil {
			return nil, credentialError(err)
		}
		o.Credential = cred
	}
	// Ask for a token now, so that missing credentials are one clear
	// sentence rather than the first API call's error.
	audience := azureCloud.Services[cloud.ResourceManager].Audience
	if _, err := o.Credential.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{strings.TrimSuffix(audience, "/") + "/.default"}}); err != nil {
		return nil, credentialError(err)
	}
	clientOptions := &arm.ClientOptions{ClientOptions: policy.ClientOptions{Cloud: azureCloud, Transport: o.Transport}}
	groups, err := armnetwork.NewSecurityGroupsClient(o.Subscription, o.Credential, clientOptions)
	if err != nil {
		return nil, err
	}
	rules, err := armnetwork.NewSecurityRulesClient(o.Subscription, o.Credential, clientOptions)
	if err != nil {
		return nil, err
	}
	return &SecurityGroup{o: o, groups: groups, rules: rules}, nil
}

func credentialError(err error) error {
	return firewall.Userf("No usable Azure credentials were found: on an Azure VM give it a managed identity, elsewhere run `az login` or set AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET (%s).", oneLine(err.Error()))
}

// oneLine folds the SDK's multi-line messages (DefaultAzureCredential
// lists every credential it tried) into one sentence.
func oneLine(s string) string {
	return strings.TrimSuffix(strings.Join(strings.Fields(s), " "), ".")
}

func (s *SecurityGroup) Name() string {
	return "Azure network security group " + s.o.NSG + " (resource group " + s.o.ResourceGroup + ")"
}

// RuleName is the NSG rule name for rule: its name made ARM-safe, with the
// ports, so that one name can open several ports.
func RuleName(rule firewall.Rule) string {
	var b strings.Builder
	for _, c := range rule.Name {
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '-' {
			b.WriteRune(c)
		} else {
			b.WriteRune('-')
		}
	}
	return b.String() + "-" + rule.Ports.String()
}

// newSecurityRule is rule as an NSG rule.
func newSecurityRule(rule firewall.Rule, priority int32) armnetwork.SecurityRule {
	p := &armnetwork.SecurityRulePropertiesFormat{
		Access:                   to.Ptr(armnetwork.SecurityRuleAccessAllow),
		Direction:                to.Ptr(armnetwork.SecurityRuleDirectionInbound),
		Protocol:                 to.Ptr(armnetwork.SecurityRuleProtocolTCP),
		Priority:                 to.Ptr(priority),
		Description:              to.Ptr(rule.Description),
		SourcePortRange:          to.Ptr("*"),
		DestinationAddressPrefix: to.Ptr("*"),
		DestinationPortRange:     to.Ptr(rule.Ports.String()),
	}
	switch {
	case rule.FromAnywhere() && len(rule.Sources) == 2:
		p.SourceAddressPrefix = to.Ptr("*")
	case len(rule.Sources) == 1:
		p.SourceAddressPrefix = to.Ptr(rule.Sources[0].String())
	default:
		for _, src := range rule.Sources {
			p.SourceAddressPrefixes = append(p.SourceAddressPrefixes, to.Ptr(src.String()))
		}
	}
	return armnetwork.SecurityRule{Name: to.Ptr(RuleName(rule)), Properties: p}
}

// text is *p, or "" (ARM leaves out what is not set).
func text[T ~string](p *T) string {
	if p == nil {
		return ""
	}
	return string(*p)
}

// texts are the strings of ps, without the unset ones.
func texts(ps []*string) []string {
	var out []string
	for _, p := range ps {
		if p != nil {
			out = append(out, *p)
		}
	}
	return out
}

func priorityOf(r *armnetwork.SecurityRule) int32 {
	if r.Properties == nil || r.Properties.Priority == nil {
		return 0
	}
	return *r.Properties.Priority
}

// inbound reports whether r is an inbound rule (ARM's values are
// PascalCase, compared without case to be lenient).
func inbound(r *armnetwork.SecurityRule) bool {
	return r.Properties != nil && strings.EqualFold(text(r.Properties.Direction), string(armnetwork.SecurityRuleDirectionInbound))
}

// inboundAllow reads an inbound TCP allow rule: its port ranges and
// sources. ok is false for anything else, and for rules whose sources are
// service tags (VirtualNetwork, AzureLoadBalancer…) rather than addresses.
func inboundAllow(r *armnetwork.SecurityRule) (ports []firewall.PortRange, sources []netip.Prefix, ok bool) {
	if !inbound(r) || !strings.EqualFold(text(r.Properties.Access), string(armnetwork.SecurityRuleAccessAllow)) {
		return nil, nil, false
	}
	p := r.Properties
	if protocol := text(p.Protocol); !strings.EqualFold(protocol, string(armnetwork.SecurityRuleProtocolTCP)) && protocol != string(armnetwork.SecurityRuleProtocolAsterisk) {
		return nil, nil, false
	}
	for _, v := range append([]string{text(p.DestinationPortRange)}, texts(p.DestinationPortRanges)...) {
		switch v {
		case "":
		case "*":
			ports = append(ports, firewall.PortRange{First: 1, Last: 65535})
		default:
			if r, err := firewall.ParsePortRange(v); err == nil {
				ports = append(ports, r)
			}
		}
	}
	for _, v := range append([]string{text(p.SourceAddressPrefix)}, texts(p.SourceAddressPrefixes)...) {
		switch {
		case v == "":
		case v == "*" || strings.EqualFold(v, "Internet") || strings.EqualFold(v, "Any"):
			sources = append(sources, firewall.AnySource...)
		default:
			if ps, err := firewall.ParseSources([]string{v}); err == nil {
				sources = append(sources, ps...)
			}
		}
	}
	return ports, firewall.SortPrefixes(sources), len(ports) > 0 && len(sources) > 0
}

// identical reports whether r does exactly what rule asks.
func identical(r *armnetwork.SecurityRule, rule firewall.Rule) bool {
	ports, sources, ok := inboundAllow(r)
	if !ok || len(ports) != 1 || ports[0] != rule.Ports || !strings.EqualFold(text(r.Properties.Protocol), string(armnetwork.SecurityRuleProtocolTCP)) {
		return false
	}
	if d := text(r.Properties.DestinationAddressPrefix); d != "*" && d != "" || len(r.Properties.DestinationAddressPrefixes) > 0 {
		return false
	}
	return firewall.SamePrefixSet(sources, rule.Sources)
}

func (s *SecurityGroup) current(ctx context.Context) ([]*armnetwork.SecurityRule, error) {
	resp, err := s.groups.Get(ctx, s.o.ResourceGroup, s.o.NSG, nil)
	if err != nil {
		return nil, s.explain(err, "read")
	}
	if resp.Properties == nil {
		return nil, nil
	}
	var rules []*armnetwork.SecurityRule
	for _, r := range resp.Properties.SecurityRules {
		if r != nil {
			rules = append(rules, r)
		}
	}
	return rules, nil
}

// put creates or replaces the rule and waits for the change to finish.
func (s *SecurityGroup) put(ctx context.Context, rule armnetwork.SecurityRule) error {
	ctx, cancel := context.WithTimeout(ctx, maxOperation)
	defer cancel()
	poller, err := s.rules.BeginCreateOrUpdate(ctx, s.o.ResourceGroup, s.o.NSG, *rule.Name, rule, nil)
	if err == nil {
		_, err = poller.PollUntilDone(ctx, &runtime.PollUntilDoneOptions{Frequency: s.o.PollFrequency})
	}
	return err
}

// delete removes the rule and waits for the change to finish.
func (s *SecurityGroup) delete(ctx context.Context, name string) error {
	ctx, cancel := context.WithTimeout(ctx, maxOperation)
	defer cancel()
	poller, err := s.rules.BeginDelete(ctx, s.o.ResourceGroup, s.o.NSG, name, nil)
	if err == nil {
		_, err = poller.PollUntilDone(ctx, &runtime.PollUntilDoneOptions{Frequency: s.o.PollFrequency})
	}
	return err
}

func (s *SecurityGroup) PlanOpen(ctx context.Context, rule firewall.Rule) (*firewall.Plan, error) {
	if err := rule.Validate(); err != nil {
		return nil, err
	}
	rules, err := s.current(ctx)
	if err != nil {
		return nil, err
	}
	plan := &firewall.Plan{Action: firewall.Open, Rule: rule, Firewall: s.Name()}
	name := RuleName(rule)
	used := map[int32]string{}
	var sameName *armnetwork.SecurityRule
	for _, r := range rules {
		if identical(r, rule) {
			return plan, nil // left alone, whatever its name and priority
		}
		if text(r.Name) == name {
			sameName = r
			continue
		}
		if inbound(r) {
			used[priorityOf(r)] = text(r.Name)
		}
	}
	priority := s.o.Priority
	switch {
	case priority != 0:
		if other, taken := used[priority]; taken {
			return nil, firewall.Userf("Priority %d is already used by inbound rule %q in %s: choose another with --priority, or leave it out to take the first free one.", priority, other, s.o.NSG)
		}
	case sameName != nil && priorityOf(sameName) != 0:
		// Updating our own rule (new sources): it keeps its place.
		priority = priorityOf(sameName)
	default:
		for p := int32(minPriority); p <= maxPriority; p++ {
			if _, taken := used[p]; !taken {
				priority = p
				break
			}
		}
		if priority == 0 {
			return nil, firewall.Userf("Every inbound priority from %d to %d is taken in %s: remove unused rules first.", minPriority, maxPriority, s.o.NSG)
		}
	}
	want := newSecurityRule(rule, priority)
	verb := "create"
	if sameName != nil {
		verb = "update"
	}
	desc := fmt.Sprintf("%s security rule %q in NSG %s (resource group %s): inbound allow TCP %s from %s, priority %d",
		verb, name, s.o.NSG, s.o.ResourceGroup, rule.Ports, sourcesText(rule), priority)
	plan.Steps = append(plan.Steps, firewall.NewStep(desc, func(ctx context.Context) error {
		if err := s.put(ctx, want); err != nil {
			return s.explain(err, "write")
		}
		return nil
	}))
	return plan, nil
}

func sourcesText(rule firewall.Rule) string {
	if rule.FromAnywhere() && len(rule.Sources) == 2 {
		return "* (anywhere)"
	}
	return rule.SourcesText()
}

func (s *SecurityGroup) PlanClose(ctx context.Context, rule firewall.Rule) (*firewall.Plan, error) {
	if err := rule.Validate(); err != nil {
		return nil, err
	}
	rules, err := s.current(ctx)
	if err != nil {
		return nil, err
	}
	plan := &firewall.Plan{Action: firewall.Close, Rule: rule, Firewall: s.Name()}
	for _, r := range rules {
		if !identical(r, rule) {
			continue
		}
		name := text(r.Name)
		desc := fmt.Sprintf("delete security rule %q from NSG %s (resource group %s)", name, s.o.NSG, s.o.ResourceGroup)
		plan.Steps = append(plan.Steps, firewall.NewStep(desc, func(ctx context.Context) error {
			if err := s.delete(ctx, name); err != nil && !notFound(err) {
				return s.explain(err, "delete")
			}
			return nil // a 404: someone else removed it meanwhile
		}))
	}
	return plan, nil
}

// List lists the NSG's inbound TCP allow rules, named by their rule names.
func (s *SecurityGroup) List(ctx context.Context) ([]firewall.Rule, error) {
	rules, err := s.current(ctx)
	if err != nil {
		return nil, err
	}
	var out []firewall.Rule
	for _, r := range rules {
		ports, sources, ok := inboundAllow(r)
		if !ok {
			continue
		}
		for _, p := range ports {
			rule := firewall.NewRule(text(r.Name), p, sources)
			rule.Description = text(r.Properties.Description)
			rule.Location = fmt.Sprintf("NSG %s, priority %d", s.o.NSG, priorityOf(r))
			out = append(out, rule)
		}
	}
	slices.SortFunc(out, func(a, b firewall.Rule) int { return strings.Compare(a.Location, b.Location) })
	return out, nil
}

func notFound(err error) bool {
	var re *azcore.ResponseError
	return errors.As(err, &re) && re.StatusCode == http.StatusNotFound
}

// explain turns the ARM errors a user can fix into one sentence each.
func (s *SecurityGroup) explain(err error, action string) error {
	var re *azcore.ResponseError
	if !errors.As(err, &re) {
		var auth *azidentity.AuthenticationFailedError
		if errors.As(err, &auth) {
			return credentialError(err)
		}
		return err
	}
	switch {
	case re.ErrorCode == "SubscriptionNotFound" || re.ErrorCode == "InvalidSubscriptionId":
		return firewall.Userf("Subscription %s was not found, or the identity in use cannot see it: check --subscription (`az account list`).", s.o.Subscription)
	case re.ErrorCode == "ResourceGroupNotFound":
		return firewall.Userf("Resource group %s was not found in subscription %s: check --resource-group.", s.o.ResourceGroup, s.o.Subscription)
	case re.StatusCode == 404:
		return firewall.Userf("Network security group %s was not found in resource group %s: check --nsg (`az network nsg list -g %s`).", s.o.NSG, s.o.ResourceGroup, s.o.ResourceGroup)
	case re.StatusCode == 403 || re.ErrorCode == "AuthorizationFailed":
		return firewall.Userf("The identity in use may not %s the rules of network security group %s: give it the Network Contributor role on the NSG (or Microsoft.Network/networkSecurityGroups/securityRules/%s).", action, s.o.NSG, action)
	case re.StatusCode == 401:
		return credentialError(err)
	case re.StatusCode == 400 || re.StatusCode == 409:
		return firewall.Userf("Azure refused the change to network security group %s (%s, HTTP %d): check the values given.", s.o.NSG, re.ErrorCode, re.StatusCode)
	}
	return err
}

// ParsePriority reads --priority; empty is 0, the first free one.
func ParsePriority(s string) (int32, error) {
	if s == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 32)
	if err != nil || n < minPriority || n > maxPriority {
		return 0, firewall.Userf("The priority %q is not valid: give a number from %d to %d, or leave it out to take the first free one.", s, minPriority, maxPriority)
	}
	return int32(n), nil
}
