package azure

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// The REST side of Azure Resource Manager that this package needs: GET an
// NSG, PUT and DELETE one of its security rules, and wait for those
// long-running operations. Written against the HTTP API rather than the SDK
// so that the binary carries no Azure SDK (see the package comment).

// apiVersion is the Microsoft.Network API version, the one armnetwork/v9
// (v9.0.0) speaks; the request and response shapes below are its.
const apiVersion = "2025-05-01"

const (
	defaultEndpoint = "https://management.azure.com"
	// maxARMBody bounds what is read from ARM: an NSG with the maximum of
	// 1000 rules is well under a megabyte.
	maxARMBody = 16 << 20
	// requestTimeout bounds one HTTP exchange, whatever client is used.
	requestTimeout = 60 * time.Second
	// maxAttempts for a request answered 429 or 5xx, or not answered.
	maxAttempts = 4
	// maxRetryAfter caps a server's Retry-After, so that a bad header
	// cannot park the command for hours.
	maxRetryAfter = 30 * time.Second
	// maxOperation bounds the wait for a rule change, which takes seconds,
	// so that a stuck operation cannot hang provisioning for ever.
	maxOperation = 10 * time.Minute
)

// ResponseError is an error answer from Azure Resource Manager, or a
// long-running operation that ended Failed or Canceled.
type ResponseError struct {
	StatusCode int    // HTTP status of the answer
	Code       string // ARM's error code, e.g. AuthorizationFailed
	Message    string
	Method     string
	URL        string // without the query
}

func (e *ResponseError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "Azure Resource Manager: %s %s: HTTP %d", e.Method, e.URL, e.StatusCode)
	if e.Code != "" {
		b.WriteString(" " + e.Code)
	}
	if e.Message != "" {
		b.WriteString(": " + e.Message)
	}
	return b.String()
}

// tokenError is a failure to get a token for ARM; explain makes it the
// credentials sentence.
type tokenError struct{ err error }

func (e *tokenError) Error() string { return e.err.Error() }
func (e *tokenError) Unwrap() error { return e.err }

// armClient sends requests to ARM with a bearer token, retrying what is
// worth retrying.
type armClient struct {
	endpoint *url.URL // scheme and host of ARM
	scope    string   // the token scope, endpoint + "/.default"
	cred     TokenSource
	http     *http.Client
	poll     time.Duration // between polls of a long-running operation
	backoff  time.Duration // first retry delay; doubles
}

func newARMClient(endpoint string, cred TokenSource, hc *http.Client, poll time.Duration) (*armClient, error) {
	u, err := url.Parse(strings.TrimRight(endpoint, "/"))
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("the Azure Resource Manager endpoint %q is not an http(s) URL", endpoint)
	}
	// Bearer tokens go there: plain http only to this machine (tests,
	// local emulators), never across a network.
	if u.Scheme == "http" && !loopback(u.Hostname()) {
		return nil, fmt.Errorf("the Azure Resource Manager endpoint %q is plain http, which would send access tokens unencrypted; use https", endpoint)
	}
	if hc == nil {
		hc = &http.Client{Transport: http.DefaultTransport}
	}
	hc = noRedirects(hc)
	return &armClient{
		endpoint: &url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path},
		scope:    u.Scheme + "://" + u.Host + u.Path + "/.default",
		cred:     cred,
		http:     hc,
		poll:     poll,
		backoff:  800 * time.Millisecond,
	}, nil
}

// resourceURL is the URL of the resource at the path made of segments
// (escaped one by one), with the api-version.
func (c *armClient) resourceURL(segments ...string) string {
	u := *c.endpoint
	var p strings.Builder
	for _, s := range segments {
		p.WriteString("/" + url.PathEscape(s))
	}
	u.RawPath = strings.TrimRight(c.endpoint.EscapedPath(), "/") + p.String()
	u.Path, _ = url.PathUnescape(u.RawPath)
	u.RawQuery = url.Values{"api-version": {apiVersion}}.Encode()
	return u.String()
}

type armResponse struct {
	status int
	header http.Header
	body   []byte
	method string
	url    string
}

// err is the answer as a *ResponseError if it is not a success.
func (r *armResponse) err() error {
	if r.status >= 200 && r.status < 300 {
		return nil
	}
	re := &ResponseError{StatusCode: r.status, Method: r.method, URL: r.url}
	var body struct {
		Error *struct{ Code, Message string } `json:"error"`
		Code  string                          `json:"code"`
		Msg   string                          `json:"message"`
	}
	if json.Unmarshal(r.body, &body) == nil {
		if body.Error != nil {
			re.Code, re.Message = body.Error.Code, body.Error.Message
		} else {
			re.Code, re.Message = body.Code, body.Msg
		}
	}
	// The header is what ARM's own SDK trusts first.
	if h := r.header.Get("x-ms-error-code"); h != "" {
		re.Code = h
	}
	if re.Message == "" && re.Code == "" {
		re.Message = http.StatusText(r.status)
	}
	return re
}

// send does one ARM request, retrying transport failures, 429 and the
// transient 5xx answers with back-off (or the server's Retry-After). The
// last answer is returned whatever its status; only failures to get an
// answer at all are errors.
func (c *armClient) send(ctx context.Context, method, rawURL string, body []byte) (*armResponse, error) {
	var lastErr error
	for attempt := 1; ; attempt++ {
		resp, err := c.once(ctx, method, rawURL, body)
		var te *tokenError
		switch {
		case errors.As(err, &te):
			return nil, err
		case ctx.Err() != nil:
			return nil, ctx.Err()
		case err == nil && !retriable(resp.status):
			return resp, nil
		}
		lastErr = err
		if attempt == maxAttempts {
			if err != nil {
				return nil, lastErr
			}
			return resp, nil
		}
		delay := c.backoff << (attempt - 1)
		delay += rand.N(delay/4 + 1) // so that many agents do not retry in step
		if resp != nil {
			if ra, ok := retryAfter(resp.header); ok {
				delay = ra
			}
		}
		if err := sleep(ctx, delay); err != nil {
			return nil, err
		}
	}
}

func retriable(status int) bool {
	switch status {
	case http.StatusTooManyRequests, http.StatusInternalServerError, http.StatusBadGateway,
		http.StatusServiceUnavailable, http.StatusGatewayTimeout, http.StatusRequestTimeout:
		return true
	}
	return false
}

// retryAfter reads the server's wait: retry-after-ms or x-ms-retry-after-ms
// (milliseconds, which ARM sends and its SDK prefers), else Retry-After
// (seconds or an HTTP date), capped. A wait of zero or less (Retry-After: 0,
// a date in the past) is no wait at all and is not taken: ok is false, so
// that the caller keeps its own back-off or poll frequency rather than
// asking again at once.
func retryAfter(h http.Header) (time.Duration, bool) {
	for _, name := range []string{"retry-after-ms", "x-ms-retry-after-ms"} {
		if n, err := strconv.ParseInt(strings.TrimSpace(h.Get(name)), 10, 64); err == nil && n > 0 {
			return min(time.Duration(min(n, int64(maxRetryAfter/time.Millisecond)))*time.Millisecond, maxRetryAfter), true
		}
	}
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0, false
	}
	var d time.Duration
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		d = time.Duration(min(n, int64(maxRetryAfter/time.Second))) * time.Second
	} else if t, err := http.ParseTime(v); err == nil {
		d = time.Until(t)
	} else {
		return 0, false
	}
	if d <= 0 {
		return 0, false
	}
	return min(d, maxRetryAfter), true
}

// noRedirects is hc, or a copy of it, that does not follow redirects: Go's
// default policy would forward custom secret headers (X-IDENTITY-HEADER,
// Metadata) and request bodies to whatever host a redirect names. Neither
// ARM nor the token endpoints redirect, so a redirect surfaces as the
// error answer it is. A client that already has its own policy is kept.
func noRedirects(hc *http.Client) *http.Client {
	if hc.CheckRedirect != nil {
		return hc
	}
	c := *hc
	c.CheckRedirect = stopRedirect
	return &c
}

func stopRedirect(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func (c *armClient) once(ctx context.Context, method, rawURL string, body []byte) (*armResponse, error) {
	token, _, err := c.cred.Token(ctx, c.scope)
	if err != nil {
		return nil, &tokenError{err}
	}
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, rawURL, rd)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxARMBody+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxARMBody {
		return nil, fmt.Errorf("Azure Resource Manager: %s %s: the answer is larger than %d bytes", method, stripQuery(rawURL), maxARMBody)
	}
	return &armResponse{status: resp.StatusCode, header: resp.Header, body: b, method: method, url: stripQuery(rawURL)}, nil
}

func stripQuery(u string) string {
	u, _, _ = strings.Cut(u, "?")
	return u
}

// get GETs rawURL into out (a pointer to a JSON-decodable value).
func (c *armClient) get(ctx context.Context, rawURL string, out any) error {
	resp, err := c.send(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return err
	}
	if err := resp.err(); err != nil {
		return err
	}
	if err := json.Unmarshal(resp.body, out); err != nil {
		return fmt.Errorf("Azure Resource Manager: GET %s: %w", resp.url, err)
	}
	return nil
}

// put PUTs v as JSON to rawURL and waits until the change is done.
func (c *armClient) put(ctx context.Context, rawURL string, v any) error {
	body, err := json.Marshal(v)
	if err != nil {
		return err
	}
	resp, err := c.send(ctx, http.MethodPut, rawURL, body)
	if err != nil {
		return err
	}
	if err := resp.err(); err != nil {
		return err
	}
	return c.wait(ctx, resp, rawURL)
}

// delete DELETEs rawURL and waits until it is gone. A 404, at first or
// while waiting, is a *ResponseError the caller may take as done.
func (c *armClient) delete(ctx context.Context, rawURL string) error {
	resp, err := c.send(ctx, http.MethodDelete, rawURL, nil)
	if err != nil {
		return err
	}
	if err := resp.err(); err != nil {
		return err
	}
	return c.wait(ctx, resp, "")
}

// wait follows a long-running operation started by resp, as ARM's
// protocol has it: the Azure-AsyncOperation URL if given (its status
// field), else the Location URL (202 until done), else, for a PUT answered
// with a provisioningState still under way, the resource itself.
func (c *armClient) wait(ctx context.Context, resp *armResponse, resourceURL string) error {
	wctx, cancel := context.WithTimeout(ctx, maxOperation)
	defer cancel()
	err := c.follow(wctx, resp, resourceURL)
	if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
		return fmt.Errorf("Azure Resource Manager: %s %s: the operation had not finished after %s", resp.method, resp.url, maxOperation)
	}
	return err
}

func (c *armClient) follow(ctx context.Context, resp *armResponse, resourceURL string) error {
	if u := resp.header.Get("Azure-AsyncOperation"); u != "" {
		return c.pollAsync(ctx, u, resp.header)
	}
	if u := resp.header.Get("Location"); u != "" && resp.status == http.StatusAccepted {
		return c.pollLocation(ctx, u, resp.header)
	}
	if resourceURL != "" && (resp.status == http.StatusCreated || resp.status == http.StatusOK) {
		if state := provisioningState(resp.body); state != "" && !terminal(state) {
			return c.pollResource(ctx, resourceURL, resp.header)
		}
	}
	return nil
}

func terminal(state string) bool {
	return strings.EqualFold(state, "Succeeded") || failed(state)
}

func failed(state string) bool {
	return strings.EqualFold(state, "Failed") || strings.EqualFold(state, "Canceled") || strings.EqualFold(state, "Cancelled")
}

func provisioningState(body []byte) string {
	var v struct {
		Properties struct {
			ProvisioningState string `json:"provisioningState"`
		} `json:"properties"`
	}
	_ = json.Unmarshal(body, &v)
	return v.Properties.ProvisioningState
}

// pollURL checks that a URL from a header is ARM's own before the token
// is sent there.
func (c *armClient) pollURL(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != c.endpoint.Scheme || !strings.EqualFold(u.Host, c.endpoint.Host) {
		return "", fmt.Errorf("Azure Resource Manager gave an operation status URL %q outside %s", raw, c.endpoint.Scheme+"://"+c.endpoint.Host)
	}
	return u.String(), nil
}

// pause waits before the next poll: the server's Retry-After if given
// and positive, else the poll frequency.
func (c *armClient) pause(ctx context.Context, h http.Header) error {
	d := c.poll
	if ra, ok := retryAfter(h); ok {
		d = ra
	}
	return sleep(ctx, d)
}

// pollUntil GETs u, after each pause, until over reports the operation
// finished (with its error, if it failed). over may name the URL to poll
// next (Location moves on); it is kept to ARM's own host.
func (c *armClient) pollUntil(ctx context.Context, u string, h http.Header, over func(*armResponse) (done bool, next string, err error)) error {
	for {
		if err := c.pause(ctx, h); err != nil {
			return err
		}
		resp, err := c.send(ctx, http.MethodGet, u, nil)
		if err != nil {
			return err
		}
		if err := resp.err(); err != nil {
			return err
		}
		done, next, err := over(resp)
		if done || err != nil {
			return err
		}
		h = resp.header
		if next != "" {
			if u, err = c.pollURL(next); err != nil {
				return err
			}
		}
	}
}

// pollAsync follows Azure-AsyncOperation: a status document.
func (c *armClient) pollAsync(ctx context.Context, raw string, h http.Header) error {
	u, err := c.pollURL(raw)
	if err != nil {
		return err
	}
	return c.pollUntil(ctx, u, h, func(resp *armResponse) (bool, string, error) {
		var op struct {
			Status string `json:"status"`
			Error  *struct {
				Code, Message string
			} `json:"error"`
		}
		if err := json.Unmarshal(resp.body, &op); err != nil {
			return true, "", fmt.Errorf("Azure Resource Manager: GET %s: %w", resp.url, err)
		}
		switch {
		case strings.EqualFold(op.Status, "Succeeded"):
			return true, "", nil
		case failed(op.Status):
			re := &ResponseError{StatusCode: resp.status, Code: op.Status, Message: "the operation ended " + op.Status, Method: http.MethodGet, URL: resp.url}
			if op.Error != nil {
				re.Code, re.Message = op.Error.Code, op.Error.Message
			}
			return true, "", re
		}
		return false, "", nil
	})
}

// pollLocation follows Location: 202 until the operation is over.
func (c *armClient) pollLocation(ctx context.Context, raw string, h http.Header) error {
	u, err := c.pollURL(raw)
	if err != nil {
		return err
	}
	return c.pollUntil(ctx, u, h, func(resp *armResponse) (bool, string, error) {
		if resp.status != http.StatusAccepted {
			return true, "", nil
		}
		return false, resp.header.Get("Location"), nil
	})
}

// pollResource watches the resource's own provisioningState.
func (c *armClient) pollResource(ctx context.Context, u string, h http.Header) error {
	return c.pollUntil(ctx, u, h, func(resp *armResponse) (bool, string, error) {
		state := provisioningState(resp.body)
		switch {
		case state == "" || strings.EqualFold(state, "Succeeded"):
			return true, "", nil
		case failed(state):
			return true, "", &ResponseError{StatusCode: resp.status, Code: state, Message: "the change ended " + state, Method: http.MethodGet, URL: resp.url}
		}
		return false, "", nil
	})
}
