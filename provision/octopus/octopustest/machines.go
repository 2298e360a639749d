package octopustest

import (
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"strings"
)

func (m *Machine) json() map[string]any {
	out := map[string]any{
		"Id": m.ID, "Name": m.Name, "SpaceId": m.SpaceID, "Thumbprint": m.Endpoint.Thumbprint, "Uri": m.Endpoint.URI,
		"IsDisabled": false, "MachinePolicyId": m.MachinePolicyID, "Endpoint": m.Endpoint,
		"Links": map[string]string{"Self": "/api/" + m.SpaceID + "/machines/" + m.ID},
	}
	if m.Worker {
		out["WorkerPoolIds"] = m.WorkerPoolIDs
	} else {
		out["EnvironmentIds"] = m.EnvironmentIDs
		out["Roles"] = m.Roles
		out["TenantIds"] = m.TenantIDs
		out["TenantTags"] = m.TenantTags
		out["TenantedDeploymentParticipation"] = m.TenantedDeploymentParticipation
	}
	return out
}

// machineBody is what a client POSTs or PUTs.
type machineBody struct {
	ID                              string `json:"Id"`
	Name                            string
	MachinePolicyID                 string   `json:"MachinePolicyId"`
	EnvironmentIDs                  []string `json:"EnvironmentIds"`
	Roles                           []string
	TenantIDs                       []string `json:"TenantIds"`
	TenantTags                      []string
	TenantedDeploymentParticipation string
	WorkerPoolIDs                   []string `json:"WorkerPoolIds"`
	Endpoint                        *Endpoint
}

func (s *Server) machinesRoute(w http.ResponseWriter, r *http.Request, sp *Space, worker bool, rest []string) {
	itemType := "Machine"
	if worker {
		itemType = "Worker"
	}
	switch {
	case len(rest) == 0 && r.Method == http.MethodGet:
		name := r.URL.Query().Get("name")
		var out []map[string]any
		s.mu.Lock()
		for _, m := range s.machines {
			// ?name= is a partial, case-insensitive filter on the real server.
			if m.SpaceID == sp.ID && m.Worker == worker && strings.Contains(strings.ToLower(m.Name), strings.ToLower(name)) {
				out = append(out, m.json())
			}
		}
		s.mu.Unlock()
		s.page(w, r, itemType, out)
	case len(rest) == 1 && rest[0] == "all" && r.Method == http.MethodGet:
		thumb := r.URL.Query().Get("thumbprint")
		out := []map[string]any{}
		s.mu.Lock()
		for _, m := range s.machines {
			if m.SpaceID == sp.ID && m.Worker == worker && (thumb == "" || strings.EqualFold(m.Endpoint.Thumbprint, thumb)) {
				out = append(out, m.json())
			}
		}
		s.mu.Unlock()
		writeJSON(w, 200, out)
	case len(rest) == 0 && r.Method == http.MethodPost:
		s.saveMachine(w, r, sp, worker, "")
	case len(rest) == 1 && r.Method == http.MethodPut:
		s.saveMachine(w, r, sp, worker, rest[0])
	case len(rest) == 1 && r.Method == http.MethodDelete:
		s.mu.Lock()
		defer s.mu.Unlock()
		for i, m := range s.machines {
			if m.ID == rest[0] && m.SpaceID == sp.ID && m.Worker == worker {
				s.machines = slices.Delete(s.machines, i, i+1)
				s.trustLocked()
				writeJSON(w, 200, map[string]any{"Id": "ServerTasks-" + strconv.Itoa(i+100), "State": "Success"})
				return
			}
		}
		apiError(w, http.StatusNotFound, "The resource you requested was not found.")
	default:
		apiError(w, http.StatusNotFound, "The resource you requested was not found.")
	}
}

func hasID(items []Named, id string) bool {
	for _, n := range items {
		if n.ID == id {
			return true
		}
	}
	return false
}

// saveMachine validates and stores a machine, as the real server does:
// names unique per space, references must exist, endpoint required.
func (s *Server) saveMachine(w http.ResponseWriter, r *http.Request, sp *Space, worker bool, id string) {
	var b machineBody
	if err := json.NewDecoder(r.Body).Decode(&b); err != nil {
		apiError(w, http.StatusBadRequest, "There was a problem with your request.", "The request body is not valid JSON: "+err.Error())
		return
	}
	var errs []string
	if strings.TrimSpace(b.Name) == "" {
		errs = append(errs, "Please provide a value for the Name.")
	}
	if b.Endpoint == nil || b.Endpoint.Thumbprint == "" || b.Endpoint.URI == "" {
		errs = append(errs, "Please specify an endpoint with a URI and thumbprint.")
	} else if b.Endpoint.CommunicationStyle != "TentaclePassive" && b.Endpoint.CommunicationStyle != "TentacleActive" {
		errs = append(errs, "Unsupported communication style "+b.Endpoint.CommunicationStyle+".")
	}
	if b.MachinePolicyID != "" && !hasID(sp.MachinePolicies, b.MachinePolicyID) {
		errs = append(errs, "The machine policy "+b.MachinePolicyID+" does not exist.")
	}
	if worker {
		if len(b.WorkerPoolIDs) == 0 {
			errs = append(errs, "Please select at least one worker pool.")
		}
		for _, p := range b.WorkerPoolIDs {
			if !hasID(sp.WorkerPools, p) {
				errs = append(errs, "The worker pool "+p+" does not exist.")
			}
		}
	} else {
		if len(b.EnvironmentIDs) == 0 {
			errs = append(errs, "Please select at least one environment.")
		}
		if len(b.Roles) == 0 {
			errs = append(errs, "Please add at least one target tag.")
		}
		for _, e := range b.EnvironmentIDs {
			if !hasID(sp.Environments, e) {
				errs = append(errs, "The environment "+e+" does not exist.")
			}
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var existing *Machine
	for _, m := range s.machines {
		if m.SpaceID != sp.ID || m.Worker != worker {
			continue
		}
		if id != "" && m.ID == id {
			existing = m
		} else if strings.EqualFold(m.Name, b.Name) {
			errs = append(errs, "A machine with this name already exists in this space. Please choose a different name.")
		}
	}
	if id != "" && existing == nil {
		apiError(w, http.StatusNotFound, "The resource you requested was not found.")
		return
	}
	if len(errs) > 0 {
		apiError(w, http.StatusBadRequest, "There was a problem with your request.", errs...)
		return
	}
	m := existing
	status := http.StatusOK
	if m == nil {
		s.nextID++
		prefix := "Machines-"
		if worker {
			prefix = "Workers-"
		}
		m = &Machine{ID: prefix + strconv.Itoa(s.nextID), SpaceID: sp.ID, Worker: worker}
		s.machines = append(s.machines, m)
		status = http.StatusCreated
	}
	m.Name, m.MachinePolicyID, m.Endpoint = b.Name, b.MachinePolicyID, *b.Endpoint
	m.EnvironmentIDs, m.Roles, m.TenantIDs, m.TenantTags = b.EnvironmentIDs, b.Roles, b.TenantIDs, b.TenantTags
	m.TenantedDeploymentParticipation, m.WorkerPoolIDs = b.TenantedDeploymentParticipation, b.WorkerPoolIDs
	s.trustLocked()
	writeJSON(w, status, m.json())
}
