package azure

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"
)

// TokenSource gives bearer tokens for Azure Resource Manager.
type TokenSource interface {
	// Token is an access token for scope (such as
	// https://management.azure.com/.default) and when it expires.
	Token(ctx context.Context, scope string) (token string, expires time.Time, err error)
}

// DefaultCredential finds credentials the way azidentity's
// DefaultAzureCredential does, in its order, from what is set when it is
// called:
//
//  1. environment: AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET,
//     or AZURE_CLIENT_CERTIFICATE_PATH (PEM with the key, or PFX with
//     AZURE_CLIENT_CERTIFICATE_PASSWORD; AZURE_CLIENT_SEND_CERTIFICATE_CHAIN
//     for subject name/issuer auth), against AZURE_AUTHORITY_HOST (default
//     https://login.microsoftonline.com);
//  2. workload identity: AZURE_FEDERATED_TOKEN_FILE, AZURE_CLIENT_ID and
//     AZURE_TENANT_ID (as AKS sets them);
//  3. managed identity: App Service and Functions' IDENTITY_ENDPOINT and
//     IDENTITY_HEADER, else the VM's instance metadata service
//     (AZURE_POD_IDENTITY_AUTHORITY_HOST overrides http://169.254.169.254);
//     AZURE_CLIENT_ID picks a user-assigned identity;
//  4. the Azure CLI's login: `az account get-access-token`, az from PATH.
//
// The first that gives a token is kept, and its tokens are reused until
// shortly before they expire. A source that is not set up is passed over;
// one that is set up but fails stops the search with its reason, so that a
// wrong secret is not hidden behind another identity.
func DefaultCredential() TokenSource {
	clientID := os.Getenv("AZURE_CLIENT_ID")
	return &chain{sources: []source{
		newEnvironmentSource(),
		newWorkloadSource(),
		newManagedIdentitySource(clientID),
		&cliSource{timeout: cliTimeout},
	}, now: time.Now}
}

// A source is one way of getting tokens.
type source interface {
	name() string
	token(ctx context.Context, scope string) (accessToken, error)
}

type accessToken struct {
	token   string
	expires time.Time
}

// unavailable says a source is not set up here; the chain moves on.
type unavailable struct{ reason string }

func (e *unavailable) Error() string { return e.reason }

func notSetUp(format string, args ...any) error {
	return &unavailable{fmt.Sprintf(format, args...)}
}

// refreshMargin: a cached token is replaced this long before it expires
// (or at half its life, if shorter), so that a request never carries a
// token that lapses on the way.
const refreshMargin = 5 * time.Minute

// chain tries its sources in order, keeps the first that works and caches
// its tokens per scope.
type chain struct {
	mu      sync.Mutex // held while fetching: one fetch at a time is plenty
	sources []source
	chosen  source
	cache   map[string]cachedToken
	now     func() time.Time
}

type cachedToken struct {
	accessToken
	refreshAt time.Time
}

func (c *chain) Token(ctx context.Context, scope string) (string, time.Time, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	if t, ok := c.cache[scope]; ok && now.Before(t.refreshAt) {
		return t.token, t.expires, nil
	}
	if c.chosen != nil {
		t, err := c.chosen.token(ctx, scope)
		if err != nil {
			return "", time.Time{}, fmt.Errorf("%s: %w", c.chosen.name(), err)
		}
		return c.keep(scope, t, now)
	}
	var reasons []string
	for _, s := range c.sources {
		t, err := s.token(ctx, scope)
		if err == nil {
			c.chosen = s
			return c.keep(scope, t, now)
		}
		reasons = append(reasons, s.name()+": "+oneLine(err.Error()))
		var u *unavailable
		if !errors.As(err, &u) || ctx.Err() != nil {
			return "", time.Time{}, fmt.Errorf("%s: %w", s.name(), err)
		}
	}
	return "", time.Time{}, errors.New(strings.Join(reasons, "; "))
}

func (c *chain) keep(scope string, t accessToken, now time.Time) (string, time.Time, error) {
	if c.cache == nil {
		c.cache = map[string]cachedToken{}
	}
	c.cache[scope] = cachedToken{t, t.expires.Add(-min(refreshMargin, t.expires.Sub(now)/2))}
	return t.token, t.expires, nil
}

// oneLine is the first line of s, which is what Entra's and az's long
// answers say first.
func oneLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(s)
}

// resourceOf is the resource (audience) of a ".default" scope, which is
// what managed identity and the Azure CLI ask for.
func resourceOf(scope string) string {
	return strings.TrimSuffix(scope, ".default")
}

// maxTokenBody bounds an answer from a token endpoint or from az.
const maxTokenBody = 1 << 20

// tokenTimeout bounds one exchange with a token endpoint.
const tokenTimeout = 30 * time.Second

// expiry is an expires_in or expires_on that may come as a number or as a
// string of digits (IMDS and App Service send strings).
type expiry int64

func (e *expiry) UnmarshalJSON(b []byte) error {
	s := strings.Trim(string(b), `"`)
	if s == "" || s == "null" {
		return nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		// App Service's 2017 API wrote a date; ignored for expires_in.
		if t, terr := time.Parse("01/02/2006 15:04:05 -07:00", s); terr == nil {
			*e = expiry(t.Unix())
			return nil
		}
		return fmt.Errorf("expiry %q is not a number", s)
	}
	*e = expiry(n)
	return nil
}

// tokenAnswer is the JSON of an OAuth token endpoint, Entra's and the
// managed identity endpoints' alike.
type tokenAnswer struct {
	AccessToken string `json:"access_token"`
	ExpiresIn   expiry `json:"expires_in"`
	ExpiresOn   expiry `json:"expires_on"`
	// Entra's error answer.
	Error       string `json:"error"`
	Description string `json:"error_description"`
}

func (a *tokenAnswer) accessToken(now time.Time) (accessToken, error) {
	if a.AccessToken == "" {
		return accessToken{}, errors.New("the answer holds no access_token")
	}
	t := accessToken{token: a.AccessToken, expires: now}
	switch {
	case a.ExpiresOn > 0:
		t.expires = time.Unix(int64(a.ExpiresOn), 0)
	case a.ExpiresIn > 0:
		t.expires = now.Add(time.Duration(a.ExpiresIn) * time.Second)
	}
	return t, nil
}

// fetchToken does one token request and reads the answer, retrying 429
// and 5xx twice. what names the endpoint in errors.
func fetchToken(ctx context.Context, hc *http.Client, newReq func(context.Context) (*http.Request, error), what string) (accessToken, int, error) {
	var lastStatus int
	for attempt := 1; ; attempt++ {
		t, status, h, err := fetchOnce(ctx, hc, newReq, what)
		if err == nil || !retriable(status) || attempt == 3 || ctx.Err() != nil {
			return t, status, err
		}
		lastStatus = status
		delay := time.Duration(attempt) * 500 * time.Millisecond
		if ra, ok := retryAfter(h); ok {
			delay = ra
		}
		if serr := sleep(ctx, delay); serr != nil {
			return accessToken{}, lastStatus, err
		}
	}
}

func fetchOnce(ctx context.Context, hc *http.Client, newReq func(context.Context) (*http.Request, error), what string) (accessToken, int, http.Header, error) {
	ctx, cancel := context.WithTimeout(ctx, tokenTimeout)
	defer cancel()
	req, err := newReq(ctx)
	if err != nil {
		return accessToken{}, 0, nil, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return accessToken{}, 0, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxTokenBody))
	if err != nil {
		return accessToken{}, resp.StatusCode, resp.Header, fmt.Errorf("%s: %w", what, err)
	}
	var a tokenAnswer
	jerr := json.Unmarshal(body, &a)
	if resp.StatusCode != http.StatusOK {
		msg := fmt.Sprintf("%s answered HTTP %d", what, resp.StatusCode)
		switch {
		case a.Error != "" || a.Description != "":
			msg += ": " + strings.TrimSpace(a.Error+": "+strings.ReplaceAll(a.Description, "\r", ""))
		case len(bytes.TrimSpace(body)) > 0 && len(body) < 300:
			msg += ": " + string(bytes.TrimSpace(body))
		}
		return accessToken{}, resp.StatusCode, resp.Header, &statusError{msg: msg, header: resp.Header, oauthError: jerr == nil && a.Error != ""}
	}
	if jerr != nil {
		return accessToken{}, resp.StatusCode, resp.Header, fmt.Errorf("%s: the answer is not a token: %v", what, jerr)
	}
	t, err := a.accessToken(time.Now())
	if err != nil {
		return accessToken{}, resp.StatusCode, resp.Header, fmt.Errorf("%s: %w", what, err)
	}
	return t, resp.StatusCode, resp.Header, nil
}

// statusError is a token endpoint's answer other than 200.
type statusError struct {
	msg        string
	header     http.Header
	oauthError bool // the body is JSON with an "error" field
}

func (e *statusError) Error() string { return e.msg }

// azureIMDS says whether the answer looks like Azure's instance metadata
// service's own rather than another cloud's at the same address.
func (e *statusError) azureIMDS() bool {
	return e.oauthError || strings.HasPrefix(strings.ToUpper(e.header.Get("Server")), "IMDS")
}

// loginClient talks to Entra ID (through HTTPS_PROXY if set).
var loginClient = &http.Client{Transport: http.DefaultTransport, CheckRedirect: stopRedirect}

// authority is Entra ID's token endpoint for tenant: AZURE_AUTHORITY_HOST
// or the public cloud's. Secrets go there, so plain http is allowed only to
// this machine (tests).
func authority(tenant string) (string, error) {
	if tenant == "" || strings.Trim(tenant, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.") != "" {
		return "", fmt.Errorf("AZURE_TENANT_ID %q is not a tenant ID or domain", tenant)
	}
	host := os.Getenv("AZURE_AUTHORITY_HOST")
	if host == "" {
		host = "https://login.microsoftonline.com/"
	}
	u, err := url.Parse(host)
	if err != nil || u.Host == "" || (u.Scheme != "https" && !(u.Scheme == "http" && loopback(u.Hostname()))) {
		return "", fmt.Errorf("AZURE_AUTHORITY_HOST %q is not an https URL", host)
	}
	return strings.TrimRight(host, "/") + "/" + tenant + "/oauth2/v2.0/token", nil
}

func loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// clientCredentials asks Entra ID for a token with the client credentials
// grant; form carries the client's secret or assertion.
func clientCredentials(ctx context.Context, endpoint, clientID, scope string, form url.Values) (accessToken, error) {
	form.Set("grant_type", "client_credentials")
	form.Set("client_id", clientID)
	form.Set("scope", scope)
	body := form.Encode()
	t, _, err := fetchToken(ctx, loginClient, func(ctx context.Context) (*http.Request, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(body))
		if err == nil {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.Header.Set("Accept", "application/json")
		}
		return req, err
	}, "Entra ID")
	return t, err
}

const jwtBearer = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// environmentSource is a service principal from AZURE_* variables.
type environmentSource struct {
	tenant, clientID, secret string
	certPath, certPassword   string
	sendChain                bool
	missing                  string // why it is not set up, if not

	mu   sync.Mutex
	cert *certificate // loaded on first use
}

func newEnvironmentSource() *environmentSource {
	e := &environmentSource{
		tenant:       os.Getenv("AZURE_TENANT_ID"),
		clientID:     os.Getenv("AZURE_CLIENT_ID"),
		secret:       os.Getenv("AZURE_CLIENT_SECRET"),
		certPath:     os.Getenv("AZURE_CLIENT_CERTIFICATE_PATH"),
		certPassword: os.Getenv("AZURE_CLIENT_CERTIFICATE_PASSWORD"),
	}
	e.sendChain, _ = strconv.ParseBool(os.Getenv("AZURE_CLIENT_SEND_CERTIFICATE_CHAIN"))
	var unset []string
	for _, v := range []struct{ name, value string }{{"AZURE_TENANT_ID", e.tenant}, {"AZURE_CLIENT_ID", e.clientID}} {
		if v.value == "" {
			unset = append(unset, v.name)
		}
	}
	if e.secret == "" && e.certPath == "" {
		unset = append(unset, "AZURE_CLIENT_SECRET or AZURE_CLIENT_CERTIFICATE_PATH")
	}
	if len(unset) > 0 {
		e.missing = strings.Join(unset, ", ") + " not set"
	}
	return e
}

func (e *environmentSource) name() string { return "environment" }

func (e *environmentSource) token(ctx context.Context, scope string) (accessToken, error) {
	if e.missing != "" {
		return accessToken{}, notSetUp("%s", e.missing)
	}
	endpoint, err := authority(e.tenant)
	if err != nil {
		return accessToken{}, err
	}
	form := url.Values{}
	if e.secret != "" {
		form.Set("client_secret", e.secret)
	} else {
		cert, err := e.certificate()
		if err != nil {
			return accessToken{}, err
		}
		a, err := cert.assertion(e.clientID, endpoint, time.Now(), e.sendChain)
		if err != nil {
			return accessToken{}, err
		}
		form.Set("client_assertion_type", jwtBearer)
		form.Set("client_assertion", a)
	}
	return clientCredentials(ctx, endpoint, e.clientID, scope, form)
}

func (e *environmentSource) certificate() (*certificate, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.cert == nil {
		c, err := loadCertificate(e.certPath, e.certPassword)
		if err != nil {
			return nil, fmt.Errorf("AZURE_CLIENT_CERTIFICATE_PATH: %w", err)
		}
		e.cert = c
	}
	return e.cert, nil
}

// workloadSource is Kubernetes workload identity: the projected service
// account token is the client assertion. The file is read for every token
// because the kubelet rotates it.
type workloadSource struct {
	tenant, clientID, file string
}

func newWorkloadSource() *workloadSource {
	return &workloadSource{os.Getenv("AZURE_TENANT_ID"), os.Getenv("AZURE_CLIENT_ID"), os.Getenv("AZURE_FEDERATED_TOKEN_FILE")}
}

func (w *workloadSource) name() string { return "workload identity" }

func (w *workloadSource) token(ctx context.Context, scope string) (accessToken, error) {
	if w.file == "" || w.tenant == "" || w.clientID == "" {
		return accessToken{}, notSetUp("AZURE_FEDERATED_TOKEN_FILE, AZURE_CLIENT_ID and AZURE_TENANT_ID not all set")
	}
	endpoint, err := authority(w.tenant)
	if err != nil {
		return accessToken{}, err
	}
	b, err := readLimited(w.file, maxTokenBody)
	if err != nil {
		return accessToken{}, fmt.Errorf("AZURE_FEDERATED_TOKEN_FILE: %w", err)
	}
	assertion := strings.TrimSpace(string(b))
	if assertion == "" {
		return accessToken{}, fmt.Errorf("AZURE_FEDERATED_TOKEN_FILE %s is empty", w.file)
	}
	return clientCredentials(ctx, endpoint, w.clientID, scope, url.Values{
		"client_assertion_type": {jwtBearer},
		"client_assertion":      {assertion},
	})
}

func readLimited(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err == nil && int64(len(b)) > limit {
		return nil, fmt.Errorf("%s is larger than %d bytes", path, limit)
	}
	return b, err
}

const (
	imdsHost       = "http://169.254.169.254"
	imdsPath       = "/metadata/identity/oauth2/token"
	imdsAPIVersion = "2018-02-01"
	appServiceAPI  = "2019-08-01"
	// imdsConnectTimeout: IMDS answers a connection at once on Azure; off
	// Azure, nothing may answer at all, and the chain should move on
	// quickly to the Azure CLI.
	imdsConnectTimeout = time.Second
	// imdsBackoff is the first wait before asking IMDS again after a 404
	// or 410; it doubles, up to 10 times itself.
	imdsBackoff = time.Second
	// imdsNotFoundRetries: a 404 is asked again this many times (waits of
	// 1, 2 and 4 s), as MSAL does.
	imdsNotFoundRetries = 3
	// imdsGoneFor bounds the waits for IMDS to stop answering 410, which
	// Azure's guidance puts at 70 s.
	imdsGoneFor = 70 * time.Second
)

// managedIdentitySource is the identity of the Azure resource this runs
// on: App Service's local endpoint if its variables are set, else the
// instance metadata service of a VM or scale set.
type managedIdentitySource struct {
	clientID         string // a user-assigned identity's client ID, or ""
	endpoint, header string // App Service
	imds             string
	http             *http.Client
	// IMDS's 404 and 410 retries (see imdsToken); tests shorten them.
	imdsBackoff, imdsGoneFor time.Duration
}

func newManagedIdentitySource(clientID string) *managedIdentitySource {
	m := &managedIdentitySource{
		clientID: clientID,
		endpoint: os.Getenv("IDENTITY_ENDPOINT"),
		header:   os.Getenv("IDENTITY_HEADER"),
		imds:     imdsHost,
	}
	if h := os.Getenv("AZURE_POD_IDENTITY_AUTHORITY_HOST"); h != "" {
		m.imds = strings.TrimRight(h, "/")
	}
	if m.endpoint == "" || m.header == "" {
		m.endpoint, m.header = "", ""
	}
	// These endpoints are on the machine or link-local: never through a
	// proxy, and a short connect timeout.
	m.http = &http.Client{Transport: &http.Transport{
		Proxy:       nil,
		DialContext: (&net.Dialer{Timeout: imdsConnectTimeout}).DialContext,
	}, CheckRedirect: stopRedirect}
	m.imdsBackoff, m.imdsGoneFor = imdsBackoff, imdsGoneFor
	return m
}

func (m *managedIdentitySource) name() string { return "managed identity" }

func (m *managedIdentitySource) token(ctx context.Context, scope string) (accessToken, error) {
	q := url.Values{"resource": {resourceOf(scope)}}
	if m.endpoint != "" {
		q.Set("api-version", appServiceAPI)
		if m.clientID != "" {
			q.Set("client_id", m.clientID)
		}
		u := m.endpoint + "?" + q.Encode()
		t, _, err := fetchToken(ctx, m.http, func(ctx context.Context) (*http.Request, error) {
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
			if err == nil {
				req.Header.Set("X-IDENTITY-HEADER", m.header)
			}
			return req, err
		}, "the App Service identity endpoint (IDENTITY_ENDPOINT)")
		return t, err
	}
	q.Set("api-version", imdsAPIVersion)
	if m.clientID != "" {
		q.Set("client_id", m.clientID)
	}
	u := m.imds + imdsPath + "?" + q.Encode()
	t, status, err := m.imdsToken(ctx, u)
	switch {
	case err == nil:
		return t, nil
	case ctx.Err() != nil:
		return accessToken{}, err
	case status == 0:
		// Nothing answered: not an Azure VM.
		return accessToken{}, notSetUp("no instance metadata service at %s", strings.TrimPrefix(m.imds, "http://"))
	case status == http.StatusBadRequest && m.clientID != "":
		return accessToken{}, fmt.Errorf("the user-assigned identity with client ID %s (AZURE_CLIENT_ID) is not assigned to this VM", m.clientID)
	}
	// Something answered that is not a usable identity (none assigned, or
	// another cloud's metadata service at the same address): move on.
	return accessToken{}, notSetUp("%s", oneLine(err.Error()))
}

// imdsToken asks IMDS for a token at u. Besides fetchToken's retries of
// 429 and 5xx, it waits out the 404 and 410 that Azure's IMDS answers for
// a while after the VM boots or an identity is assigned to it (as MSAL
// does: 410 for up to imdsGoneFor in all, 404 imdsNotFoundRetries times,
// with doubling waits).
//
// Other clouds answer at the same address, and AWS's answers the Azure
// path 404: that must not stall the chain on its way to the Azure CLI. So
// a 404 is retried only if it looks like Azure IMDS's own: a JSON body with
// an "error" field (IMDS's error answers all have one; AWS and GCP answer
// HTML or plain text), or a "Server: IMDS/..." header. A 410 is retried
// whatever its body: it is IMDS's "being updated" answer, not what other
// metadata services say for a path they do not know.
func (m *managedIdentitySource) imdsToken(ctx context.Context, u string) (accessToken, int, error) {
	newReq := func(ctx context.Context) (*http.Request, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err == nil {
			req.Header.Set("Metadata", "true")
		}
		return req, err
	}
	var notFound int
	var waited time.Duration
	for attempt := 0; ; attempt++ {
		t, status, err := fetchToken(ctx, m.http, newReq, "the instance metadata service")
		if err == nil || ctx.Err() != nil {
			return t, status, err
		}
		delay := min(m.imdsBackoff<<min(attempt, 16), 10*m.imdsBackoff)
		var se *statusError
		switch {
		case status == http.StatusGone:
			if waited+delay > m.imdsGoneFor {
				return t, status, err
			}
		case status == http.StatusNotFound && errors.As(err, &se) && se.azureIMDS():
			if notFound == imdsNotFoundRetries {
				return t, status, err
			}
			notFound++
		default:
			return t, status, err
		}
		if serr := sleep(ctx, delay); serr != nil {
			return accessToken{}, status, err
		}
		waited += delay
	}
}

// cliTimeout bounds `az`, which starts Python and may refresh its token
// over the network.
const cliTimeout = 20 * time.Second

// cliSource is the Azure CLI's signed-in account.
type cliSource struct{ timeout time.Duration }

func (c *cliSource) name() string { return "Azure CLI" }

func (c *cliSource) token(ctx context.Context, scope string) (accessToken, error) {
	az, err := exec.LookPath("az")
	if err != nil {
		return accessToken{}, notSetUp("az is not on PATH")
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, az, "account", "get-access-token", "--output", "json", "--resource", resourceOf(scope))
	var stdout, stderr limitedBuffer
	stdout.limit, stderr.limit = maxTokenBody, 64<<10
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	// Not the current directory, where an az.cmd could be planted.
	cmd.Dir = os.TempDir()
	cmd.WaitDelay = time.Second
	if err := cmd.Run(); err != nil {
		if ctx.Err() == context.DeadlineExceeded {
			return accessToken{}, notSetUp("az account get-access-token took longer than %s", c.timeout)
		}
		msg := oneLine(strings.TrimPrefix(strings.TrimSpace(stderr.String()), "ERROR: "))
		if msg == "" {
			msg = err.Error()
		}
		// Not signed in, or signed out: the usual case on a server.
		return accessToken{}, notSetUp("az account get-access-token: %s", msg)
	}
	var out struct {
		AccessToken string `json:"accessToken"`
		ExpiresOn   string `json:"expiresOn"`  // local time, all versions
		ExpiresOnTS int64  `json:"expires_on"` // Unix time, az 2.54 and later
	}
	if err := json.Unmarshal(stdout.Bytes(), &out); err != nil || out.AccessToken == "" {
		return accessToken{}, notSetUp("az account get-access-token printed no token")
	}
	t := accessToken{token: out.AccessToken, expires: time.Unix(out.ExpiresOnTS, 0)}
	if out.ExpiresOnTS == 0 {
		if t.expires, err = time.ParseInLocation("2006-01-02 15:04:05.999999", out.ExpiresOn, time.Local); err != nil {
			return accessToken{}, fmt.Errorf("az account get-access-token: expiresOn %q: %v", out.ExpiresOn, err)
		}
	}
	return t, nil
}

// limitedBuffer keeps the first limit bytes written to it.
type limitedBuffer struct {
	bytes.Buffer
	limit int
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	if room := b.limit - b.Len(); room > 0 {
		b.Buffer.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}
