package aws

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
)

// The EC2 instance metadata service, version 2: a session token from a PUT,
// then GETs that carry it. Used for the instance profile's credentials,
// the region and, with --self, the instance's security groups.
// https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/configuring-instance-metadata-service.html

const defaultIMDSEndpoint = "http://169.254.169.254"

var errIMDSDisabled = errors.New("the instance metadata service is disabled by AWS_EC2_METADATA_DISABLED")

type imdsClient struct {
	endpoint string
	disabled bool
	http     *http.Client

	mu    sync.Mutex
	token string
	// v1 is set when the token call is refused as an IMDSv1-only
	// service refuses it (403, 404, 405): the SDK then goes on without.
	v1 bool
}

// newIMDS picks the endpoint: Options.IMDSEndpoint, else
// AWS_EC2_METADATA_SERVICE_ENDPOINT, else AWS's (IPv6 with
// AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE=IPv6).
func newIMDS(o Options) *imdsClient {
	c := &imdsClient{endpoint: o.IMDSEndpoint, http: localHTTP, disabled: envTrue("AWS_EC2_METADATA_DISABLED")}
	if c.endpoint == "" {
		c.endpoint = os.Getenv("AWS_EC2_METADATA_SERVICE_ENDPOINT")
	}
	if c.endpoint == "" {
		c.endpoint = defaultIMDSEndpoint
		if strings.EqualFold(os.Getenv("AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE"), "IPv6") {
			c.endpoint = "http://[fd00:ec2::254]"
		}
	}
	c.endpoint = strings.TrimSuffix(c.endpoint, "/")
	return c
}

func (c *imdsClient) session(ctx context.Context) (token string, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.token != "" || c.v1 {
		return c.token, nil
	}
	// The token's answer gets the connect timeout: where it never comes, IMDSv1
	// is tried (below), and waiting longer would only delay that.
	tokenCtx, cancel := context.WithTimeout(ctx, imdsConnectTimeout)
	defer cancel()
	resp, body, err := exchange(tokenCtx, c.http, func() (*http.Request, error) {
		req, err := http.NewRequest(http.MethodPut, c.endpoint+"/latest/api/token", nil)
		if err == nil {
			req.Header.Set("X-Aws-Ec2-Metadata-Token-Ttl-Seconds", imdsTokenTTL)
		}
		return req, err
	}, maxSmallResponse, false)
	if err != nil {
		// A token request that fails to send or whose answer never comes (a
		// container on EC2 behind one hop too many: the PUT's reply has a hop
		// limit of 1) is what the SDK falls back to IMDSv1 for; so do we,
		// unless IMDSv1 is ruled out or the caller gave up. Where nothing
		// listens, the IMDSv1 GET fails as fast as the PUT did.
		if envTrue("AWS_EC2_METADATA_V1_DISABLED") || ctx.Err() != nil {
			return "", err
		}
		// A lost answer is not waited for again in this run; another failure
		// (a reset connection) may be passing, so the next call tries IMDSv2
		// again, as the SDK does.
		if isTimeout(err) {
			c.v1 = true
		}
		return "", nil
	}
	switch resp.StatusCode {
	case http.StatusOK:
		c.token = strings.TrimSpace(string(body))
		return c.token, nil
	case http.StatusForbidden, http.StatusNotFound, http.StatusMethodNotAllowed:
		if envTrue("AWS_EC2_METADATA_V1_DISABLED") {
			return "", fmt.Errorf("%s refused the IMDSv2 token request (%s) and AWS_EC2_METADATA_V1_DISABLED rules out IMDSv1", c.endpoint, resp.Status)
		}
		c.v1 = true
		return "", nil
	}
	return "", fmt.Errorf("%s answered the IMDSv2 token request with %s", c.endpoint, resp.Status)
}

// get reads a path under /latest/ (such as "meta-data/mac").
func (c *imdsClient) get(ctx context.Context, path string) (string, error) {
	if c.disabled {
		return "", errIMDSDisabled
	}
	token, err := c.session(ctx)
	if err != nil {
		return "", err
	}
	resp, body, err := exchange(ctx, c.http, func() (*http.Request, error) {
		req, err := http.NewRequest(http.MethodGet, c.endpoint+"/latest/"+path, nil)
		if err == nil && token != "" {
			req.Header.Set("X-Aws-Ec2-Metadata-Token", token)
		}
		return req, err
	}, maxSmallResponse, false)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("%s/latest/%s: %s", c.endpoint, path, resp.Status)
	}
	return string(body), nil
}

// region is the instance's region: placement/region, else the identity
// document's (what the SDK reads).
func (c *imdsClient) region(ctx context.Context) (string, error) {
	r, err := c.get(ctx, "meta-data/placement/region")
	if err == nil && strings.TrimSpace(r) != "" {
		return strings.TrimSpace(r), nil
	}
	doc, derr := c.get(ctx, "dynamic/instance-identity/document")
	if derr != nil {
		if err == nil {
			err = derr
		}
		return "", err
	}
	var id struct {
		Region string `json:"region"`
	}
	if err := json.Unmarshal([]byte(doc), &id); err != nil || id.Region == "" {
		return "", fmt.Errorf("the instance identity document names no region")
	}
	return id.Region, nil
}

// instanceCredentials are the instance profile's role credentials.
func (c *imdsClient) instanceCredentials(ctx context.Context) (credentials, error) {
	roles, err := c.get(ctx, "meta-data/iam/security-credentials/")
	if err != nil {
		return credentials{}, err
	}
	role := strings.TrimSpace(strings.SplitN(strings.TrimSpace(roles), "\n", 2)[0])
	if role == "" {
		return credentials{}, errors.New("the instance has no instance profile (IAM role)")
	}
	doc, err := c.get(ctx, "meta-data/iam/security-credentials/"+role)
	if err != nil {
		return credentials{}, err
	}
	var v struct {
		Code, Message          string
		AccessKeyID            string `json:"AccessKeyId"`
		SecretAccessKey, Token string
	}
	if err := json.Unmarshal([]byte(doc), &v); err != nil {
		return credentials{}, fmt.Errorf("unreadable instance profile credentials: %w", err)
	}
	if v.Code != "" && v.Code != "Success" {
		return credentials{}, fmt.Errorf("instance profile %s: %s: %s", role, v.Code, v.Message)
	}
	return credentials{AccessKeyID: v.AccessKeyID, SecretAccessKey: v.SecretAccessKey, SessionToken: v.Token, Source: "the instance profile " + role}.check()
}

// isTimeout reports whether err is a request that got no answer in time.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout()
}
