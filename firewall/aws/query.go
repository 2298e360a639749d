package aws

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	awssdk "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/smithy-go"
)

// ec2Query sends EC2 Query API calls (form-encoded POST, XML answers) for
// the three operations this package needs. Everything around a request is
// the SDK's: configuration, endpoint settings, credentials (cached and
// refreshed when they expire), the HTTP client (ca_bundle, proxies), the v4
// signer and the retryer (AWS_MAX_ATTEMPTS, retry_mode, throttling,
// connection errors). Only the request and answer shapes are ours:
// service/ec2 would bring them too, but it cost ~107 CPU-seconds to compile
// for every platform the release and CI build, over a third of the program's
// whole compile then (299 CPU-s; 192 without it), for three operations
// (docs/benchmarks.md).
type ec2Query struct {
	endpoint string
	region   string
	cfg      awssdk.Config
	signer   *v4.Signer
	retryer  awssdk.Retryer
	// skew is how far AWS's clock is ahead of ours, learnt from the Date of
	// an answer that refused a request as signed at the wrong time.
	skew time.Duration
}

// ec2APIVersion is the EC2 Query API's version (the one every EC2 SDK uses).
const ec2APIVersion = "2016-11-15"

// maxAnswer bounds one EC2 answer; a page of security groups is far smaller.
const maxAnswer = 16 << 20

func newEC2Query(ctx context.Context, cfg awssdk.Config, endpoint string) (*ec2Query, error) {
	if endpoint == "" {
		var err error
		if endpoint, err = ec2Endpoint(ctx, cfg); err != nil {
			return nil, err
		}
	}
	return &ec2Query{endpoint: endpoint, region: cfg.Region, cfg: cfg, signer: v4.NewSigner(), retryer: retryerFor(cfg)}, nil
}

// retryerFor is the retryer an SDK client would build from cfg: the
// configured one, else standard or adaptive mode with the configured
// attempts.
func retryerFor(cfg awssdk.Config) awssdk.Retryer {
	if cfg.Retryer != nil {
		return cfg.Retryer()
	}
	attempts := func(o *retry.StandardOptions) {
		if cfg.RetryMaxAttempts > 0 {
			o.MaxAttempts = cfg.RetryMaxAttempts
		}
	}
	if cfg.RetryMode == awssdk.RetryModeAdaptive {
		return retry.NewAdaptiveMode(func(o *retry.AdaptiveModeOptions) {
			o.StandardOptions = append(o.StandardOptions, attempts)
		})
	}
	return retry.NewStandard(attempts)
}

// The configuration sources LoadDefaultConfig returns (environment, shared
// config) answer these; service/ec2 asks them the same questions.
type (
	serviceEndpointSource interface {
		GetServiceBaseEndpoint(ctx context.Context, sdkID string) (string, bool, error)
	}
	ignoreEndpointsSource interface {
		GetIgnoreConfiguredEndpoints(ctx context.Context) (bool, bool, error)
	}
	fipsSource interface {
		GetUseFIPSEndpoint(ctx context.Context) (awssdk.FIPSEndpointState, bool, error)
	}
	dualStackSource interface {
		GetUseDualStackEndpoint(ctx context.Context) (awssdk.DualStackEndpointState, bool, error)
	}
)

// ec2Endpoint is where EC2 calls go, in the SDK's order: EC2's own
// endpoint_url (AWS_ENDPOINT_URL_EC2, a profile's services section) unless
// configured endpoints are ignored, then the global one (AWS_ENDPOINT_URL,
// endpoint_url), then the region's, FIPS and dual-stack as configured.
func ec2Endpoint(ctx context.Context, cfg awssdk.Config) (string, error) {
	ignore := false
	for _, s := range cfg.ConfigSources {
		if p, ok := s.(ignoreEndpointsSource); ok {
			if v, found, err := p.GetIgnoreConfiguredEndpoints(ctx); err == nil && found {
				ignore = v
				break
			}
		}
	}
	if !ignore {
		for _, s := range cfg.ConfigSources {
			if p, ok := s.(serviceEndpointSource); ok {
				if v, found, err := p.GetServiceBaseEndpoint(ctx, "EC2"); err != nil {
					return "", err
				} else if found {
					return v, nil
				}
			}
		}
	}
	if cfg.BaseEndpoint != nil && *cfg.BaseEndpoint != "" {
		return *cfg.BaseEndpoint, nil
	}
	var fips, dualStack bool
	for _, s := range cfg.ConfigSources {
		if p, ok := s.(fipsSource); ok && !fips {
			if v, found, err := p.GetUseFIPSEndpoint(ctx); err == nil && found {
				fips = v == awssdk.FIPSEndpointStateEnabled
			}
		}
		if p, ok := s.(dualStackSource); ok && !dualStack {
			if v, found, err := p.GetUseDualStackEndpoint(ctx); err == nil && found {
				dualStack = v == awssdk.DualStackEndpointStateEnabled
			}
		}
	}
	return regionalEC2Endpoint(cfg.Region, fips, dualStack), nil
}

// regionalEC2Endpoint is EC2's endpoint in a region of AWS's partitions:
// ec2[-fips].REGION.SUFFIX, where the dual-stack (IPv4 and IPv6) suffix
// differs from the IPv4 one.
func regionalEC2Endpoint(region string, fips, dualStack bool) string {
	suffix, dual := "amazonaws.com", "api.aws"
	switch {
	case strings.HasPrefix(region, "cn-"):
		suffix, dual = "amazonaws.com.cn", "api.amazonwebservices.com.cn"
	case strings.HasPrefix(region, "us-isob-"):
		suffix, dual = "sc2s.sgov.gov", "sc2s.sgov.gov"
	case strings.HasPrefix(region, "us-isof-"):
		suffix, dual = "csp.hci.ic.gov", "csp.hci.ic.gov"
	case strings.HasPrefix(region, "us-iso-"):
		suffix, dual = "c2s.ic.gov", "c2s.ic.gov"
	case strings.HasPrefix(region, "eu-isoe-"):
		suffix, dual = "cloud.adc-e.uk", "cloud.adc-e.uk"
	}
	host := "ec2"
	if fips {
		host = "ec2-fips"
	}
	if dualStack {
		suffix = dual
	}
	return "https://" + host + "." + region + "." + suffix
}

// apiError is an error EC2 answered with. It is a smithy.APIError, and
// carries the HTTP status, so that the SDK's retryer classifies it as it
// classifies service/ec2's errors (throttling, 5xx, RequestTimeout).
type apiError struct {
	Code, Message, RequestID string
	Status                   int
}

func (e *apiError) Error() string {
	return fmt.Sprintf("api error %s: %s", e.Code, e.Message)
}
func (e *apiError) ErrorCode() string    { return e.Code }
func (e *apiError) ErrorMessage() string { return e.Message }
func (e *apiError) HTTPStatusCode() int  { return e.Status }
func (e *apiError) ErrorFault() smithy.ErrorFault {
	if e.Status >= 500 {
		return smithy.FaultServer
	}
	return smithy.FaultClient
}

// call sends one action with params and decodes the answer into out (nil:
// the answer is only checked for an error), retrying as the retryer says.
func (q *ec2Query) call(ctx context.Context, action string, params url.Values, out any) error {
	form := url.Values{"Action": {action}, "Version": {ec2APIVersion}}
	for k, v := range params {
		form[k] = v
	}
	body := []byte(form.Encode())
	sum := sha256.Sum256(body)
	payloadHash := hex.EncodeToString(sum[:])

	release := q.retryer.GetInitialToken()
	skewRetried := false
	for attempt := 1; ; attempt++ {
		answer, err := q.send(ctx, body, payloadHash)
		if err == nil {
			release(nil)
			if out == nil {
				return nil
			}
			if err := xml.Unmarshal(answer, out); err != nil {
				return fmt.Errorf("EC2 %s: reading the answer: %w", action, err)
			}
			return nil
		}
		release(err)
		if ctx.Err() != nil {
			return err
		}
		// A request signed by a clock that is off is refused once; the
		// next is signed at AWS's time, as the SDK does.
		var skew *clockSkewError
		if errors.As(err, &skew) && !skewRetried {
			skewRetried = true
			q.skew = skew.offset
			attempt--
			continue
		}
		if !q.retryer.IsErrorRetryable(err) || attempt >= q.retryer.MaxAttempts() {
			return err
		}
		delay, derr := q.retryer.RetryDelay(attempt, err)
		if derr != nil {
			return err
		}
		if release, derr = q.retryer.GetRetryToken(ctx, err); derr != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return errors.Join(err, ctx.Err())
		case <-time.After(delay):
		}
	}
}

// clockSkewError is a refusal for the time of the signature, with how far
// AWS's clock was from ours.
type clockSkewError struct {
	*apiError
	offset time.Duration
}

func (e *clockSkewError) Unwrap() error { return e.apiError }

// isSkewCode says whether code is an answer AWS gives to a request signed
// at the wrong time. (A function, not a map: no package-level work here.)
func isSkewCode(code string) bool {
	switch code {
	case "RequestTimeTooSkewed", "RequestExpired", "RequestInTheFuture", "InvalidSignatureException", "SignatureDoesNotMatch", "AuthFailure":
		return true
	}
	return false
}

// send is one attempt: sign (with credentials from the cache, which fetches
// new ones when they expire) and post.
func (q *ec2Query) send(ctx context.Context, body []byte, payloadHash string) ([]byte, error) {
	creds, err := q.cfg.Credentials.Retrieve(ctx)
	if err != nil {
		return nil, fmt.Errorf("getting AWS credentials: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(q.endpoint, "/")+"/", bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
	req.Header.Set("User-Agent", "tentacle (aws-sdk-go-v2 signer)")
	signedAt := time.Now().Add(q.skew)
	if err := q.signer.SignHTTP(ctx, creds, req, payloadHash, "ec2", q.region, signedAt); err != nil {
		return nil, err
	}
	// Errors of the connection go to the retryer as they are: it tells
	// a reset or a timeout (retried) from a refused certificate (not).
	resp, err := q.httpClient().Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return nil, fmt.Errorf("reading EC2's answer: %w", err)
	}
	if resp.StatusCode/100 == 2 {
		return answer, nil
	}
	ae := decodeError(resp.StatusCode, answer)
	if isSkewCode(ae.Code) {
		if date, err := http.ParseTime(resp.Header.Get("Date")); err == nil {
			if offset := date.Sub(time.Now()); offset > 4*time.Minute || offset < -4*time.Minute {
				return nil, &clockSkewError{apiError: ae, offset: offset}
			}
		}
	}
	return nil, ae
}

func (q *ec2Query) httpClient() awssdk.HTTPClient {
	if q.cfg.HTTPClient != nil {
		return q.cfg.HTTPClient
	}
	return http.DefaultClient
}

// decodeError reads EC2's error document:
// <Response><Errors><Error><Code/><Message/></Error></Errors><RequestID/></Response>.
func decodeError(status int, answer []byte) *apiError {
	var doc struct {
		Errors []struct {
			Code    string `xml:"Code"`
			Message string `xml:"Message"`
		} `xml:"Errors>Error"`
		RequestID string `xml:"RequestID"`
	}
	ae := &apiError{Status: status}
	if xml.Unmarshal(answer, &doc) == nil && len(doc.Errors) > 0 {
		ae.Code, ae.Message, ae.RequestID = doc.Errors[0].Code, doc.Errors[0].Message, doc.RequestID
		return ae
	}
	ae.Code = http.StatusText(status)
	if ae.Code == "" {
		ae.Code = "HTTP " + strconv.Itoa(status)
	}
	ae.Message = strings.TrimSpace(string(answer))
	if len(ae.Message) > 200 {
		ae.Message = ae.Message[:200] + "…"
	}
	return ae
}
