package octopus

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// Kind is what a Tentacle registers as.
type Kind int

const (
	// DeploymentTarget is register-with: a machine in environments, with roles.
	DeploymentTarget Kind = iota
	// Worker is register-worker: a member of worker pools.
	Worker
)

func (k Kind) collectionLink() string {
	if k == Worker {
		return "Workers"
	}
	return "Machines"
}

func (k Kind) noun() string {
	if k == Worker {
		return "worker"
	}
	return "machine"
}

// Endpoint is how the server reaches the Tentacle.
type Endpoint struct {
	// Listening is https://host:port/ for a listening Tentacle.
	Listening string
	// Subscription is poll://id/ for a polling Tentacle.
	Subscription string
	// Thumbprint is the Tentacle's certificate thumbprint.
	Thumbprint string
	// ProxyName is a proxy defined on the server (listening only).
	ProxyName string
}

// Registration is what register-with and register-worker send.
type Registration struct {
	Kind         Kind
	Name         string
	Endpoint     Endpoint
	Policy       string
	Force        bool
	Environments []string // targets
	Roles        []string // targets
	Tenants      []string // targets
	TenantTags   []string // targets, "Set/Tag"
	// TenantedDeploymentParticipation is Untenanted (default),
	// TenantedOrUntenanted or Tenanted.
	TenantedDeploymentParticipation string
	WorkerPools                     []string // workers
}

// Registered is the outcome of a registration.
type Registered struct {
	ID       string
	Replaced bool // an existing machine was overwritten (--force)
}

// Tenanted deployment modes the server accepts.
var tenantedModes = []string{"Untenanted", "TenantedOrUntenanted", "Tenanted"}

// Register creates the machine or worker, or with Force replaces the one
// with the same name (tentacle-surface §4.3 steps 6-9).
func (c *Client) Register(ctx context.Context, r Registration) (Registered, error) {
	if err := r.validate(); err != nil {
		return Registered{}, err
	}
	link, err := c.link(r.Kind.collectionLink())
	if err != nil {
		return Registered{}, err
	}
	existing, err := c.findByName(ctx, link, r.Name)
	if err != nil {
		return Registered{}, err
	}
	if existing != nil && !r.Force {
		return Registered{}, userErrorf("A %s named '%s' already exists on the Octopus Server. Use --force to replace it, or choose another --name.", r.Kind.noun(), r.Name)
	}
	var id string
	if existing != nil {
		id = existing.ID
	}
	return c.save(ctx, link, r, id)
}

// body is the machine resource r describes, with every name resolved to
// its id on the server.
func (c *Client) body(ctx context.Context, r Registration) (map[string]any, error) {
	body := map[string]any{"Name": r.Name}
	if r.Policy != "" {
		id, err := c.resolveByName(ctx, "MachinePolicies", "machine policy", r.Policy)
		if err != nil {
			return nil, err
		}
		body["MachinePolicyId"] = id
	}
	endpoint := map[string]any{"Thumbprint": r.Endpoint.Thumbprint}
	if r.Endpoint.Subscription != "" {
		endpoint["CommunicationStyle"] = "TentacleActive"
		endpoint["Uri"] = r.Endpoint.Subscription
	} else {
		endpoint["CommunicationStyle"] = "TentaclePassive"
		endpoint["Uri"] = r.Endpoint.Listening
		endpoint["ProxyId"] = nil
		if r.Endpoint.ProxyName != "" {
			id, err := c.resolveByName(ctx, "Proxies", "proxy", r.Endpoint.ProxyName)
			if err != nil {
				return nil, err
			}
			endpoint["ProxyId"] = id
		}
	}
	body["Endpoint"] = endpoint
	if r.Kind == Worker {
		ids, err := c.resolveMany(ctx, "WorkerPools", "worker pool", r.WorkerPools)
		if err != nil {
			return nil, err
		}
		body["WorkerPoolIds"] = ids
	} else {
		envs, err := c.resolveEnvironments(ctx, r.Environments)
		if err != nil {
			return nil, err
		}
		tenants, err := c.resolveMany(ctx, "Tenants", "tenant", r.Tenants)
		if err != nil {
			return nil, err
		}
		if err := c.checkTenantTags(ctx, r.TenantTags); err != nil {
			return nil, err
		}
		mode := r.TenantedDeploymentParticipation
		if mode == "" {
			mode = "Untenanted"
		}
		body["EnvironmentIds"] = envs
		body["Roles"] = orEmpty(r.Roles)
		body["TenantIds"] = tenants
		body["TenantTags"] = orEmpty(r.TenantTags)
		body["TenantedDeploymentParticipation"] = mode
	}
	return body, nil
}

// save creates the machine (id "") or replaces machine id with r.
func (c *Client) save(ctx context.Context, link string, r Registration, id string) (Registered, error) {
	body, err := c.body(ctx, r)
	if err != nil {
		return Registered{}, err
	}
	var saved Resource
	if id != "" {
		body["Id"] = id
		err = c.do(ctx, http.MethodPut, link+"/"+url.PathEscape(id), body, &saved)
	} else {
		err = c.do(ctx, http.MethodPost, link, body, &saved)
	}
	if err != nil {
		var apiErr *APIError
		if errors.As(err, &apiErr) && apiErr.Status == http.StatusBadRequest {
			return Registered{}, userErrorf("The Octopus Server rejected the %s: %s", r.Kind.noun(), strings.TrimSpace(apiErr.Message+" "+strings.Join(apiErr.Errors, " ")))
		}
		return Registered{}, err
	}
	return Registered{ID: saved.ID, Replaced: id != ""}, nil
}

func orEmpty(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func (r Registration) validate() error {
	if strings.TrimSpace(r.Name) == "" {
		return userErrorf("The machine name is empty; give one with --name.")
	}
	if (r.Endpoint.Listening == "") == (r.Endpoint.Subscription == "") {
		return userErrorf("internal: a registration needs exactly one of a listening address and a subscription id")
	}
	if r.Endpoint.Subscription != "" && r.Endpoint.ProxyName != "" {
		return userErrorf("--proxy names a proxy the server uses to reach a listening Tentacle; it cannot be used with --comms-style TentacleActive.")
	}
	if r.Kind == Worker {
		if len(r.WorkerPools) == 0 {
			return userErrorf("Say which worker pool(s) to join with --workerpool (repeatable).")
		}
		return nil
	}
	if len(r.Environments) == 0 {
		return userErrorf("Say which environment(s) the machine belongs to with --environment (repeatable).")
	}
	if len(r.Roles) == 0 {
		return userErrorf("Give the machine at least one role (target tag) with --role (repeatable).")
	}
	if m := r.TenantedDeploymentParticipation; m != "" {
		for _, ok := range tenantedModes {
			if m == ok {
				return nil
			}
		}
		return userErrorf("--tenanted-deployment-participation %q is not one of %s.", m, strings.Join(tenantedModes, ", "))
	}
	return nil
}

// findByName pages collection?name=... and compares names exactly but
// case-insensitively, as upstream.
func (c *Client) findByName(ctx context.Context, link, name string) (*Resource, error) {
	items, err := all[Resource](ctx, c, link+"?name="+url.QueryEscape(name))
	if err != nil {
		return nil, err
	}
	for i := range items {
		if strings.EqualFold(items[i].Name, name) {
			return &items[i], nil
		}
	}
	return nil, nil
}

func (c *Client) resolveByName(ctx context.Context, linkName, what, name string) (string, error) {
	link, err := c.link(linkName)
	if err != nil {
		return "", err
	}
	items, err := all[Resource](ctx, c, link)
	if err != nil {
		return "", err
	}
	for _, it := range items {
		if strings.EqualFold(it.Name, name) {
			return it.ID, nil
		}
	}
	return "", userErrorf("Could not find the %s named %s on the Octopus Server. Ensure the %s exists and you have permission to access it.", what, name, what)
}

// resolveMany maps names, slugs or ids to ids, and names every one that
// matched nothing.
func resolveIn(items []Resource, wanted []string, what string) ([]string, error) {
	ids := []string{}
	var missing []string
	for _, w := range wanted {
		id := ""
		for _, match := range []func(Resource) bool{
			func(r Resource) bool { return strings.EqualFold(r.Name, w) },
			func(r Resource) bool { return r.Slug != "" && strings.EqualFold(r.Slug, w) },
			func(r Resource) bool { return strings.EqualFold(r.ID, w) },
		} {
			for _, it := range items {
				if match(it) {
					id = it.ID
					break
				}
			}
			if id != "" {
				break
			}
		}
		if id == "" {
			missing = append(missing, w)
			continue
		}
		ids = append(ids, id)
	}
	if len(missing) == 1 {
		return nil, userErrorf("Could not find the %s with name, slug or Id %s on the Octopus Server. Ensure the %s exists and you have permission to access it.", what, missing[0], what)
	}
	if len(missing) > 1 {
		return nil, userErrorf("Could not find the %ss with names, slugs or Ids: %s on the Octopus Server. Ensure the %ss exist and you have permission to access them.", what, strings.Join(missing, ", "), what)
	}
	return ids, nil
}

func (c *Client) resolveMany(ctx context.Context, linkName, what string, wanted []string) ([]string, error) {
	if len(wanted) == 0 {
		return []string{}, nil
	}
	link, err := c.link(linkName)
	if err != nil {
		return nil, err
	}
	items, err := all[Resource](ctx, c, link)
	if err != nil {
		return nil, err
	}
	return resolveIn(items, wanted, what)
}

// resolveEnvironments uses the v2 environments endpoint of newer servers
// and falls back to the classic collection when it is missing.
func (c *Client) resolveEnvironments(ctx context.Context, wanted []string) ([]string, error) {
	link, err := c.link("Environments")
	if err != nil {
		return nil, err
	}
	var v2 struct{ Items []Resource }
	err = c.get(ctx, link+"/v2?skip=0&take=2147483647", &v2)
	var apiErr *APIError
	switch {
	case err == nil:
		return resolveIn(v2.Items, wanted, "environment")
	case errors.As(err, &apiErr) && apiErr.Status == http.StatusNotFound:
		return c.resolveMany(ctx, "Environments", "environment", wanted)
	}
	return nil, err
}

// checkTenantTags validates "Set/Tag" names against the server's tag sets.
func (c *Client) checkTenantTags(ctx context.Context, tags []string) error {
	if len(tags) == 0 {
		return nil
	}
	link, err := c.link("TagSets")
	if err != nil {
		return err
	}
	sets, err := all[struct {
		Name string
		Tags []struct{ Name, CanonicalTagName string }
	}](ctx, c, link)
	if err != nil {
		return err
	}
	known := map[string]bool{}
	for _, s := range sets {
		for _, t := range s.Tags {
			canonical := t.CanonicalTagName
			if canonical == "" {
				canonical = s.Name + "/" + t.Name
			}
			known[strings.ToLower(canonical)] = true
		}
	}
	var missing []string
	for _, t := range tags {
		if !known[strings.ToLower(t)] {
			missing = append(missing, t)
		}
	}
	if len(missing) > 0 {
		return userErrorf("Could not find the tenant tag(s) %s on the Octopus Server. Give them as TagSet/Tag, as shown in the Tenant Tags library.", strings.Join(missing, ", "))
	}
	return nil
}

// Deregister removes every machine (or worker) registered with thumbprint,
// refusing more than one unless multiple (cloned VMs share certificates).
// It returns what was removed.
func (c *Client) Deregister(ctx context.Context, kind Kind, thumbprint string, multiple bool) ([]Resource, error) {
	link, err := c.link(kind.collectionLink())
	if err != nil {
		return nil, err
	}
	var found []Resource
	if err := c.get(ctx, link+"/all?thumbprint="+url.QueryEscape(thumbprint), &found); err != nil {
		return nil, err
	}
	where := ""
	if c.spaceN != "" {
		where = " in space " + c.spaceN
	}
	switch {
	case len(found) == 0:
		return nil, userErrorf("No %s with this Tentacle's thumbprint %s is registered on the Octopus Server%s; nothing to remove.", kind.noun(), thumbprint, where)
	case len(found) > 1 && !multiple:
		var names []string
		for _, f := range found {
			names = append(names, f.Name)
		}
		return nil, userErrorf("%d %ss share this Tentacle's thumbprint (%s); cloned machines share certificates. Pass --multiple to remove them all.", len(found), kind.noun(), strings.Join(names, ", "))
	}
	for _, f := range found {
		if err := c.do(ctx, http.MethodDelete, link+"/"+url.PathEscape(f.ID), nil, nil); err != nil {
			return nil, fmt.Errorf("removing %s %s: %w", kind.noun(), f.Name, err)
		}
	}
	return found, nil
}
