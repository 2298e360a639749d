// Package octopus talks to the Octopus Server REST API the way upstream
// Tentacle does to register and deregister itself (tentacle-surface §4):
// link-driven from the root document, space-aware, with API key, bearer
// token or username/password sign-in, through a proxy when configured.
package octopus

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/tentacle-go/tentacle/agent/config"
)

// RequestTimeout bounds one REST call.
const RequestTimeout = 60 * time.Second

// Credentials authenticate to the server: exactly one kind.
type Credentials struct {
	APIKey      string
	BearerToken string
	Username    string
	Password    string
}

func (c Credentials) validate() error {
	n := 0
	for _, set := range []bool{c.APIKey != "", c.BearerToken != "", c.Username != "" || c.Password != ""} {
		if set {
			n++
		}
	}
	switch {
	case n == 0:
		return userErrorf("Give the Octopus Server credentials: --apiKey API-..., --bearerToken, or --username and --password.")
	case n > 1:
		return userErrorf("Give only one kind of credentials: --apiKey, --bearerToken, or --username with --password.")
	case (c.Username == "") != (c.Password == ""):
		return userErrorf("--username and --password go together.")
	}
	return nil
}

// UserError is a failure the user can fix; its message says how. It is
// the CLI's error type for exit code 1.
type UserError = config.UserError

func userErrorf(format string, args ...any) error { return config.Userf(format, args...) }

// APIError is an error answer from the server, in Octopus's error shape.
type APIError struct {
	Status  int
	Message string   `json:"ErrorMessage"`
	Errors  []string `json:"Errors"`
}

func (e *APIError) Error() string {
	msg := e.Message
	if len(e.Errors) > 0 {
		msg += " " + strings.Join(e.Errors, " ")
	}
	return fmt.Sprintf("the Octopus Server answered %d: %s", e.Status, strings.TrimSpace(msg))
}

// Client is an authenticated connection to one Octopus Server.
type Client struct {
	base   *url.URL
	http   *http.Client
	creds  Credentials
	csrf   string
	root   *Resource
	space  *Resource // space home, nil on servers without spaces
	spaceN string
}

// Options for Connect.
type Options struct {
	Server      string
	Credentials Credentials
	// Proxy chooses the HTTP proxy (nil: direct).
	Proxy func(*http.Request) (*url.URL, error)
	// InsecureSkipVerify accepts any server certificate (--ignoreSslErrors).
	InsecureSkipVerify bool
	// Space selects a space by name; "" means the user's default space.
	Space string
}

// Resource is any Octopus resource: its fields, and its links.
type Resource struct {
	ID    string            `json:"Id"`
	Name  string            `json:"Name"`
	Slug  string            `json:"Slug"`
	Links map[string]string `json:"Links"`
	raw   json.RawMessage
}

// Connect fetches the root document, checks the server version, signs in
// when using a username, and selects the space.
func Connect(ctx context.Context, opts Options) (*Client, error) {
	if err := opts.Credentials.validate(); err != nil {
		return nil, err
	}
	c, root, err := fetchRoot(ctx, opts)
	if err != nil {
		return nil, err
	}
	c.root = &Resource{Links: root.Links}
	if c.creds.Username != "" {
		if err := c.signIn(ctx); err != nil {
			return nil, err
		}
	}
	if _, ok := root.Links["Spaces"]; ok {
		if err := c.selectSpace(ctx, opts.Space); err != nil {
			return nil, err
		}
	} else if opts.Space != "" {
		return nil, userErrorf("The Octopus Server at %s has no spaces, but --space %q was given. Leave --space out.", opts.Server, opts.Space)
	}
	return c, nil
}

// rootDocument is the server's /api document.
type rootDocument struct {
	Version    string
	ApiVersion string
	Links      map[string]string
}

// fetchRoot makes a client for opts and reads the root document, which
// needs no credentials, checking that it is an Octopus Server's.
func fetchRoot(ctx context.Context, opts Options) (*Client, rootDocument, error) {
	var root rootDocument
	base, err := url.Parse(strings.TrimSpace(opts.Server))
	if err != nil || base.Host == "" || (base.Scheme != "http" && base.Scheme != "https") {
		return nil, root, userErrorf("--server %q is not the address of an Octopus Server, such as https://octopus.example.", opts.Server)
	}
	base.Path = strings.TrimSuffix(base.Path, "/")
	jar, _ := cookiejar.New(nil)
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = opts.Proxy
	tr.TLSClientConfig = &tls.Config{InsecureSkipVerify: opts.InsecureSkipVerify}
	c := &Client{base: base, creds: opts.Credentials, http: &http.Client{Transport: tr, Jar: jar, Timeout: RequestTimeout}}
	if err := c.get(ctx, "/api", &root); err != nil {
		return nil, root, err
	}
	if root.Links == nil {
		return nil, root, userErrorf("%s did not answer like an Octopus Server (no links in /api). Check --server.", opts.Server)
	}
	if major := majorVersion(root.Version); major > 0 && major < 3 {
		return nil, root, userErrorf("The Octopus Server at %s is version %s; Tentacle needs 3.0 or later.", opts.Server, root.Version)
	}
	return c, root, nil
}

// Probe checks, without credentials, that opts.Server answers as an
// Octopus Server Tentacle can register with, and returns its version: the
// check `tentacle setup` makes as the URL is typed.
func Probe(ctx context.Context, opts Options) (string, error) {
	_, root, err := fetchRoot(ctx, opts)
	return root.Version, err
}

func majorVersion(v string) int {
	var n int
	fmt.Sscanf(v, "%d", &n)
	return n
}

func (c *Client) signIn(ctx context.Context) error {
	link, ok := c.root.Links["SignIn"]
	if !ok {
		return userErrorf("This Octopus Server does not accept username and password sign-in; use --apiKey.")
	}
	body := map[string]any{"Username": c.creds.Username, "Password": c.creds.Password, "RememberMe": false}
	if err := c.do(ctx, http.MethodPost, link, body, nil); err != nil {
		return err
	}
	for _, ck := range c.http.Jar.Cookies(c.base) {
		if strings.HasPrefix(ck.Name, "Octopus-Csrf-Token") {
			c.csrf = ck.Value
		}
	}
	return nil
}

func (c *Client) selectSpace(ctx context.Context, name string) error {
	var me Resource
	if err := c.get(ctx, c.root.Links["CurrentUser"], &me); err != nil {
		return err
	}
	var spaces []struct {
		Resource
		IsDefault bool
	}
	if err := c.get(ctx, me.Links["Spaces"], &spaces); err != nil {
		return err
	}
	var names []string
	for _, s := range spaces {
		names = append(names, s.Name)
		if name == "" && s.IsDefault || name != "" && strings.EqualFold(strings.TrimSpace(s.Name), strings.TrimSpace(name)) {
			var home Resource
			if err := c.get(ctx, s.Links["SpaceHome"], &home); err != nil {
				return err
			}
			c.space, c.spaceN = &home, s.Name
			return nil
		}
	}
	if name == "" {
		return userErrorf("The Octopus Server has no default space for this user. Name one with --space (available: %s).", strings.Join(names, ", "))
	}
	return userErrorf("The space %q was not found on the Octopus Server, or this user cannot see it. Available spaces: %s.", name, strings.Join(names, ", "))
}

// link returns a link of the space (or of the root on servers without
// spaces), with its URI template removed.
func (c *Client) link(name string) (string, error) {
	links := c.root.Links
	if c.space != nil {
		links = c.space.Links
	}
	l, ok := links[name]
	if !ok {
		return "", fmt.Errorf("the Octopus Server has no %q link", name)
	}
	return stripTemplate(l), nil
}

var templatePart = regexp.MustCompile(`\{[^}]*\}`)

// stripTemplate drops RFC 6570 expressions such as {/id}{?skip,take}.
func stripTemplate(link string) string { return templatePart.ReplaceAllString(link, "") }

func (c *Client) get(ctx context.Context, path string, out any) error {
	return c.do(ctx, http.MethodGet, path, nil, out)
}

// do sends one request; a relative path is resolved against the server
// (which may live under a virtual directory).
func (c *Client) do(ctx context.Context, method, path string, body, out any) error {
	u := *c.base
	rel, err := url.Parse(path)
	if err != nil {
		return err
	}
	u.Path = c.base.Path + rel.Path
	u.RawQuery = rel.RawQuery
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), rd)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	switch {
	case c.creds.APIKey != "":
		req.Header.Set("X-Octopus-ApiKey", c.creds.APIKey)
	case c.creds.BearerToken != "":
		req.Header.Set("Authorization", "Bearer "+c.creds.BearerToken)
	case c.csrf != "":
		req.Header.Set("X-Octopus-Csrf-Token", c.csrf)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return connectError(c.base, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return connectError(c.base, err)
	}
	if resp.StatusCode >= 400 {
		apiErr := &APIError{Status: resp.StatusCode}
		_ = json.Unmarshal(data, apiErr)
		if apiErr.Message == "" {
			apiErr.Message = strings.TrimSpace(string(data))
		}
		switch resp.StatusCode {
		case http.StatusUnauthorized:
			return userErrorf("The Octopus Server refused the credentials (401: %s). Check --apiKey (or --bearerToken, --username/--password).", apiErr.Message)
		case http.StatusForbidden:
			return userErrorf("The credentials are valid but lack permission for %s %s (403: %s). Use an API key of a user allowed to create machines in this space.", method, rel.Path, apiErr.Message)
		}
		return apiErr
	}
	if out == nil || len(data) == 0 {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("the Octopus Server's answer to %s %s is not the JSON expected: %w", method, rel.Path, err)
	}
	return nil
}

// connectError says what went wrong reaching the server.
func connectError(base *url.URL, err error) error {
	var ce *tls.CertificateVerificationError
	var dnsErr *net.DNSError
	var opErr *net.OpError
	switch {
	case errors.As(err, &ce):
		return userErrorf("The TLS certificate of %s is not trusted (%v). Install its CA on this machine, or pass --ignoreSslErrors if you accept the risk.", base.Host, ce.Err)
	case errors.As(err, &dnsErr):
		return userErrorf("Cannot resolve %s: %v. Check --server (and the proxy settings).", base.Hostname(), dnsErr.Err)
	case errors.As(err, &opErr):
		return userErrorf("Cannot reach the Octopus Server at %s: %v. Check --server, the network and the proxy settings.", base.Host, opErr.Err)
	case errors.Is(err, context.DeadlineExceeded):
		return userErrorf("The Octopus Server at %s did not answer in time. Check --server, the network and the proxy settings.", base.Host)
	}
	return userErrorf("Cannot talk to the Octopus Server at %s: %v.", base.Host, err)
}

// collection is an Octopus ResourceCollection page.
type collection[T any] struct {
	Items []T
	Links map[string]string
}

// all pages through a collection from path, following Page.Next.
func all[T any](ctx context.Context, c *Client, path string) ([]T, error) {
	var out []T
	for path != "" {
		var page collection[T]
		if err := c.get(ctx, path, &page); err != nil {
			return nil, err
		}
		out = append(out, page.Items...)
		path = stripTemplate(page.Links["Page.Next"])
	}
	return out, nil
}

// ServerThumbprint is the thumbprint of the server's communications
// certificate, which the Tentacle must trust.
func (c *Client) ServerThumbprint(ctx context.Context) (string, error) {
	var cert struct{ Thumbprint string }
	err := c.get(ctx, "/api/configuration/certificates/certificate-global", &cert)
	var apiErr *APIError
	if errors.As(err, &apiErr) && apiErr.Status == http.StatusNotFound {
		err = c.get(ctx, "/api/certificates/certificate-global", &cert) // older servers
	}
	if err != nil {
		return "", err
	}
	if cert.Thumbprint == "" {
		return "", fmt.Errorf("the Octopus Server did not report its certificate thumbprint")
	}
	return strings.ToUpper(cert.Thumbprint), nil
}

// SpaceName is the selected space ("" without spaces).
func (c *Client) SpaceName() string { return c.spaceN }
