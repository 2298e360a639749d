package release

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"

	goversion "github.com/hashicorp/go-version"
)

// githubFeed reads GitHub Releases, where goreleaser publishes: each
// release's tag is a version (a leading v dropped) and its assets the files.
type githubFeed struct {
	api, owner, repo, token string
	client                  *http.Client

	mu     sync.Mutex
	assets map[string]map[string]string // version → asset name → download URL
}

func (g *githubFeed) String() string { return "github:" + g.owner + "/" + g.repo }

type githubRelease struct {
	TagName     string `json:"tag_name"`
	Draft       bool   `json:"draft"`
	Prerelease  bool   `json:"prerelease"`
	PublishedAt string `json:"published_at"`
	Assets      []struct {
		Name string `json:"name"`
		URL  string `json:"browser_download_url"`
	} `json:"assets"`
}

var nextLink = regexp.MustCompile(`<([^>]+)>;\s*rel="next"`)

func (g *githubFeed) Versions(ctx context.Context) ([]Version, error) {
	header := http.Header{"Accept": {"application/vnd.github+json"}}
	if g.token != "" {
		header.Set("Authorization", "Bearer "+g.token)
	}
	u := fmt.Sprintf("%s/repos/%s/%s/releases?per_page=100", g.api, g.owner, g.repo)
	var all []githubRelease
	for pages := 0; u != "" && pages < 20; pages++ {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return nil, err
		}
		req.Header = header.Clone()
		resp, err := g.client.Do(req)
		if err != nil {
			return nil, fmt.Errorf("cannot reach the GitHub API (%v); check the network and HTTPS_PROXY/NO_PROXY", err)
		}
		if resp.StatusCode != http.StatusOK {
			resp.Body.Close()
			hint := "check the repository name"
			if resp.StatusCode == http.StatusForbidden || resp.StatusCode == http.StatusTooManyRequests {
				hint = "the API rate limit may be spent: set GITHUB_TOKEN"
			}
			return nil, fmt.Errorf("the GitHub API answered %s for %s; %s", resp.Status, g, hint)
		}
		var page []githubRelease
		err = json.NewDecoder(io.LimitReader(resp.Body, maxIndexSize)).Decode(&page)
		resp.Body.Close()
		if err != nil {
			return nil, fmt.Errorf("the GitHub API's releases of %s are not valid JSON (%v); check --feed", g, err)
		}
		all = append(all, page...)
		u = ""
		if m := nextLink.FindStringSubmatch(resp.Header.Get("Link")); m != nil {
			u = m[1]
		}
	}
	assets := map[string]map[string]string{}
	var out []Version
	for _, r := range all {
		name := strings.TrimPrefix(r.TagName, "v")
		sv, err := goversion.NewSemver(name)
		if r.Draft || err != nil || !safeName(name) {
			continue // not a release of a SemVer tag
		}
		v := Version{Version: name, Date: r.PublishedAt, Prerelease: r.Prerelease || sv.Prerelease() != ""}
		assets[name] = map[string]string{}
		for _, a := range r.Assets {
			if safeName(a.Name) {
				v.Files = append(v.Files, a.Name)
				assets[name][a.Name] = a.URL
			}
		}
		slices.Sort(v.Files)
		out = append(out, v)
	}
	sortNewestFirst(out)
	g.mu.Lock()
	g.assets = assets
	g.mu.Unlock()
	return out, nil
}

func (g *githubFeed) Open(ctx context.Context, v Version, name string, offset int64) (*Body, error) {
	g.mu.Lock()
	if g.assets == nil {
		g.mu.Unlock()
		if _, err := g.Versions(ctx); err != nil {
			return nil, err
		}
		g.mu.Lock()
	}
	u, ok := g.assets[v.Version][name]
	g.mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("%s of release %s: %w", name, v.Version, ErrNotFound)
	}
	// The asset URL is on another host than the API: the token is not sent.
	return get(ctx, g.client, u, offset, nil)
}
