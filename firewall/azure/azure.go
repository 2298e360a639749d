// Package azure opens the Tentacle's port with an inbound security rule in
// an Azure network security group (NSG), through the Azure Resource Manager
// REST API, with credentials found the way Azure's DefaultAzureCredential
// finds them: the environment (a service principal's secret or
// certificate), workload identity, a managed identity (App Service or a
// VM's instance metadata service), then the Azure CLI's login.
//
// It speaks HTTP itself rather than through the Azure SDK: the SDK (azcore,
// azidentity, armnetwork, MSAL) would add megabytes to the binary and to
// the memory and start-up of every process of it, the idle agent's
// included, for a command run once per machine.
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
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tentacle-go/tentacle/firewall"
)

// Priorities an NSG rule may have; lower wins. The first free one is taken
// so that the allow is evaluated before any broad deny the user added.
const (
	minPriority = 100
	maxPriority = 4096
)

// pollFrequency is how often a long-running rule change is checked; rule
// changes take seconds, and the SDK's default (30 s) would mostly wait.
const pollFrequency = 2 * time.Second

// Options say which NSG, and as whom.
type Options struct {
	Subscription, ResourceGroup, NSG string
	// Priority for a new rule; 0: the first free one from 100.
	Priority int32
	// Credential gives ARM tokens; nil: DefaultCredential().
	Credential TokenSource
	// HTTPClient for ARM requests; nil: one with the default transport
	// (which honours HTTPS_PROXY). Tests inject a transport here.
	HTTPClient *http.Client
	// Endpoint is ARM's base URL; "": $AZURE_RESOURCE_MANAGER_ENDPOINT, else
	// https://management.azure.com. Tokens are asked for Endpoint's
	// "/.default" scope, which is right for the sovereign clouds too
	// (https://management.usgovcloudapi.net, https://management.chinacloudapi.cn).
	Endpoint string
	// PollFrequency; 0: pollFrequency.
	PollFrequency time.Duration
}

// SecurityGroup is the Azure backend: one NSG.
type SecurityGroup struct {
	o   Options
	arm *armClient
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
	if o.Endpoint == "" {
		o.Endpoint = defaultEndpoint
	}
	if o.Credential == nil {
		o.Credential = DefaultCredential()
	}
	if o.PollFrequency == 0 {
		o.PollFrequency = pollFrequency
	}
	arm, err := newARMClient(o.Endpoint, o.Credential, o.HTTPClient, o.PollFrequency)
	if err != nil {
		return nil, firewall.Userf("%s: check AZURE_RESOURCE_MANAGER_ENDPOINT.", upperFirst(err.Error()))
	}
	// Ask for a token now, so that missing credentials are one clear
	// sentence rather than the first API call's error.
	if _, _, err := o.Credential.Token(ctx, arm.scope); err != nil {
		return nil, credentialError(err)
	}
	return &SecurityGroup{o: o, arm: arm}, nil
}

func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

func credentialError(err error) error {
	return firewall.Userf("No usable Azure credentials were found: on an Azure VM give it a managed identity, elsewhere run `az login` or set AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET (%s).", firstLine(err.Error()))
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

// The JSON of Microsoft.Network/networkSecurityGroups (only what is used)
// and of its securityRules, as API version apiVersion has them.
type securityGroup struct {
	Name       string `json:"name"`
	Properties struct {
		SecurityRules []securityRule `json:"securityRules"`
	} `json:"properties"`
}

type securityRule struct {
	Name       string          `json:"name,omitempty"`
	Properties *ruleProperties `json:"properties,omitempty"`
}

type ruleProperties struct {
	Description                string   `json:"description,omitempty"`
	Protocol                   string   `json:"protocol"` // Tcp, Udp, Icmp, Esp, Ah, *
	SourcePortRange            string   `json:"sourcePortRange,omitempty"`
	SourcePortRanges           []string `json:"sourcePortRanges,omitempty"`
	DestinationPortRange       string   `json:"destinationPortRange,omitempty"`
	DestinationPortRanges      []string `json:"destinationPortRanges,omitempty"`
	SourceAddressPrefix        string   `json:"sourceAddressPrefix,omitempty"`
	SourceAddressPrefixes      []string `json:"sourceAddressPrefixes,omitempty"`
	DestinationAddressPrefix   string   `json:"destinationAddressPrefix,omitempty"`
	DestinationAddressPrefixes []string `json:"destinationAddressPrefixes,omitempty"`
	Access                     string   `json:"access"`    // Allow, Deny
	Priority                   int32    `json:"priority"`  // 100..4096
	Direction                  string   `json:"direction"` // Inbound, Outbound
}

const (
	accessAllow      = "Allow"
	directionInbound = "Inbound"
	protocolTCP      = "Tcp"
	protocolAny      = "*"
)

// newSecurityRule is rule as an NSG rule.
func newSecurityRule(rule firewall.Rule, priority int32) securityRule {
	p := &ruleProperties{
		Access:                   accessAllow,
		Direction:                directionInbound,
		Protocol:                 protocolTCP,
		Priority:                 priority,
		Description:              rule.Description,
		SourcePortRange:          "*",
		DestinationAddressPrefix: "*",
		DestinationPortRange:     rule.Ports.String(),
	}
	switch {
	case rule.FromAnywhere() && len(rule.Sources) == 2:
		p.SourceAddressPrefix = "*"
	case len(rule.Sources) == 1:
		p.SourceAddressPrefix = rule.Sources[0].String()
	default:
		for _, src := range rule.Sources {
			p.SourceAddressPrefixes = append(p.SourceAddressPrefixes, src.String())
		}
	}
	return securityRule{Name: RuleName(rule), Properties: p}
}

// inbound reports whether r is an inbound rule (ARM's values are
// PascalCase, compared without case to be lenient).
func (r *securityRule) inbound() bool {
	return r.Properties != nil && strings.EqualFold(r.Properties.Direction, directionInbound)
}

// inboundAllow reads an inbound TCP allow rule: its port ranges and
// sources. ok is false for anything else, and for rules whose sources are
// service tags (VirtualNetwork, AzureLoadBalancer…) rather than addresses.
func inboundAllow(r *securityRule) (ports []firewall.PortRange, sources []netip.Prefix, ok bool) {
	p := r.Properties
	if !r.inbound() || !strings.EqualFold(p.Access, accessAllow) {
		return nil, nil, false
	}
	if !strings.EqualFold(p.Protocol, protocolTCP) && p.Protocol != protocolAny {
		return nil, nil, false
	}
	for _, v := range append([]string{p.DestinationPortRange}, p.DestinationPortRanges...) {
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
	for _, v := range append([]string{p.SourceAddressPrefix}, p.SourceAddressPrefixes...) {
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
func identical(r *securityRule, rule firewall.Rule) bool {
	ports, sources, ok := inboundAllow(r)
	if !ok || len(ports) != 1 || ports[0] != rule.Ports || !strings.EqualFold(r.Properties.Protocol, protocolTCP) {
		return false
	}
	if d := r.Properties.DestinationAddressPrefix; d != "*" && d != "" || len(r.Properties.DestinationAddressPrefixes) > 0 {
		return false
	}
	return firewall.SamePrefixSet(sources, rule.Sources)
}

func (s *SecurityGroup) nsgURL(rule ...string) string {
	segs := []string{"subscriptions", s.o.Subscription, "resourceGroups", s.o.ResourceGroup,
		"providers", "Microsoft.Network", "networkSecurityGroups", s.o.NSG}
	if len(rule) > 0 {
		segs = append(segs, "securityRules", rule[0])
	}
	return s.arm.resourceURL(segs...)
}

func (s *SecurityGroup) current(ctx context.Context) ([]securityRule, error) {
	var g securityGroup
	if err := s.arm.get(ctx, s.nsgURL(), &g); err != nil {
		return nil, s.explain(err, "read")
	}
	return g.Properties.SecurityRules, nil
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
	var sameName *securityRule
	for i := range rules {
		r := &rules[i]
		if identical(r, rule) {
			return plan, nil // left alone, whatever its name and priority
		}
		if r.Name == name {
			sameName = r
			continue
		}
		if r.inbound() {
			used[r.Properties.Priority] = r.Name
		}
	}
	priority := s.o.Priority
	switch {
	case priority != 0:
		if other, taken := used[priority]; taken {
			return nil, firewall.Userf("Priority %d is already used by inbound rule %q in %s: choose another with --priority, or leave it out to take the first free one.", priority, other, s.o.NSG)
		}
	case sameName != nil && sameName.Properties != nil && sameName.Properties.Priority != 0:
		// Updating our own rule (new sources): it keeps its place.
		priority = sameName.Properties.Priority
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
		if err := s.arm.put(ctx, s.nsgURL(name), want); err != nil {
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
	for i := range rules {
		if !identical(&rules[i], rule) {
			continue
		}
		name := rules[i].Name
		desc := fmt.Sprintf("delete security rule %q from NSG %s (resource group %s)", name, s.o.NSG, s.o.ResourceGroup)
		plan.Steps = append(plan.Steps, firewall.NewStep(desc, func(ctx context.Context) error {
			if err := s.arm.delete(ctx, s.nsgURL(name)); err != nil && !notFound(err) {
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
	for i := range rules {
		r := &rules[i]
		ports, sources, ok := inboundAllow(r)
		if !ok {
			continue
		}
		for _, p := range ports {
			rule := firewall.NewRule(r.Name, p, sources)
			rule.Description = r.Properties.Description
			rule.Location = fmt.Sprintf("NSG %s, priority %d", s.o.NSG, r.Properties.Priority)
			out = append(out, rule)
		}
	}
	slices.SortFunc(out, func(a, b firewall.Rule) int { return strings.Compare(a.Location, b.Location) })
	return out, nil
}

func notFound(err error) bool {
	var re *ResponseError
	return errors.As(err, &re) && re.StatusCode == http.StatusNotFound
}

// explain turns the ARM errors a user can fix into one sentence each.
func (s *SecurityGroup) explain(err error, action string) error {
	var re *ResponseError
	if !errors.As(err, &re) {
		var te *tokenError
		if errors.As(err, &te) {
			return credentialError(te.err)
		}
		return err
	}
	switch {
	case re.Code == "SubscriptionNotFound" || re.Code == "InvalidSubscriptionId":
		return firewall.Userf("Subscription %s was not found, or the identity in use cannot see it: check --subscription (`az account list`).", s.o.Subscription)
	case re.Code == "ResourceGroupNotFound":
		return firewall.Userf("Resource group %s was not found in subscription %s: check --resource-group.", s.o.ResourceGroup, s.o.Subscription)
	case re.StatusCode == 404:
		return firewall.Userf("Network security group %s was not found in resource group %s: check --nsg (`az network nsg list -g %s`).", s.o.NSG, s.o.ResourceGroup, s.o.ResourceGroup)
	case re.StatusCode == 403 || re.Code == "AuthorizationFailed":
		return firewall.Userf("The identity in use may not %s the rules of network security group %s: give it the Network Contributor role on the NSG (or Microsoft.Network/networkSecurityGroups/securityRules/%s).", action, s.o.NSG, action)
	case re.StatusCode == 401:
		return credentialError(err)
	case re.StatusCode == 400 || re.StatusCode == 409:
		return firewall.Userf("Azure refused the change to network security group %s (%s, HTTP %d): check the values given.", s.o.NSG, re.Code, re.StatusCode)
	}
	return err
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return strings.TrimSuffix(s, ".")
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
