package octopus

import (
	"context"
)

// machineView is what show-configuration and provision (Compare) read of
// a registered machine.
type machineView struct {
	Resource
	EnvironmentIDs                  []string `json:"EnvironmentIds"`
	Roles                           []string
	TenantIDs                       []string `json:"TenantIds"`
	TenantTags                      []string
	TenantedDeploymentParticipation string
	WorkerPoolIDs                   []string `json:"WorkerPoolIds"`
	MachinePolicyID                 string   `json:"MachinePolicyId"`
	Endpoint                        struct {
		CommunicationStyle string
		URI                string  `json:"Uri"`
		ProxyID            *string `json:"ProxyId"`
	}
}

type idName struct {
	ID   string `json:"Id"`
	Name string `json:"Name"`
}

// ServerView is the server's side of this Tentacle's configuration, as
// upstream's show-configuration adds it: found by thumbprint among the
// space's machines and workers. ok is false when nothing has the thumbprint.
func (c *Client) ServerView(ctx context.Context, thumbprint string) (view map[string]any, ok bool, err error) {
	var matches []machineView
	worker := false
	for _, kind := range []Kind{DeploymentTarget, Worker} {
		link, err := c.link(kind.collectionLink())
		if err != nil {
			return nil, false, err
		}
		var found []machineView
		if err := c.get(ctx, link+"/all?thumbprint="+thumbprint, &found); err != nil {
			return nil, false, err
		}
		if len(found) > 0 {
			worker = kind == Worker
		}
		matches = append(matches, found...)
	}
	switch len(matches) {
	case 0:
		return nil, false, nil
	case 1:
	default:
		return nil, false, userErrorf("This Tentacle is registered %d times with the server (cloned machines share a certificate). Unable to display its server-side configuration.", len(matches))
	}
	m := matches[0]
	view = map[string]any{"Tentacle.DisplayName": m.Name}
	names := func(linkName string, ids []string) ([]idName, error) {
		out := []idName{}
		if len(ids) == 0 {
			return out, nil
		}
		link, err := c.link(linkName)
		if err != nil {
			return nil, err
		}
		all, err := all[Resource](ctx, c, link)
		if err != nil {
			return nil, err
		}
		for _, r := range all {
			for _, id := range ids {
				if r.ID == id {
					out = append(out, idName{r.ID, r.Name})
				}
			}
		}
		return out, nil
	}
	if worker {
		pools, err := names("WorkerPools", m.WorkerPoolIDs)
		if err != nil {
			return nil, false, err
		}
		view["Tentacle.WorkerPools"] = pools
	} else {
		envs, err := names("Environments", m.EnvironmentIDs)
		if err != nil {
			return nil, false, err
		}
		tenants, err := names("Tenants", m.TenantIDs)
		if err != nil {
			return nil, false, err
		}
		view["Tentacle.Environments"] = envs
		view["Tentacle.Tenants"] = tenants
		view["Tentacle.TenantTags"] = orEmpty(m.TenantTags)
		view["Tentacle.Roles"] = orEmpty(m.Roles)
	}
	if m.MachinePolicyID != "" {
		policies, err := names("MachinePolicies", []string{m.MachinePolicyID})
		if err != nil {
			return nil, false, err
		}
		if len(policies) == 1 {
			view["Tentacle.MachinePolicy"] = policies[0]
		}
	}
	if m.Endpoint.CommunicationStyle == "TentaclePassive" {
		view["Tentacle.Communication.PublicHostName"] = m.Endpoint.URI
	}
	return view, true, nil
}
