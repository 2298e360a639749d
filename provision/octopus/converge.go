package octopus

import (
	"context"
	"fmt"
	"net/url"
	"slices"
	"strings"
)

// Drift is how the server's record of this Tentacle differs from a
// Registration: what `tentacle provision` plans for the registration step.
type Drift struct {
	// ID is the machine registered with the Tentacle's thumbprint under
	// r.Name ("" when there is none: it will be created).
	ID string
	// Differences say what differs, one per field ("roles: [web] -> [web db]").
	Differences []string
}

// UpToDate reports whether nothing needs saving.
func (d Drift) UpToDate() bool { return d.ID != "" && len(d.Differences) == 0 }

// Compare reads what the server holds for the machine with r's name and
// thumbprint and says how it differs from r, resolving names as Register
// does (so a missing environment fails here, before anything changes). A
// machine with r's name but another certificate is refused unless r.Force.
func (c *Client) Compare(ctx context.Context, r Registration) (Drift, error) {
	if err := r.validate(); err != nil {
		return Drift{}, err
	}
	link, err := c.link(r.Kind.collectionLink())
	if err != nil {
		return Drift{}, err
	}
	want, err := c.body(ctx, r)
	if err != nil {
		return Drift{}, err
	}
	var found []machineView
	if err := c.get(ctx, link+"/all?thumbprint="+url.QueryEscape(r.Endpoint.Thumbprint), &found); err != nil {
		return Drift{}, err
	}
	var have *machineView
	for i := range found {
		if strings.EqualFold(found[i].Name, r.Name) {
			have = &found[i]
		}
	}
	if have == nil {
		byName, err := c.findByName(ctx, link, r.Name)
		if err != nil {
			return Drift{}, err
		}
		if byName != nil {
			if !r.Force {
				return Drift{}, userErrorf("A %s named '%s' is already registered on the Octopus Server with another certificate. Set force: true to replace it with this Tentacle, or choose another name.", r.Kind.noun(), r.Name)
			}
			return Drift{ID: byName.ID, Differences: []string{"certificate: another machine's -> " + r.Endpoint.Thumbprint}}, nil
		}
		return Drift{}, nil
	}
	d := Drift{ID: have.ID}
	differ := func(field string, was, is any) {
		d.Differences = append(d.Differences, fmt.Sprintf("%s: %v -> %v", field, was, is))
	}
	sameSet := func(field string, was []string, is any) {
		want, _ := is.([]string)
		a, b := slices.Clone(was), slices.Clone(want)
		for i := range a {
			a[i] = strings.ToLower(a[i])
		}
		for i := range b {
			b[i] = strings.ToLower(b[i])
		}
		slices.Sort(a)
		slices.Sort(b)
		if !slices.Equal(a, b) {
			differ(field, was, want)
		}
	}
	ep := want["Endpoint"].(map[string]any)
	if have.Endpoint.CommunicationStyle != ep["CommunicationStyle"] {
		differ("communication style", have.Endpoint.CommunicationStyle, ep["CommunicationStyle"])
	}
	if !strings.EqualFold(have.Endpoint.URI, ep["Uri"].(string)) {
		differ("endpoint", have.Endpoint.URI, ep["Uri"])
	}
	if wantProxy, ok := ep["ProxyId"].(string); ok || have.Endpoint.ProxyID != nil {
		if have.Endpoint.ProxyID == nil || *have.Endpoint.ProxyID != wantProxy {
			differ("server proxy", deref(have.Endpoint.ProxyID), wantProxy)
		}
	}
	if id, ok := want["MachinePolicyId"].(string); ok && id != have.MachinePolicyID {
		differ("machine policy", have.MachinePolicyID, id)
	}
	if r.Kind == Worker {
		sameSet("worker pools", have.WorkerPoolIDs, want["WorkerPoolIds"])
	} else {
		sameSet("environments", have.EnvironmentIDs, want["EnvironmentIds"])
		sameSet("roles", have.Roles, want["Roles"])
		sameSet("tenants", have.TenantIDs, want["TenantIds"])
		sameSet("tenant tags", have.TenantTags, want["TenantTags"])
		if mode := want["TenantedDeploymentParticipation"]; have.TenantedDeploymentParticipation != "" && have.TenantedDeploymentParticipation != mode {
			differ("tenanted deployment participation", have.TenantedDeploymentParticipation, mode)
		}
	}
	return d, nil
}

// Save creates the machine r describes (id "") or brings machine id up to
// r: the apply half of Compare.
func (c *Client) Save(ctx context.Context, r Registration, id string) (Registered, error) {
	if err := r.validate(); err != nil {
		return Registered{}, err
	}
	link, err := c.link(r.Kind.collectionLink())
	if err != nil {
		return Registered{}, err
	}
	return c.save(ctx, link, r, id)
}

func deref(s *string) string {
	if s == nil {
		return "none"
	}
	return *s
}
