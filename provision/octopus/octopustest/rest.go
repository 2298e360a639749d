package octopustest

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
)

var collections = []string{"environments", "tenants", "workerpools", "machinepolicies", "proxies", "tagsets", "machines", "workers"}

// linkNames maps collection paths to the link names clients look for.
var linkNames = map[string]string{
	"environments": "Environments", "tenants": "Tenants", "workerpools": "WorkerPools", "machinepolicies": "MachinePolicies",
	"proxies": "Proxies", "tagsets": "TagSets", "machines": "Machines", "workers": "Workers",
}

// collectionLinks are the templated links of a space home (or of the root
// document of a server without spaces), as Octopus writes them.
func collectionLinks(prefix string) map[string]string {
	links := map[string]string{}
	for _, c := range collections {
		links[linkNames[c]] = prefix + "/" + c + "{/id}{?skip,take,ids,partialName,name,thumbprint}"
	}
	return links
}

func (s *Server) serveREST(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.requests = append(s.requests, r.Method+" "+r.URL.RequestURI())
	s.mu.Unlock()
	path := strings.TrimSuffix(r.URL.Path, "/")
	if path == "/api" && r.Method == http.MethodGet {
		s.root(w)
		return
	}
	if path == "/api/users/login" && r.Method == http.MethodPost {
		s.signIn(w, r)
		return
	}
	if !strings.HasPrefix(path, "/api/") {
		apiError(w, http.StatusNotFound, "The resource you requested was not found.")
		return
	}
	if !s.authorized(r) {
		apiError(w, http.StatusUnauthorized, "You must be logged in to perform this action. Please provide a valid API key or log in again.")
		return
	}
	seg := strings.Split(strings.TrimPrefix(path, "/api/"), "/")
	switch {
	case len(seg) == 2 && seg[0] == "users" && seg[1] == "me":
		writeJSON(w, 200, map[string]any{"Id": "Users-1", "Username": s.Username, "Links": map[string]string{"Self": "/api/users/Users-1", "Spaces": "/api/users/Users-1/spaces"}})
		return
	case len(seg) == 3 && seg[0] == "users" && seg[2] == "spaces":
		s.userSpaces(w)
		return
	case len(seg) == 3 && seg[0] == "configuration" && seg[2] == "certificate-global":
		writeJSON(w, 200, map[string]any{"Id": "certificate-global", "Thumbprint": s.Thumbprint()})
		return
	}
	space := s.space("Spaces-1")
	if !s.noSpaces {
		space = s.space(seg[0])
		if space == nil {
			apiError(w, http.StatusNotFound, "The resource you requested was not found.")
			return
		}
		seg = seg[1:]
		if len(seg) == 0 {
			writeJSON(w, 200, map[string]any{"Id": space.ID, "Name": space.Name, "Links": collectionLinks("/api/" + space.ID)})
			return
		}
	}
	s.collection(w, r, space, seg)
}

func (s *Server) root(w http.ResponseWriter) {
	links := map[string]string{"Self": "/api", "SignIn": "/api/users/login", "CurrentUser": "/api/users/me"}
	if s.noSpaces {
		for k, v := range collectionLinks("/api") {
			links[k] = v
		}
	} else {
		links["Spaces"] = "/api/spaces{/id}{?skip,ids,take,partialName}"
		links["SpaceHome"] = "/api/{spaceId}"
	}
	writeJSON(w, 200, map[string]any{"Application": "Octopus Deploy", "Version": s.Version, "ApiVersion": "3.0.0", "Links": links})
}

func (s *Server) signIn(w http.ResponseWriter, r *http.Request) {
	var body struct{ Username, Password string }
	json.NewDecoder(r.Body).Decode(&body)
	if body.Username != s.Username || body.Password != s.Password {
		apiError(w, http.StatusBadRequest, "Invalid username or password.")
		return
	}
	b := make([]byte, 16)
	rand.Read(b)
	token := hex.EncodeToString(b)
	s.mu.Lock()
	s.sessions[token] = true
	s.mu.Unlock()
	http.SetCookie(w, &http.Cookie{Name: "OctopusIdentificationToken", Value: token, Path: "/"})
	http.SetCookie(w, &http.Cookie{Name: "Octopus-Csrf-Token_abc", Value: "csrf-" + token, Path: "/"})
	writeJSON(w, 200, map[string]any{"Id": "Users-1", "Username": s.Username})
}

// authorized checks the API key, bearer token or session (with its CSRF
// header on writes), as the real server does.
func (s *Server) authorized(r *http.Request) bool {
	if k := r.Header.Get("X-Octopus-ApiKey"); k != "" {
		return k == s.APIKey
	}
	if a := r.Header.Get("Authorization"); a != "" {
		return a == "Bearer "+s.BearerToken
	}
	c, err := r.Cookie("OctopusIdentificationToken")
	if err != nil {
		return false
	}
	s.mu.Lock()
	ok := s.sessions[c.Value]
	s.mu.Unlock()
	if ok && r.Method != http.MethodGet {
		ok = r.Header.Get("X-Octopus-Csrf-Token") == "csrf-"+c.Value
	}
	return ok
}

func (s *Server) space(id string) *Space {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, sp := range s.spaces {
		if strings.EqualFold(sp.ID, id) {
			return sp
		}
	}
	return nil
}

func (s *Server) userSpaces(w http.ResponseWriter) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []map[string]any
	for _, sp := range s.spaces {
		out = append(out, map[string]any{"Id": sp.ID, "Name": sp.Name, "Slug": sp.Slug, "IsDefault": sp.IsDefault,
			"Links": map[string]string{"Self": "/api/spaces/" + sp.ID, "SpaceHome": "/api/" + sp.ID}})
	}
	writeJSON(w, 200, out)
}

func named(items []Named, itemType string) []map[string]any {
	out := []map[string]any{}
	for _, n := range items {
		out = append(out, map[string]any{"Id": n.ID, "Name": n.Name, "Slug": n.Slug, "Links": map[string]string{"Self": "/api/" + strings.ToLower(itemType) + "s/" + n.ID}})
	}
	return out
}

// page writes one page of items as an Octopus ResourceCollection, with a
// Page.Next link while more remain.
func (s *Server) page(w http.ResponseWriter, r *http.Request, itemType string, items []map[string]any) {
	skip, _ := strconv.Atoi(r.URL.Query().Get("skip"))
	take, err := strconv.Atoi(r.URL.Query().Get("take"))
	if err != nil || take <= 0 || take > s.pageSize {
		take = s.pageSize
	}
	end := min(skip+take, len(items))
	pageItems := []map[string]any{}
	if skip < len(items) {
		pageItems = items[skip:end]
	}
	links := map[string]string{"Self": r.URL.RequestURI()}
	if end < len(items) {
		q := r.URL.Query()
		q.Set("skip", strconv.Itoa(end))
		q.Set("take", strconv.Itoa(take))
		links["Page.Next"] = r.URL.Path + "?" + q.Encode()
	}
	writeJSON(w, 200, map[string]any{"ItemType": itemType, "IsStale": false, "TotalResults": len(items), "ItemsPerPage": take,
		"NumberOfPages": (len(items) + take - 1) / max(take, 1), "Items": pageItems, "Links": links})
}

func (s *Server) collection(w http.ResponseWriter, r *http.Request, sp *Space, seg []string) {
	kind := seg[0]
	rest := seg[1:]
	switch kind {
	case "environments":
		if len(rest) == 1 && rest[0] == "v2" && !s.noEnvV2 {
			writeJSON(w, 200, map[string]any{"Items": named(sp.Environments, "Environment"), "TotalResults": len(sp.Environments)})
			return
		}
		if len(rest) == 0 {
			s.page(w, r, "Environment", named(sp.Environments, "Environment"))
			return
		}
	case "tenants", "workerpools", "machinepolicies", "proxies":
		if len(rest) == 0 {
			lists := map[string][]Named{"tenants": sp.Tenants, "workerpools": sp.WorkerPools, "machinepolicies": sp.MachinePolicies, "proxies": sp.Proxies}
			s.page(w, r, linkNames[kind], named(lists[kind], kind))
			return
		}
	case "tagsets":
		if len(rest) == 0 {
			var out []map[string]any
			for _, ts := range sp.TagSets {
				var tags []map[string]any
				for _, t := range ts.Tags {
					tags = append(tags, map[string]any{"Name": t, "CanonicalTagName": ts.Name + "/" + t})
				}
				out = append(out, map[string]any{"Id": ts.ID, "Name": ts.Name, "Tags": tags})
			}
			s.page(w, r, "TagSet", out)
			return
		}
	case "machines", "workers":
		s.machinesRoute(w, r, sp, kind == "workers", rest)
		return
	}
	apiError(w, http.StatusNotFound, "The resource you requested was not found.")
}
