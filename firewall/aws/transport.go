package aws

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Deadlines and limits of every call this package makes, in one place.
const (
	// apiTimeout bounds one attempt of an EC2, STS, SSO or container call.
	apiTimeout = 30 * time.Second
	// apiAttempts is how often a throttled, 5xx or dropped call is tried,
	// as the SDK's standard retryer does.
	apiAttempts = 3
	// retryBackoff is the first pause between attempts; it doubles.
	retryBackoff = 200 * time.Millisecond
	// ruleSettle is how long DescribeSecurityGroups may still show the
	// rules as they were before a change: the EC2 API is eventually
	// consistent, so the read-back after an open or close waits this long
	// before it calls the change missing.
	ruleSettle = 30 * time.Second
	// imdsConnectTimeout is short: off EC2 nothing answers at
	// 169.254.169.254 and the chain must fail fast.
	imdsConnectTimeout = time.Second
	// imdsTimeout bounds one metadata (or local container endpoint) call.
	imdsTimeout = 5 * time.Second
	// imdsTokenTTL is the IMDSv2 session length; a run needs seconds.
	imdsTokenTTL = "300"
	// processTimeout bounds a profile's credential_process.
	processTimeout = time.Minute
	// maxAPIResponse bounds an EC2 or STS answer (a page of groups with
	// many rules is well under 1 MB).
	maxAPIResponse = 16 << 20
	// maxSmallResponse bounds metadata, credential documents and the
	// output of credential_process.
	maxSmallResponse = 64 << 10
)

// apiHTTP talks to AWS's public endpoints, through a proxy if the
// environment names one (HTTPS_PROXY, NO_PROXY), as the SDK does.
var apiHTTP = &http.Client{Timeout: apiTimeout, CheckRedirect: noRedirects}

// localHTTP talks to the link-local metadata and container endpoints: never
// through a proxy, and quick to give up when nothing is there.
var localHTTP = &http.Client{
	Timeout:       imdsTimeout,
	CheckRedirect: noRedirects,
	Transport: &http.Transport{
		Proxy:                 nil,
		DialContext:           (&net.Dialer{Timeout: imdsConnectTimeout}).DialContext,
		ResponseHeaderTimeout: imdsTimeout,
		MaxIdleConns:          2,
		IdleConnTimeout:       30 * time.Second,
	},
}

// noRedirects: no AWS API this package calls redirects, and following one
// would carry the session token or SSO bearer token (headers Go does not
// strip) to another host, and replay a signed POST on a 307. The redirect
// answer is returned as it is, and fails as any unexpected status does.
func noRedirects(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

const userAgent = "tentacle-firewall-aws"

// exchange sends the request build makes and reads the answer's body up to
// limit. With retry, throttling, 5xx answers and failed connections are
// tried again; build runs once per attempt so each is signed afresh.
func exchange(ctx context.Context, c *http.Client, build func() (*http.Request, error), limit int64, retry bool) (*http.Response, []byte, error) {
	attempts := 1
	if retry {
		attempts = apiAttempts
	}
	pause := retryBackoff
	for attempt := 1; ; attempt++ {
		req, err := build()
		if err != nil {
			return nil, nil, err
		}
		req = req.WithContext(ctx)
		req.Header.Set("User-Agent", userAgent)
		resp, body, err := roundTrip(c, req, limit)
		again := err != nil && ctx.Err() == nil
		if err == nil {
			again = resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests || throttled(body)
		}
		if !again || attempt >= attempts {
			return resp, body, err
		}
		// Full jitter, as AWS recommends, so parallel runs spread out.
		wait := time.Duration(rand.Int64N(int64(pause))) + pause/2
		pause *= 2
		select {
		case <-ctx.Done():
			return nil, nil, ctx.Err()
		case <-time.After(wait):
		}
	}
}

func roundTrip(c *http.Client, req *http.Request, limit int64) (*http.Response, []byte, error) {
	resp, err := c.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, nil, err
	}
	if int64(len(body)) > limit {
		return nil, nil, fmt.Errorf("the answer of %s is larger than %d bytes", req.URL.Host, limit)
	}
	return resp, body, nil
}

// throttled reports an EC2/STS throttling answer, which comes as a 400.
func throttled(body []byte) bool {
	s := string(body)
	return strings.Contains(s, "<Code>RequestLimitExceeded</Code>") || strings.Contains(s, "<Code>Throttling</Code>") ||
		strings.Contains(s, "<Code>ThrottlingException</Code>") || strings.Contains(s, "<Code>PriorRequestNotComplete</Code>")
}

// shortError is the part of err a user can act on: AWS's own message, or
// a network error without the request's URL in front.
func shortError(err error) string {
	var ae *apiError
	if errors.As(err, &ae) && ae.Message != "" {
		return strings.TrimSuffix(ae.Message, ".")
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		host := ue.URL
		if u, perr := url.Parse(ue.URL); perr == nil {
			host = u.Host
		}
		return strings.TrimSuffix(host+": "+ue.Err.Error(), ".")
	}
	return strings.TrimSuffix(err.Error(), ".")
}
