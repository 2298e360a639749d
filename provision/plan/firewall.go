package plan

import (
	"context"
	"errors"
	"strings"

	"github.com/tentacle-go/tentacle/agent/config"
	"github.com/tentacle-go/tentacle/firewall"
	fwaws "github.com/tentacle-go/tentacle/firewall/aws"
	fwazure "github.com/tentacle-go/tentacle/firewall/azure"
	"github.com/tentacle-go/tentacle/firewall/host"
)

// DefaultRuleName names the rules provision adds, as `firewall open` does.
const DefaultRuleName = "Octopus Deploy Tentacle"

// listenPort is the port a listening instance declares.
func listenPort(in *Instance) int {
	if in.Listen != nil && in.Listen.Port != 0 {
		return in.Listen.Port
	}
	return config.DefaultPort
}

// rule is the firewall rule for the instance's port.
func (rl Rule) rule(in *Instance) (firewall.Rule, error) {
	name := rl.Name
	if name == "" {
		name = DefaultRuleName
	}
	if err := firewall.ValidateName(name); err != nil {
		return firewall.Rule{}, firewallError(err)
	}
	sources, err := firewall.ParseSources(rl.Sources)
	if err != nil {
		return firewall.Rule{}, firewallError(err)
	}
	return firewall.NewRule(name, firewall.SinglePort(uint16(listenPort(in))), sources), nil
}

// planOpen turns a firewall backend's open plan into the step's changes.
func planOpen(ctx context.Context, fw firewall.Firewall, rule firewall.Rule) (*planned, error) {
	p, err := fw.PlanOpen(ctx, rule)
	if err != nil {
		return nil, firewallError(err)
	}
	out := &planned{notes: p.Notes}
	if p.Empty() {
		return out, nil
	}
	for _, s := range p.Steps {
		out.changes = append(out.changes, change{what: s.Description})
	}
	// The backend's steps run as one plan: it reports which were done
	// when one fails.
	out.changes[len(out.changes)-1].do = func(ctx context.Context) error {
		return firewallError(p.Apply(ctx, nil))
	}
	for i := range out.changes[:len(out.changes)-1] {
		out.changes[i].do = func(context.Context) error { return nil }
	}
	return out, nil
}

func (r *run) planHostFirewall(ctx context.Context, in *Instance, h *HostFirewall) (*planned, error) {
	rule, err := h.rule(in)
	if err != nil {
		return nil, err
	}
	newFirewall := r.opts.HostFirewall
	if newFirewall == nil {
		newFirewall = DetectHostFirewall
	}
	fw, why, err := newFirewall(ctx, h.Backend)
	if err != nil {
		return nil, firewallError(err)
	}
	out, err := planOpen(ctx, fw, rule)
	if err != nil {
		return nil, err
	}
	if why != "" {
		out.note("using %s (%s)", fw.Name(), why)
	}
	return out, nil
}

// DetectHostFirewall is the host backend named, or the detected one for
// "" and auto, with why it was chosen.
func DetectHostFirewall(ctx context.Context, backend string) (firewall.Firewall, string, error) {
	if backend == "" || strings.EqualFold(backend, "auto") {
		return host.Detect(ctx, host.ExecRunner{})
	}
	fw, err := host.New(backend, host.ExecRunner{})
	return fw, "", err
}

func (r *run) planAWSFirewall(ctx context.Context, in *Instance, a *AWSFirewall) (*planned, error) {
	rule, err := a.rule(in)
	if err != nil {
		return nil, err
	}
	fw, err := fwaws.New(ctx, fwaws.Options{GroupIDs: a.SecurityGroups, Self: a.Self, Region: a.Region, Profile: a.Profile})
	if err != nil {
		return nil, firewallError(err)
	}
	return planOpen(ctx, fw, rule)
}

func (r *run) planAzureFirewall(ctx context.Context, in *Instance, z *AzureFirewall) (*planned, error) {
	rule, err := z.rule(in)
	if err != nil {
		return nil, err
	}
	fw, err := fwazure.New(ctx, fwazure.Options{Subscription: z.Subscription, ResourceGroup: z.ResourceGroup, NSG: z.NSG, Priority: int32(z.Priority)})
	if err != nil {
		return nil, firewallError(err)
	}
	return planOpen(ctx, fw, rule)
}

// firewallError keeps a firewall package's user error a user error.
func firewallError(err error) error {
	var ue *firewall.UserError
	if errors.As(err, &ue) {
		return config.Userf("%s", ue.Msg)
	}
	return err
}
