// Package release reads release feeds (the layout `make package` writes, and
// GitHub Releases), chooses a version and artifact for a machine, downloads it
// resumably and verifies it (SHA-256 against checksums.txt, whose minisign
// signature is checked against a pinned key) before anything uses it.
package release

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"
)

// Schema is the version of index.json's format.
const Schema = 1

// IndexFile is the feed's index, in the feed folder.
const IndexFile = "index.json"

// ChecksumsFile is each version's SHA-256 list, in sha256sum's format.
const ChecksumsFile = "checksums.txt"

// SignatureFile is the minisign signature of ChecksumsFile.
const SignatureFile = ChecksumsFile + ".minisig"

// Index is a feed's index.json.
type Index struct {
	Schema   int       `json:"schema"`
	Versions []Version `json:"versions"`
}

// Version is one version of a feed.
type Version struct {
	Version    string   `json:"version"`
	Date       string   `json:"date"` // RFC 3339, UTC
	Prerelease bool     `json:"prerelease"`
	Files      []string `json:"files"`
}

// HasFile reports whether the version lists name.
func (v Version) HasFile(name string) bool {
	for _, f := range v.Files {
		if f == name {
			return true
		}
	}
	return false
}

// Body is an open artifact of a feed, read from Offset on.
type Body struct {
	io.ReadCloser
	// Offset is where the content starts: the offset asked for when the
	// feed honoured it, else 0 (the whole file).
	Offset int64
	// Size is the whole file's size, or -1 when the feed does not say.
	Size int64
}

// Feed is a source of releases.
type Feed interface {
	// Versions lists the feed's versions, newest first.
	Versions(ctx context.Context) ([]Version, error)
	// Open opens one file of a version from offset on (a feed that cannot
	// seek returns the whole file, Offset 0). A missing file is ErrNotFound.
	Open(ctx context.Context, v Version, name string, offset int64) (*Body, error)
	// String names the feed in messages.
	String() string
}

// ErrNotFound is a file or version the feed does not have.
var ErrNotFound = errors.New("not in the feed")

// Options configure how feeds are reached.
type Options struct {
	// Client makes HTTP requests; nil means one through the proxy from
	// the environment (HTTPS_PROXY, NO_PROXY), as every other command.
	Client *http.Client
	// GitHubAPI is the GitHub API's base URL; "" is https://api.github.com.
	GitHubAPI string
	// GitHubToken authenticates to the GitHub API (GITHUB_TOKEN) when set.
	GitHubToken string
}

// maxIndexSize bounds index.json, the releases JSON and checksums.txt: they
// are read whole into memory.
const maxIndexSize = 16 << 20

// NewHTTPClient is the client feeds use by default: the proxy from the
// environment, no overall timeout (downloads are large) but bounded
// connection and header waits.
func NewHTTPClient() *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.Proxy = http.ProxyFromEnvironment
	t.ResponseHeaderTimeout = time.Minute
	return &http.Client{Transport: t}
}

// CheckFeedSpec says whether spec is a feed Open accepts, without reading
// it (a directory need not exist yet): for settings saved now and used later.
func CheckFeedSpec(spec string) error {
	_, err := open(spec, Options{Client: http.DefaultClient}, false)
	return err
}

// Open returns the feed spec names: a directory or file:// URL, an https://
// URL (http:// only to a loopback address), or github:OWNER/REPO.
func Open(spec string, o Options) (Feed, error) {
	if o.Client == nil {
		o.Client = NewHTTPClient()
	}
	return open(spec, o, true)
}

func open(spec string, o Options, statDir bool) (Feed, error) {
	switch {
	case spec == "":
		return nil, errors.New("no release feed given: pass --feed (a directory, https:// URL or github:OWNER/REPO), set TENTACLE_RELEASES_FEED, or give the instance one with `tentacle configure --releases-feed`")
	case strings.HasPrefix(spec, "github:"):
		repo := strings.TrimPrefix(spec, "github:")
		owner, name, ok := strings.Cut(repo, "/")
		if !ok || owner == "" || name == "" || strings.Contains(name, "/") {
			return nil, fmt.Errorf("feed %q is not github:OWNER/REPO; write it as github:tentacle-go/tentacle", spec)
		}
		api := o.GitHubAPI
		if api == "" {
			api = "https://api.github.com"
		}
		return &githubFeed{api: strings.TrimSuffix(api, "/"), owner: owner, repo: name, token: o.GitHubToken, client: o.Client}, nil
	case strings.HasPrefix(spec, "file://"):
		u, err := url.Parse(spec)
		if err != nil || u.Path == "" {
			return nil, fmt.Errorf("feed %q is not a file:// URL; write it as file:///path/to/feed", spec)
		}
		return openDir(filepath.FromSlash(u.Path), statDir)
	case strings.HasPrefix(spec, "https://") || strings.HasPrefix(spec, "http://"):
		u, err := url.Parse(spec)
		if err != nil || u.Host == "" {
			return nil, fmt.Errorf("feed %q is not a valid URL; give https://HOST/PATH", spec)
		}
		if u.Scheme == "http" && !isLoopback(u.Hostname()) {
			return nil, fmt.Errorf("feed %q uses plain http, which is only allowed to this machine (loopback); use https://", spec)
		}
		u.Path = strings.TrimSuffix(u.Path, "/")
		return &httpFeed{base: u, client: o.Client}, nil
	case strings.Contains(spec, "://"):
		return nil, fmt.Errorf("feed %q has a scheme tentacle does not read; give a directory, file://, https:// or github:OWNER/REPO", spec)
	}
	return openDir(spec, statDir)
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// dirFeed is a feed folder on disk.
type dirFeed struct{ dir string }

func openDir(dir string, stat bool) (Feed, error) {
	if !stat {
		if !filepath.IsAbs(dir) {
			return nil, fmt.Errorf("feed directory %s is relative; give an absolute path, which means the same from every working directory", dir)
		}
		return &dirFeed{dir: dir}, nil
	}
	info, err := os.Stat(dir)
	if err != nil || !info.IsDir() {
		return nil, fmt.Errorf("feed directory %s does not exist; give the folder that holds index.json", dir)
	}
	return &dirFeed{dir: dir}, nil
}

func (d *dirFeed) String() string { return d.dir }

func (d *dirFeed) Versions(ctx context.Context) ([]Version, error) {
	f, err := os.Open(filepath.Join(d.dir, IndexFile))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("feed %s has no %s; give the folder `make package` wrote (dist/feed) or a mirror", d.dir, IndexFile)
		}
		return nil, err
	}
	defer f.Close()
	return decodeIndex(f, d.String())
}

func (d *dirFeed) Open(ctx context.Context, v Version, name string, offset int64) (*Body, error) {
	if !safeName(v.Version) || !safeName(name) {
		return nil, fmt.Errorf("feed %s names a file %q/%q that is not a plain file name", d.dir, v.Version, name)
	}
	f, err := os.Open(filepath.Join(d.dir, v.Version, name))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("%s of version %s: %w", name, v.Version, ErrNotFound)
		}
		return nil, err
	}
	info, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if offset > info.Size() {
		offset = 0
	}
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		f.Close()
		return nil, err
	}
	return &Body{ReadCloser: f, Offset: offset, Size: info.Size()}, nil
}

// safeName is one path element: no separators, not . or ...
func safeName(s string) bool {
	return s != "" && s != "." && s != ".." && !strings.ContainsAny(s, `/\`) && !strings.ContainsRune(s, 0)
}

func decodeIndex(r io.Reader, where string) ([]Version, error) {
	var idx Index
	if err := json.NewDecoder(io.LimitReader(r, maxIndexSize)).Decode(&idx); err != nil {
		return nil, fmt.Errorf("feed %s: %s is not valid JSON (%v); check the feed URL", where, IndexFile, err)
	}
	if idx.Schema != Schema {
		return nil, fmt.Errorf("feed %s: %s has schema %d, this tentacle reads schema %d; upgrade tentacle", where, IndexFile, idx.Schema, Schema)
	}
	for _, v := range idx.Versions {
		if !safeName(v.Version) {
			return nil, fmt.Errorf("feed %s lists a version %q that is not a plain name; the feed is corrupt", where, v.Version)
		}
	}
	return idx.Versions, nil
}

// httpFeed is a feed folder served over HTTP(S).
type httpFeed struct {
	base   *url.URL
	client *http.Client
}

func (h *httpFeed) String() string { return h.base.String() }

func (h *httpFeed) url(elem ...string) string {
	u := *h.base
	u.Path = path.Join(append([]string{u.Path}, elem...)...)
	return u.String()
}

func (h *httpFeed) Versions(ctx context.Context) ([]Version, error) {
	resp, err := get(ctx, h.client, h.url(IndexFile), 0, nil)
	if err != nil {
		return nil, err
	}
	defer resp.Close()
	return decodeIndex(resp, h.String())
}

func (h *httpFeed) Open(ctx context.Context, v Version, name string, offset int64) (*Body, error) {
	if !safeName(v.Version) || !safeName(name) {
		return nil, fmt.Errorf("feed %s names a file %q/%q that is not a plain file name", h, v.Version, name)
	}
	return get(ctx, h.client, h.url(v.Version, name), offset, nil)
}

// get fetches u from offset on (a Range request when offset > 0).
func get(ctx context.Context, c *http.Client, u string, offset int64, header http.Header) (*Body, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	if offset > 0 {
		req.Header.Set("Range", fmt.Sprintf("bytes=%d-", offset))
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, fmt.Errorf("cannot reach the release feed (%v); check the URL, the network and HTTPS_PROXY/NO_PROXY", err)
	}
	switch resp.StatusCode {
	case http.StatusOK:
		return &Body{ReadCloser: resp.Body, Offset: 0, Size: resp.ContentLength}, nil
	case http.StatusPartialContent:
		var start, end, total int64
		if _, err := fmt.Sscanf(resp.Header.Get("Content-Range"), "bytes %d-%d/%d", &start, &end, &total); err != nil || start != offset {
			resp.Body.Close()
			// A range we cannot trust: start again from the beginning.
			return get(ctx, c, u, 0, header)
		}
		return &Body{ReadCloser: resp.Body, Offset: start, Size: total}, nil
	case http.StatusRequestedRangeNotSatisfiable:
		resp.Body.Close()
		return get(ctx, c, u, 0, header)
	case http.StatusNotFound:
		resp.Body.Close()
		return nil, fmt.Errorf("%s: %w", u, ErrNotFound)
	}
	resp.Body.Close()
	return nil, fmt.Errorf("the release feed answered %s for %s; check the feed URL and try again later", resp.Status, u)
}
