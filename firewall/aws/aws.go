// Package aws opens the Tentacle's port in EC2 security groups through the
// AWS SDK for Go v2: configuration, region and credentials from
// config.LoadDefaultConfig (every source and setting the AWS CLI honours:
// the environment, shared config and credentials files with profiles,
// assume-role and MFA-less role chains, web identity, SSO, credential_process,
// containers, the instance profile; ca_bundle, endpoint_url and
// per-service endpoints, FIPS and dual-stack), signing, retries and clock-skew
// correction by the SDK's signer and retryer around the three EC2 Query calls
// (query.go), and, for --self, the instance's own groups from the instance
// metadata service (feature/ec2/imds).
//
// Nothing here runs before a cloud command does: no package-level state, and
// the clients are built in New.
//
// Security group rules have no names; the rule name goes in each address
// range's description. A rule is identified as AWS does (protocol, ports,
// CIDR), so an identical rule made by hand counts as already open.
package aws

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"
	"github.com/aws/smithy-go"
	"github.com/mattn/go-isatty"

	"github.com/tentacle-go/tentacle/firewall"
)

// Options say which groups, where, and as whom.
type Options struct {
	// GroupIDs are the security groups (sg-…) to change.
	GroupIDs []string
	// Self uses the groups of this EC2 instance's primary network interface,
	// read from the instance metadata service. Open adds the rule to the
	// first of them (unless one already has it); close removes it from all
	// of them.
	Self bool
	// Region; empty: the SDK's (AWS_REGION, AWS_DEFAULT_REGION, the
	// profile's), or with Self the instance's.
	Region string
	// Profile is a shared-config profile; empty: AWS_PROFILE or default.
	Profile string
	// EC2Endpoint and IMDSEndpoint replace AWS's endpoints (tests run
	// against moto_server and a local metadata server); users have the
	// SDK's own settings (AWS_ENDPOINT_URL_EC2, endpoint_url,
	// AWS_EC2_METADATA_SERVICE_ENDPOINT).
	EC2Endpoint, IMDSEndpoint string
}

// SecurityGroups is the AWS backend.
type SecurityGroups struct {
	ec2    *ec2Query
	region string
	// targets get new rules; all are searched for existing ones and closed.
	targets, all []string
}

// Compiled per call, not at package level: processes that never run a cloud
// command pay nothing for this package.
func groupIDPattern() *regexp.Regexp { return regexp.MustCompile(`^sg-[0-9a-f]{8,17}$`) }

// regionPattern keeps a typo from becoming a strange host name.
func regionPattern() *regexp.Regexp { return regexp.MustCompile(`^[a-z0-9]+(-[a-z0-9]+)+$`) }

// New loads the configuration, checks that credentials can be had and, with
// Self, reads the instance's groups; any problem there is a
// firewall.UserError and nothing has been changed.
func New(ctx context.Context, o Options) (*SecurityGroups, error) {
	for _, g := range o.GroupIDs {
		if !groupIDPattern().MatchString(g) {
			return nil, firewall.Userf("%q is not a security group ID: give one such as sg-0123456789abcdef0 (the ID, not the name).", g)
		}
	}
	if o.Self == (len(o.GroupIDs) > 0) {
		return nil, firewall.Userf("Say which security group to change: --security-group sg-… (repeatable) or --self (this EC2 instance's own groups), not both.")
	}
	load := []func(*config.LoadOptions) error{
		config.WithAssumeRoleCredentialOptions(func(ar *stscreds.AssumeRoleOptions) { ar.TokenProvider = mfaCode }),
	}
	if o.Profile != "" {
		load = append(load, config.WithSharedConfigProfile(o.Profile))
	}
	if o.Region != "" {
		load = append(load, config.WithRegion(o.Region))
	}
	if o.IMDSEndpoint != "" {
		load = append(load, config.WithEC2IMDSEndpoint(o.IMDSEndpoint))
	}
	cfg, err := config.LoadDefaultConfig(ctx, load...)
	if err != nil {
		var missing config.SharedConfigProfileNotExistError
		if errors.As(err, &missing) {
			return nil, profileNotFound(missing.Profile)
		}
		return nil, firewall.Userf("Cannot load the AWS configuration: %s: fix the shared config or credentials file, or the AWS_* variable it names.", shortError(err))
	}
	metadata := imds.NewFromConfig(cfg)
	if cfg.Region == "" && o.Self {
		// As the SDK, a metadata service that does not answer leaves the
		// region unset, and the sentence below says what to do.
		if r, err := metadata.GetRegion(ctx, &imds.GetRegionInput{}); err == nil {
			cfg.Region = r.Region
		}
	}
	if cfg.Region == "" {
		return nil, firewall.Userf("No AWS region is set: pass --region (or set AWS_REGION), or use --self on an EC2 instance.")
	}
	if !regionPattern().MatchString(cfg.Region) {
		return nil, firewall.Userf("%q is not an AWS region: give one such as eu-west-1.", cfg.Region)
	}
	// Credentials now, so that missing ones are one clear sentence rather
	// than the first call's error. The SDK caches them and fetches new ones
	// when they expire.
	if _, err := cfg.Credentials.Retrieve(ctx); err != nil {
		return nil, firewall.Userf("No usable AWS credentials were found: set AWS_PROFILE or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, run `aws configure` (or `aws sso login`), or give the instance an instance profile (%s).", shortError(err))
	}
	client, err := newEC2Query(ctx, cfg, o.EC2Endpoint)
	if err != nil {
		return nil, firewall.Userf("Cannot tell where to send EC2 calls: %s: fix the endpoint settings (AWS_ENDPOINT_URL_EC2, endpoint_url).", shortError(err))
	}
	sg := &SecurityGroups{region: cfg.Region, ec2: client}
	if o.Self {
		groups, err := instanceGroups(ctx, metadata)
		if err != nil {
			return nil, err
		}
		sg.targets, sg.all = groups[:1], groups
	} else {
		sg.targets, sg.all = o.GroupIDs, o.GroupIDs
	}
	return sg, nil
}

// mfaCode asks for the code of a role profile's mfa_serial on the terminal,
// as the AWS CLI does; on stderr, so that stdout stays the command's output.
func mfaCode() (string, error) {
	if !isatty.IsTerminal(os.Stdin.Fd()) && !isatty.IsCygwinTerminal(os.Stdin.Fd()) {
		return "", errors.New("the profile's role needs an MFA code (mfa_serial) and there is no terminal to ask for it on: run the command in a terminal, or use a profile without mfa_serial")
	}
	fmt.Fprint(os.Stderr, "MFA code for the AWS role: ")
	var code string
	if _, err := fmt.Fscanln(os.Stdin, &code); err != nil {
		return "", fmt.Errorf("reading the MFA code: %w", err)
	}
	return code, nil
}

func profileNotFound(profile string) error {
	return firewall.Userf("The AWS profile %q was not found in the shared config or credentials file: check --profile (or AWS_PROFILE), or run `aws configure --profile %s`.", profile, profile)
}

// instanceGroups reads the security groups of the primary network interface
// from the metadata service: the interface's MAC, then its groups. No EC2
// permission is needed for this.
func instanceGroups(ctx context.Context, c *imds.Client) ([]string, error) {
	fail := func(err error) error {
		return firewall.Userf("Cannot read this instance's security groups from the EC2 instance metadata service, so --self only works on an EC2 instance with it enabled; elsewhere pass --security-group (%s).", shortError(err))
	}
	mac, err := metadataText(ctx, c, "mac")
	if err != nil {
		return nil, fail(err)
	}
	ids, err := metadataText(ctx, c, "network/interfaces/macs/"+strings.TrimSpace(mac)+"/security-group-ids")
	if err != nil {
		return nil, fail(err)
	}
	groups := strings.Fields(ids)
	if len(groups) == 0 {
		return nil, fail(errors.New("the primary interface lists no security groups"))
	}
	return groups, nil
}

// maxMetadata bounds one metadata answer (a list of group IDs is tiny).
const maxMetadata = 64 << 10

// ruleSettle is how long DescribeSecurityGroups may still show the rules as
// they were before a change: the EC2 API is eventually consistent, so the
// read-back after an open or close waits this long before it calls the
// change missing.
const ruleSettle = 30 * time.Second

func metadataText(ctx context.Context, c *imds.Client, path string) (string, error) {
	out, err := c.GetMetadata(ctx, &imds.GetMetadataInput{Path: path})
	if err != nil {
		return "", err
	}
	defer out.Content.Close()
	b, err := io.ReadAll(io.LimitReader(out.Content, maxMetadata))
	return string(b), err
}

func (s *SecurityGroups) Name() string {
	return "AWS security group " + strings.Join(s.targets, ", ") + " (" + s.region + ")"
}

// Groups are the groups open adds to and close removes from.
func (s *SecurityGroups) Groups() (targets, all []string) { return s.targets, s.all }

// securityGroup is what DescribeSecurityGroups says of a group; only the
// inbound rules are read.
type securityGroup struct {
	ID          string         `xml:"groupId"`
	Name        string         `xml:"groupName"`
	Permissions []ipPermission `xml:"ipPermissions>item"`
}

// ipPermission is one inbound rule: a protocol, a port range and where from.
type ipPermission struct {
	Protocol string      `xml:"ipProtocol"`
	FromPort int32       `xml:"fromPort"`
	ToPort   int32       `xml:"toPort"`
	IPv4     []ipRange   `xml:"ipRanges>item"`
	IPv6     []ipv6Range `xml:"ipv6Ranges>item"`
}

type ipRange struct {
	CIDR        string `xml:"cidrIp"`
	Description string `xml:"description"`
}

type ipv6Range struct {
	CIDR        string `xml:"cidrIpv6"`
	Description string `xml:"description"`
}

// describe reads the groups, page after page.
func (s *SecurityGroups) describe(ctx context.Context) ([]securityGroup, error) {
	var groups []securityGroup
	params := url.Values{}
	for i, g := range s.all {
		params.Set("GroupId."+strconv.Itoa(i+1), g)
	}
	for {
		var page struct {
			Groups    []securityGroup `xml:"securityGroupInfo>item"`
			NextToken string          `xml:"nextToken"`
		}
		if err := s.ec2.call(ctx, "DescribeSecurityGroups", params, &page); err != nil {
			return nil, s.explain(err, "ec2:DescribeSecurityGroups")
		}
		groups = append(groups, page.Groups...)
		// A token that repeats would loop for ever.
		if page.NextToken == "" || page.NextToken == params.Get("NextToken") {
			return groups, nil
		}
		params.Set("NextToken", page.NextToken)
	}
}

// has reports whether group g admits TCP ports from source, exactly.
func has(g securityGroup, ports firewall.PortRange, source netip.Prefix) bool {
	for _, p := range g.Permissions {
		if !isTCP(p) || p.FromPort != int32(ports.First) || p.ToPort != int32(ports.Last) {
			continue
		}
		for _, r := range p.IPv4 {
			if r.CIDR == source.String() {
				return true
			}
		}
		for _, r := range p.IPv6 {
			if pf, err := netip.ParsePrefix(r.CIDR); err == nil && pf == source {
				return true
			}
		}
	}
	return false
}

func isTCP(p ipPermission) bool {
	return p.Protocol == "tcp" || p.Protocol == "6"
}

// permission is rule's ports from sources, described with the rule name, as
// the parameters of an Authorize or Revoke call on group.
func permission(group string, rule firewall.Rule, sources []netip.Prefix) url.Values {
	p := url.Values{
		"GroupId":                    {group},
		"IpPermissions.1.IpProtocol": {"tcp"},
		"IpPermissions.1.FromPort":   {strconv.Itoa(int(rule.Ports.First))},
		"IpPermissions.1.ToPort":     {strconv.Itoa(int(rule.Ports.Last))},
	}
	v4, v6 := 0, 0
	for _, s := range sources {
		if s.Addr().Is4() {
			v4++
			n := "IpPermissions.1.IpRanges." + strconv.Itoa(v4)
			p.Set(n+".CidrIp", s.String())
			p.Set(n+".Description", rule.Name)
		} else {
			v6++
			n := "IpPermissions.1.Ipv6Ranges." + strconv.Itoa(v6)
			p.Set(n+".CidrIpv6", s.String())
			p.Set(n+".Description", rule.Name)
		}
	}
	return p
}

func describeCall(call, group string, rule firewall.Rule, sources []netip.Prefix) string {
	parts := make([]string, len(sources))
	for i, s := range sources {
		parts[i] = s.String()
	}
	return fmt.Sprintf("%s on %s: tcp %s from %s (description %q)", call, group, rule.Ports, strings.Join(parts, ", "), rule.Name)
}

func (s *SecurityGroups) PlanOpen(ctx context.Context, rule firewall.Rule) (*firewall.Plan, error) {
	if err := rule.Validate(); err != nil {
		return nil, err
	}
	groups, err := s.describe(ctx)
	if err != nil {
		return nil, err
	}
	plan := &firewall.Plan{Action: firewall.Open, Rule: rule, Firewall: s.Name(), Settle: ruleSettle}
	for _, target := range s.targets {
		var missing []netip.Prefix
		for _, src := range rule.Sources {
			open := false
			for _, g := range groups {
				// With --self, a rule in any of the instance's groups
				// already lets the traffic in.
				if (g.ID == target || len(s.targets) < len(s.all)) && has(g, rule.Ports, src) {
					open = true
				}
			}
			if !open {
				missing = append(missing, src)
			}
		}
		if len(missing) == 0 {
			continue
		}
		plan.Steps = append(plan.Steps, firewall.NewStep(describeCall("AuthorizeSecurityGroupIngress", target, rule, missing), func(ctx context.Context) error {
			return s.authorize(ctx, target, rule, missing)
		}))
	}
	return plan, nil
}

// authorize adds the sources; one that another run added meanwhile
// (InvalidPermission.Duplicate) is already open, which is what was wanted.
func (s *SecurityGroups) authorize(ctx context.Context, group string, rule firewall.Rule, sources []netip.Prefix) error {
	err := s.ec2.call(ctx, "AuthorizeSecurityGroupIngress", permission(group, rule, sources), nil)
	if apiCode(err) == "InvalidPermission.Duplicate" {
		if len(sources) == 1 {
			return nil
		}
		// The call is all or nothing: add the others one by one.
		for _, src := range sources {
			if err := s.authorize(ctx, group, rule, []netip.Prefix{src}); err != nil {
				return err
			}
		}
		return nil
	}
	if err != nil {
		return s.explain(err, "ec2:AuthorizeSecurityGroupIngress")
	}
	return nil
}

func (s *SecurityGroups) PlanClose(ctx context.Context, rule firewall.Rule) (*firewall.Plan, error) {
	if err := rule.Validate(); err != nil {
		return nil, err
	}
	groups, err := s.describe(ctx)
	if err != nil {
		return nil, err
	}
	plan := &firewall.Plan{Action: firewall.Close, Rule: rule, Firewall: s.Name(), Settle: ruleSettle}
	for _, g := range groups {
		var present []netip.Prefix
		for _, src := range rule.Sources {
			if has(g, rule.Ports, src) {
				present = append(present, src)
			}
		}
		if len(present) == 0 {
			continue
		}
		id := g.ID
		plan.Steps = append(plan.Steps, firewall.NewStep(describeCall("RevokeSecurityGroupIngress", id, rule, present), func(ctx context.Context) error {
			return s.revoke(ctx, id, rule, present)
		}))
	}
	return plan, nil
}

// revoke removes the sources; one that is already gone
// (InvalidPermission.NotFound) is what was wanted.
func (s *SecurityGroups) revoke(ctx context.Context, group string, rule firewall.Rule, sources []netip.Prefix) error {
	err := s.ec2.call(ctx, "RevokeSecurityGroupIngress", permission(group, rule, sources), nil)
	if apiCode(err) == "InvalidPermission.NotFound" {
		if len(sources) == 1 {
			return nil
		}
		for _, src := range sources {
			if err := s.revoke(ctx, group, rule, []netip.Prefix{src}); err != nil {
				return err
			}
		}
		return nil
	}
	if err != nil {
		return s.explain(err, "ec2:RevokeSecurityGroupIngress")
	}
	return nil
}

// List lists every inbound TCP rule of the groups, one per description and
// port range, named by its description.
func (s *SecurityGroups) List(ctx context.Context) ([]firewall.Rule, error) {
	groups, err := s.describe(ctx)
	if err != nil {
		return nil, err
	}
	var rules []firewall.Rule
	for _, g := range groups {
		location := g.ID
		if name := g.Name; name != "" {
			location += " (" + name + ")"
		}
		for _, p := range g.Permissions {
			if !isTCP(p) {
				continue
			}
			ports := firewall.PortRange{First: uint16(p.FromPort), Last: uint16(p.ToPort)}
			add := func(cidr, description string) {
				pf, err := netip.ParsePrefix(cidr)
				if err != nil {
					return
				}
				r := firewall.NewRule(description, ports, []netip.Prefix{pf})
				r.Name, r.Description, r.Location = description, "", location
				rules = append(rules, r)
			}
			for _, r := range p.IPv4 {
				add(r.CIDR, r.Description)
			}
			for _, r := range p.IPv6 {
				add(r.CIDR, r.Description)
			}
		}
	}
	return firewall.MergeListed(rules), nil
}

// apiCode is the AWS error code in err, if AWS answered with one.
func apiCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

// shortError is the part of err a user can act on: AWS's own message if
// AWS answered, else the error without the SDK's operation prefix.
func shortError(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) && ae.ErrorMessage() != "" {
		return strings.TrimSuffix(ae.ErrorMessage(), ".")
	}
	return strings.TrimSuffix(err.Error(), ".")
}

// explain turns the AWS errors a user can fix into one sentence each.
func (s *SecurityGroups) explain(err error, action string) error {
	code := apiCode(err)
	switch {
	case code == "InvalidGroup.NotFound" || code == "InvalidGroupId.NotFound" || code == "InvalidGroupId.Malformed":
		return firewall.Userf("Security group %s was not found in region %s: check --security-group and --region.", strings.Join(s.all, ", "), s.region)
	case code == "UnauthorizedOperation" || code == "AccessDenied" || code == "AccessDeniedException":
		return firewall.Userf("The AWS identity in use is not allowed %s on %s: grant it ec2:DescribeSecurityGroups, ec2:AuthorizeSecurityGroupIngress and ec2:RevokeSecurityGroupIngress.", action, strings.Join(s.all, ", "))
	case slices.Contains([]string{"AuthFailure", "InvalidClientTokenId", "SignatureDoesNotMatch", "ExpiredToken", "RequestExpired", "UnrecognizedClientException"}, code):
		return firewall.Userf("AWS rejected the credentials (%s): check the profile or access keys, or refresh the session (`aws sso login`).", code)
	case code == "RulesPerSecurityGroupLimitExceeded":
		return firewall.Userf("Security group %s is full (it has as many rules as AWS allows): remove unused rules or use another group.", strings.Join(s.targets, ", "))
	case strings.HasPrefix(code, "InvalidParameter") || strings.HasPrefix(code, "InvalidPermission"):
		return firewall.Userf("AWS refused the rule (%s): %s.", code, shortError(err))
	}
	return err
}
