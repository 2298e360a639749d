// Package aws opens the Tentacle's port in EC2 security groups, with the
// standard AWS credential chain (environment, shared config and profiles,
// SSO, web identity, containers, the instance profile) and, for --self, the
// instance's own groups as the instance metadata service (IMDSv2) reports
// them.
//
// It speaks to AWS with the standard library alone (the EC2 Query API,
// Signature Version 4): the AWS SDK would add some 30 MB to the binary
// and its start-up cost to every process of it, which mostly never touch
// AWS.
//
// Security group rules have no names; the rule name goes in each address
// range's description. A rule is identified as AWS does (protocol, ports,
// CIDR), so an identical rule made by hand counts as already open.
package aws

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/tentacle-go/tentacle/firewall"
)

// Options say which groups, where, and as whom.
type Options struct {
	// GroupIDs are the security groups (sg-…) to change.
	GroupIDs []string
	// Self uses the groups of this EC2 instance's primary network interface,
	// read from IMDSv2. Open adds the rule to the first of them (unless one
	// already has it); close removes it from all of them.
	Self bool
	// Region; empty: AWS_REGION, AWS_DEFAULT_REGION, the profile's, or
	// with Self the instance's.
	Region string
	// Profile is a shared-config profile; empty: AWS_PROFILE or default.
	Profile string
	// EC2Endpoint and IMDSEndpoint replace AWS's endpoints (tests run
	// against moto_server and a local metadata server).
	EC2Endpoint, IMDSEndpoint string
	// Now is the clock requests are signed with; nil: time.Now.
	Now func() time.Time
}

// SecurityGroups is the AWS backend.
type SecurityGroups struct {
	ec2    *ec2Client
	region string
	// targets get new rules; all are searched for existing ones and closed.
	targets, all []string
}

var (
	groupID = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^sg-[0-9a-f]{8,17}$`) })
	// regionName keeps a typo from becoming a strange host name.
	regionName = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[a-z0-9]+(-[a-z0-9]+)+$`) })
)

// New resolves credentials, region and groups; any problem there is a
// firewall.UserError and nothing has been changed.
func New(ctx context.Context, o Options) (*SecurityGroups, error) {
	for _, g := range o.GroupIDs {
		if !groupID().MatchString(g) {
			return nil, firewall.Userf("%q is not a security group ID: give one such as sg-0123456789abcdef0 (the ID, not the name).", g)
		}
	}
	if o.Self == (len(o.GroupIDs) > 0) {
		return nil, firewall.Userf("Say which security group to change: --security-group sg-… (repeatable) or --self (this EC2 instance's own groups), not both.")
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	shared, err := loadSharedConfig()
	if err != nil {
		return nil, firewall.Userf("Cannot load the AWS configuration: %v.", err)
	}
	c := &chain{cfg: shared, profile: o.Profile, explicit: o.Profile != "", imds: newIMDS(o), now: o.Now}
	if c.profile == "" {
		c.profile = os.Getenv("AWS_PROFILE")
	}
	if c.profile == "" {
		c.profile = "default"
	} else if _, ok := shared.profiles[c.profile]; !ok {
		return nil, profileNotFound(c.profile)
	}

	c.region = o.Region
	for _, env := range []string{"AWS_REGION", "AWS_DEFAULT_REGION"} {
		if c.region == "" {
			c.region = os.Getenv(env)
		}
	}
	if c.region == "" {
		c.region = shared.profiles[c.profile]["region"]
	}
	if c.region == "" && o.Self {
		// As the SDK, a metadata service that does not answer leaves the
		// region unset, and the sentence below says what to do.
		c.region, _ = c.imds.region(ctx)
	}
	if c.region == "" {
		return nil, firewall.Userf("No AWS region is set: pass --region (or set AWS_REGION), or use --self on an EC2 instance.")
	}
	if !regionName().MatchString(c.region) {
		return nil, firewall.Userf("%q is not an AWS region: give one such as eu-west-1.", c.region)
	}

	creds, err := c.resolve(ctx)
	if err != nil {
		var missing errProfileNotFound
		if errors.As(err, &missing) {
			return nil, profileNotFound(missing.profile)
		}
		if ue, ok := userErrorOf(err); ok {
			return nil, ue
		}
		return nil, firewall.Userf("No usable AWS credentials were found: set AWS_PROFILE or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, run `aws configure` (or `aws sso login`), or give the instance an instance profile (%s).", strings.TrimSuffix(err.Error(), "."))
	}
	endpoint := o.EC2Endpoint
	if endpoint == "" {
		endpoint = serviceEndpoint("EC2", "ec2", c.region)
	}
	sg := &SecurityGroups{region: c.region, ec2: &ec2Client{endpoint: endpoint, region: c.region, creds: creds, http: apiHTTP, now: o.Now}}
	if o.Self {
		groups, err := instanceGroups(ctx, c.imds)
		if err != nil {
			return nil, err
		}
		sg.targets, sg.all = groups[:1], groups
	} else {
		sg.targets, sg.all = o.GroupIDs, o.GroupIDs
	}
	return sg, nil
}

func profileNotFound(profile string) error {
	return firewall.Userf("The AWS profile %q was not found in the shared config or credentials file: check --profile (or AWS_PROFILE), or run `aws configure --profile %s`.", profile, profile)
}

// instanceGroups reads the security groups of the primary network interface
// from IMDSv2: the interface's MAC, then its groups. No EC2 permission is
// needed for this.
func instanceGroups(ctx context.Context, c *imdsClient) ([]string, error) {
	fail := func(err error) error {
		return firewall.Userf("Cannot read this instance's security groups from the EC2 instance metadata service (IMDSv2), so --self only works on an EC2 instance with it enabled; elsewhere pass --security-group (%s).", shortError(err))
	}
	mac, err := c.get(ctx, "meta-data/mac")
	if err != nil {
		return nil, fail(err)
	}
	ids, err := c.get(ctx, "meta-data/network/interfaces/macs/"+strings.TrimSpace(mac)+"/security-group-ids")
	if err != nil {
		return nil, fail(err)
	}
	groups := strings.Fields(ids)
	if len(groups) == 0 {
		return nil, fail(errors.New("the primary interface lists no security groups"))
	}
	return groups, nil
}

func (s *SecurityGroups) Name() string {
	return "AWS security group " + strings.Join(s.targets, ", ") + " (" + s.region + ")"
}

// Groups are the groups open adds to and close removes from.
func (s *SecurityGroups) Groups() (targets, all []string) { return s.targets, s.all }

func (s *SecurityGroups) describe(ctx context.Context) ([]securityGroup, error) {
	groups, err := s.ec2.describeSecurityGroups(ctx, s.all)
	if err != nil {
		return nil, s.explain(err, "ec2:DescribeSecurityGroups")
	}
	return groups, nil
}

// has reports whether group g admits TCP ports from source, exactly.
func has(g securityGroup, ports firewall.PortRange, source netip.Prefix) bool {
	for _, p := range g.IPPermissions {
		if !isTCP(p) || p.FromPort != int32(ports.First) || p.ToPort != int32(ports.Last) {
			continue
		}
		for _, r := range p.IPRanges {
			if r.CidrIP == source.String() {
				return true
			}
		}
		for _, r := range p.IPv6Ranges {
			if pf, err := netip.ParsePrefix(r.CidrIPv6); err == nil && pf == source {
				return true
			}
		}
	}
	return false
}

func isTCP(p ipPermission) bool {
	return p.IPProtocol == "tcp" || p.IPProtocol == "6"
}

// permission is rule's ports from sources, described with the rule name.
func permission(rule firewall.Rule, sources []netip.Prefix) ipPermission {
	p := ipPermission{IPProtocol: "tcp", FromPort: int32(rule.Ports.First), ToPort: int32(rule.Ports.Last)}
	for _, s := range sources {
		if s.Addr().Is4() {
			p.IPRanges = append(p.IPRanges, addressRange{CidrIP: s.String(), Description: rule.Name})
		} else {
			p.IPv6Ranges = append(p.IPv6Ranges, addressRange{CidrIPv6: s.String(), Description: rule.Name})
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
				if (g.GroupID == target || len(s.targets) < len(s.all)) && has(g, rule.Ports, src) {
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
	err := s.ec2.authorizeIngress(ctx, group, permission(rule, sources))
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
		id := g.GroupID
		plan.Steps = append(plan.Steps, firewall.NewStep(describeCall("RevokeSecurityGroupIngress", id, rule, present), func(ctx context.Context) error {
			return s.revoke(ctx, id, rule, present)
		}))
	}
	return plan, nil
}

// revoke removes the sources; one that is already gone
// (InvalidPermission.NotFound) is what was wanted.
func (s *SecurityGroups) revoke(ctx context.Context, group string, rule firewall.Rule, sources []netip.Prefix) error {
	err := s.ec2.revokeIngress(ctx, group, permission(rule, sources))
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
		location := g.GroupID
		if name := g.GroupName; name != "" {
			location += " (" + name + ")"
		}
		for _, p := range g.IPPermissions {
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
			for _, r := range p.IPRanges {
				add(r.CidrIP, r.Description)
			}
			for _, r := range p.IPv6Ranges {
				add(r.CidrIPv6, r.Description)
			}
		}
	}
	return firewall.MergeListed(rules), nil
}

// apiCode is the AWS error code in err, if AWS answered with one.
func apiCode(err error) string {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae.Code
	}
	return ""
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
