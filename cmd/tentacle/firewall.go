package main

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"

	"github.com/tentacle-go/tentacle/agent/config"
	"github.com/tentacle-go/tentacle/firewall"
	fwaws "github.com/tentacle-go/tentacle/firewall/aws"
	fwazure "github.com/tentacle-go/tentacle/firewall/azure"
	"github.com/tentacle-go/tentacle/firewall/host"
)

// FirewallCmd opens the Tentacle's port in the machine's firewall, or in
// the cloud's (firewall/...).
type FirewallCmd struct {
	Open  FirewallOpenCmd  `cmd:"" name:"open" help:"Allow inbound TCP to the Tentacle's port in this machine's firewall"`
	Close FirewallCloseCmd `cmd:"" name:"close" help:"Remove a rule that firewall open added to this machine's firewall"`
	List  FirewallListCmd  `cmd:"" name:"list" help:"List the rules tentacle manages in this machine's firewall"`
	AWS   FirewallAWSCmd   `cmd:"" name:"aws" help:"Open, close or list the port in EC2 security groups"`
	Azure FirewallAzureCmd `cmd:"" name:"azure" help:"Open, close or list the port in an Azure network security group"`
}

// firewallRuleFlags describe the rule, for open and close everywhere.
type firewallRuleFlags struct {
	InstanceFlags
	Port   string   `name:"port" help:"TCP port, or range such as 10933-10940. Default: the instance's listening port (10933 when there is no instance)" placeholder:"PORT"`
	Source []string `name:"source" sep:"none" help:"Allow only this network (CIDR) or address; repeatable. Default: anywhere. Restrict it to your Octopus Server's address" placeholder:"CIDR"`
	Name   string   `name:"name" default:"Octopus Deploy Tentacle" help:"Rule name (a comment or description where the firewall has no names)" placeholder:"NAME"`
	DryRun bool     `name:"dry-run" help:"Print exactly what would be done, and do nothing"`
}

// rule checks every value before anything is read or changed.
func (f *firewallRuleFlags) rule(e *Env) (firewall.Rule, error) {
	if err := firewall.ValidateName(f.Name); err != nil {
		return firewall.Rule{}, err
	}
	sources, err := firewall.ParseSources(f.Source)
	if err != nil {
		return firewall.Rule{}, err
	}
	ports, err := f.ports(e)
	if err != nil {
		return firewall.Rule{}, err
	}
	return firewall.NewRule(f.Name, ports, sources), nil
}

// ports is --port, else the selected instance's listening port. With no
// instance on the machine at all (an operator's machine opening a cloud
// firewall) it is the default port, and says so.
func (f *firewallRuleFlags) ports(e *Env) (firewall.PortRange, error) {
	if f.Port != "" {
		return firewall.ParsePortRange(f.Port)
	}
	if f.Instance == "" && f.Config == "" {
		_, statErr := os.Stat(filepath.Join(e.Cwd, config.RootlessConfigFile))
		if list, err := e.Index().List(); err == nil && len(list) == 0 && statErr != nil {
			e.Infof("No Tentacle instance on this machine: using the default port %d (give --port to choose).", config.DefaultPort)
			return firewall.SinglePort(config.DefaultPort), nil
		}
	}
	sel, s, err := f.load(e)
	if err != nil {
		return firewall.PortRange{}, err
	}
	noListen, err := s.NoListen()
	if err != nil {
		return firewall.PortRange{}, err
	}
	name := sel.Name
	if name == "" {
		name = sel.ConfigPath
	}
	if noListen {
		return firewall.PortRange{}, config.Userf("Instance %s does not listen (it polls the Octopus Server), so it needs no inbound port; on the Octopus Server's side, give --port %d.", name, config.DefaultPollingPort)
	}
	port, err := s.Port()
	if err != nil {
		return firewall.PortRange{}, err
	}
	if port == 0 {
		return firewall.PortRange{}, config.Userf("Instance %s listens on any free port (port 0), which changes at every start, so there is no port to open. Fix one with `tentacle configure --port 10933`, or give --port.", name)
	}
	e.Infof("Using port %d, the listening port of instance %s.", port, name)
	return firewall.SinglePort(uint16(port)), nil
}

// hostBackendFlag is --backend.
type hostBackendFlag struct {
	Backend string `name:"backend" default:"auto" help:"auto, nftables, iptables, ufw, firewalld or windows. auto: Windows Firewall on Windows; else firewalld if running, ufw if active, nftables, iptables" placeholder:"NAME"`
}

// firewall is the chosen host backend; auto says what it chose and why.
func (b hostBackendFlag) firewall(ctx context.Context, e *Env) (firewall.Firewall, error) {
	if b.Backend == "" || strings.EqualFold(b.Backend, "auto") {
		fw, why, err := host.Detect(ctx, host.ExecRunner{})
		if err != nil {
			return nil, err
		}
		e.Infof("Using %s (%s; choose another with --backend).", fw.Name(), why)
		return fw, nil
	}
	return host.New(b.Backend, host.ExecRunner{})
}

// FirewallOpenCmd is `firewall open`.
type FirewallOpenCmd struct {
	firewallRuleFlags
	hostBackendFlag
}

func (c *FirewallOpenCmd) Run(e *Env) error {
	return runHost(e, firewall.Open, &c.firewallRuleFlags, c.hostBackendFlag)
}

// FirewallCloseCmd is `firewall close`.
type FirewallCloseCmd struct {
	firewallRuleFlags
	hostBackendFlag
}

func (c *FirewallCloseCmd) Run(e *Env) error {
	return runHost(e, firewall.Close, &c.firewallRuleFlags, c.hostBackendFlag)
}

func runHost(e *Env, action firewall.Action, f *firewallRuleFlags, b hostBackendFlag) error {
	rule, err := f.rule(e)
	if err != nil {
		return firewallError(err)
	}
	ctx := context.Background()
	fw, err := b.firewall(ctx, e)
	if err != nil {
		return firewallError(err)
	}
	return firewallError(openOrClose(ctx, e, fw, action, rule, f.DryRun))
}

// openOrClose plans, prints and (unless a dry run) applies.
func openOrClose(ctx context.Context, e *Env, fw firewall.Firewall, action firewall.Action, rule firewall.Rule, dryRun bool) error {
	var plan *firewall.Plan
	var err error
	if action == firewall.Open {
		plan, err = fw.PlanOpen(ctx, rule)
	} else {
		plan, err = fw.PlanClose(ctx, rule)
	}
	if err != nil {
		return err
	}
	for _, n := range plan.Notes {
		e.Warnf("Note: %s", n)
	}
	if plan.Empty() {
		if action == firewall.Open {
			e.Infof("%s is already open in %s: nothing to do.", rule, fw.Name())
		} else {
			e.Infof("%s is not open in %s: nothing to do.", rule, fw.Name())
		}
		return nil
	}
	verb := "Opening"
	if action == firewall.Close {
		verb = "Closing"
	}
	if dryRun {
		e.Infof("Dry run: %s %s in %s would take:", strings.ToLower(verb), rule, fw.Name())
		for _, s := range plan.Steps {
			e.Infof("  %s", s.Description)
		}
		e.Infof("Nothing was changed.")
		return nil
	}
	e.Infof("%s %s in %s:", verb, rule, fw.Name())
	if err := firewall.ApplyAndVerify(ctx, fw, plan, func(s firewall.Step) { e.Infof("  %s", s.Description) }); err != nil {
		return err
	}
	if action == firewall.Open {
		e.Infof("Done: TCP %s open.", rule.Ports.Phrase())
	} else {
		e.Infof("Done: the rule is removed.")
	}
	return nil
}

// FirewallListCmd is `firewall list`.
type FirewallListCmd struct {
	hostBackendFlag
	firewallListFlags
}

// firewallListFlags filter and format a listing.
type firewallListFlags struct {
	Port string `name:"port" help:"Only rules that cover this port" placeholder:"PORT"`
	Name string `name:"name" help:"Only rules with this name" placeholder:"NAME"`
	formatFlag
}

func (c *FirewallListCmd) Run(e *Env) error {
	ctx := context.Background()
	asJSON, err := c.json()
	if err != nil {
		return err
	}
	var fw firewall.Firewall
	if asJSON {
		// JSON output is the listing alone; the choice is not announced.
		fw, err = c.quietFirewall(ctx)
	} else {
		fw, err = c.firewall(ctx, e)
	}
	if err != nil {
		return firewallError(err)
	}
	var rules []firewall.Rule
	if w, ok := fw.(*host.Windows); ok && c.Name != "" {
		rules, err = w.ListNamed(ctx, c.Name)
	} else {
		rules, err = fw.List(ctx)
	}
	if err != nil {
		return firewallError(err)
	}
	return c.print(e, fw, rules, asJSON)
}

func (b hostBackendFlag) quietFirewall(ctx context.Context) (firewall.Firewall, error) {
	if b.Backend == "" || strings.EqualFold(b.Backend, "auto") {
		fw, _, err := host.Detect(ctx, host.ExecRunner{})
		return fw, err
	}
	return host.New(b.Backend, host.ExecRunner{})
}

// print filters and prints rules as text lines or a JSON array.
func (f firewallListFlags) print(e *Env, fw firewall.Firewall, rules []firewall.Rule, asJSON bool) error {
	var port firewall.PortRange
	if f.Port != "" {
		var err error
		if port, err = firewall.ParsePortRange(f.Port); err != nil {
			return firewallError(err)
		}
	}
	shown := []firewall.Rule{}
	for _, r := range rules {
		if f.Port != "" && !(r.Ports.First <= port.First && port.Last <= r.Ports.Last) {
			continue
		}
		if f.Name != "" && r.Name != f.Name {
			continue
		}
		shown = append(shown, r)
	}
	if asJSON {
		out, err := json.MarshalIndent(shown, "", "  ")
		if err != nil {
			return err
		}
		e.Stdout.Write(append(out, '\n'))
		return nil
	}
	if len(shown) == 0 {
		e.Infof("No matching rules in %s.", fw.Name())
		return nil
	}
	e.Infof("Rules in %s:", fw.Name())
	for _, r := range shown {
		name := r.Name
		if name == "" {
			name = "(no name)"
		}
		e.Infof("  %s  %s %s from %s  [%s]", name, r.Protocol, r.Ports.Phrase(), r.SourcesText(), r.Location)
	}
	return nil
}

// FirewallAWSCmd groups the AWS commands.
type FirewallAWSCmd struct {
	Open  FirewallAWSOpenCmd  `cmd:"" name:"open" help:"Allow inbound TCP to the port in a security group"`
	Close FirewallAWSCloseCmd `cmd:"" name:"close" help:"Remove the rule from the security groups"`
	List  FirewallAWSListCmd  `cmd:"" name:"list" help:"List the inbound TCP rules of the security groups"`
}

// awsFlags say which groups and where; credentials come from the SDK's
// standard chain (environment, profiles, SSO, instance profile).
type awsFlags struct {
	SecurityGroup []string `name:"security-group" sep:"none" help:"Security group ID (sg-...); repeatable" placeholder:"SG"`
	Self          bool     `name:"self" help:"This EC2 instance's own security groups, from the instance metadata service (IMDSv2)"`
	Region        string   `name:"region" help:"AWS region. Default: AWS_REGION, the profile's, or with --self the instance's" placeholder:"REGION"`
	Profile       string   `name:"profile" help:"Shared config profile. Default: AWS_PROFILE, or default" placeholder:"PROFILE"`
}

// backend builds the client; the SDK's own variables (AWS_ENDPOINT_URL_EC2,
// AWS_EC2_METADATA_SERVICE_ENDPOINT) redirect it, for tests and for
// private endpoints.
func (a awsFlags) backend(ctx context.Context) (*fwaws.SecurityGroups, error) {
	return fwaws.New(ctx, fwaws.Options{GroupIDs: a.SecurityGroup, Self: a.Self, Region: a.Region, Profile: a.Profile})
}

// FirewallAWSOpenCmd is `firewall aws open`.
type FirewallAWSOpenCmd struct {
	firewallRuleFlags
	awsFlags
}

func (c *FirewallAWSOpenCmd) Run(e *Env) error {
	return runCloud(e, firewall.Open, &c.firewallRuleFlags, func(ctx context.Context) (firewall.Firewall, error) { return c.backend(ctx) })
}

// FirewallAWSCloseCmd is `firewall aws close`.
type FirewallAWSCloseCmd struct {
	firewallRuleFlags
	awsFlags
}

func (c *FirewallAWSCloseCmd) Run(e *Env) error {
	return runCloud(e, firewall.Close, &c.firewallRuleFlags, func(ctx context.Context) (firewall.Firewall, error) { return c.backend(ctx) })
}

// FirewallAWSListCmd is `firewall aws list`.
type FirewallAWSListCmd struct {
	awsFlags
	firewallListFlags
}

func (c *FirewallAWSListCmd) Run(e *Env) error {
	return runCloudList(e, c.firewallListFlags, func(ctx context.Context) (firewall.Firewall, error) { return c.backend(ctx) })
}

// FirewallAzureCmd groups the Azure commands.
type FirewallAzureCmd struct {
	Open  FirewallAzureOpenCmd  `cmd:"" name:"open" help:"Add an inbound security rule for the port to a network security group"`
	Close FirewallAzureCloseCmd `cmd:"" name:"close" help:"Remove the inbound security rule from the network security group"`
	List  FirewallAzureListCmd  `cmd:"" name:"list" help:"List the inbound TCP allow rules of the network security group"`
}

// azureFlags say which NSG; credentials come from azidentity's default
// chain (environment, workload identity, managed identity, Azure CLI).
type azureFlags struct {
	Subscription  string `name:"subscription" help:"Subscription ID" placeholder:"ID"`
	ResourceGroup string `name:"resource-group" help:"Resource group of the network security group" placeholder:"NAME"`
	NSG           string `name:"nsg" help:"Network security group name" placeholder:"NAME"`
}

func (a azureFlags) backend(ctx context.Context, priority string) (*fwazure.SecurityGroup, error) {
	p, err := fwazure.ParsePriority(priority)
	if err != nil {
		return nil, err
	}
	return fwazure.New(ctx, fwazure.Options{Subscription: a.Subscription, ResourceGroup: a.ResourceGroup, NSG: a.NSG, Priority: p})
}

// FirewallAzureOpenCmd is `firewall azure open`.
type FirewallAzureOpenCmd struct {
	firewallRuleFlags
	azureFlags
	Priority string `name:"priority" help:"Priority of a new rule, 100 to 4096. Default: the first free one" placeholder:"N"`
}

func (c *FirewallAzureOpenCmd) Run(e *Env) error {
	return runCloud(e, firewall.Open, &c.firewallRuleFlags, func(ctx context.Context) (firewall.Firewall, error) { return c.backend(ctx, c.Priority) })
}

// FirewallAzureCloseCmd is `firewall azure close`.
type FirewallAzureCloseCmd struct {
	firewallRuleFlags
	azureFlags
}

func (c *FirewallAzureCloseCmd) Run(e *Env) error {
	return runCloud(e, firewall.Close, &c.firewallRuleFlags, func(ctx context.Context) (firewall.Firewall, error) { return c.backend(ctx, "") })
}

// FirewallAzureListCmd is `firewall azure list`.
type FirewallAzureListCmd struct {
	azureFlags
	firewallListFlags
}

func (c *FirewallAzureListCmd) Run(e *Env) error {
	return runCloudList(e, c.firewallListFlags, func(ctx context.Context) (firewall.Firewall, error) { return c.backend(ctx, "") })
}

func runCloud(e *Env, action firewall.Action, f *firewallRuleFlags, backend func(context.Context) (firewall.Firewall, error)) error {
	rule, err := f.rule(e)
	if err != nil {
		return firewallError(err)
	}
	ctx := context.Background()
	fw, err := backend(ctx)
	if err != nil {
		return firewallError(err)
	}
	return firewallError(openOrClose(ctx, e, fw, action, rule, f.DryRun))
}

func runCloudList(e *Env, f firewallListFlags, backend func(context.Context) (firewall.Firewall, error)) error {
	asJSON, err := f.json()
	if err != nil {
		return err
	}
	ctx := context.Background()
	fw, err := backend(ctx)
	if err != nil {
		return firewallError(err)
	}
	rules, err := fw.List(ctx)
	if err != nil {
		return firewallError(err)
	}
	return f.print(e, fw, rules, asJSON)
}

// firewallError maps the firewall packages' user errors to exit code 1.
func firewallError(err error) error {
	var ue *firewall.UserError
	if errors.As(err, &ue) {
		return config.Userf("%s", ue.Msg)
	}
	return err
}
