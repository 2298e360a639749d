//go:build unix

package aws

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/config"

	"github.com/tentacle-go/tentacle/firewall"
)

// Where EC2 calls go when nothing names an endpoint: the region's, with the
// FIPS and dual-stack settings of the environment or the profile.
func TestEC2EndpointFromConfiguration(t *testing.T) {
	for _, c := range []struct {
		name, region string
		env          map[string]string
		profile      string
		want         string
	}{
		{name: "region", region: "eu-west-1", want: "https://ec2.eu-west-1.amazonaws.com"},
		{name: "China", region: "cn-north-1", want: "https://ec2.cn-north-1.amazonaws.com.cn"},
		{name: "FIPS from the environment", region: "us-gov-west-1", env: map[string]string{"AWS_USE_FIPS_ENDPOINT": "true"}, want: "https://ec2-fips.us-gov-west-1.amazonaws.com"},
		{name: "dual-stack from the profile", region: "eu-west-1", profile: "use_dualstack_endpoint = true\n", want: "https://ec2.eu-west-1.api.aws"},
		{name: "FIPS and dual-stack", region: "us-east-1", env: map[string]string{"AWS_USE_FIPS_ENDPOINT": "true", "AWS_USE_DUALSTACK_ENDPOINT": "true"}, want: "https://ec2-fips.us-east-1.api.aws"},
		{name: "EC2's own endpoint_url", region: "eu-west-1", env: map[string]string{"AWS_ENDPOINT_URL": "https://all.example", "AWS_ENDPOINT_URL_EC2": "https://ec2.example"}, want: "https://ec2.example"},
		{name: "the global endpoint_url", region: "eu-west-1", env: map[string]string{"AWS_ENDPOINT_URL": "https://all.example"}, want: "https://all.example"},
		{name: "configured endpoints ignored", region: "eu-west-1", env: map[string]string{"AWS_ENDPOINT_URL_EC2": "https://ec2.example", "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS": "true"}, want: "https://ec2.eu-west-1.amazonaws.com"},
	} {
		t.Run(c.name, func(t *testing.T) {
			home := isolate(t)
			writeFile(t, filepath.Join(home, "config"), "[default]\n"+c.profile)
			for k, v := range c.env {
				t.Setenv(k, v)
			}
			cfg, err := config.LoadDefaultConfig(context.Background(), config.WithRegion(c.region))
			if err != nil {
				t.Fatal(err)
			}
			got, err := ec2Endpoint(context.Background(), cfg)
			if err != nil || got != c.want {
				t.Fatalf("endpoint %q %v, want %q", got, err, c.want)
			}
		})
	}
}

// frontToMoto is an EC2 endpoint in front of moto: refuse answers a request
// itself when it returns true; the others reach moto.
func frontToMoto(t *testing.T, refuse func(http.ResponseWriter, *http.Request) bool) string {
	target, err := url.Parse(moto.endpoint)
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(target)
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !refuse(w, r) {
			proxy.ServeHTTP(w, r)
		}
	}))
	t.Cleanup(front.Close)
	return front.URL
}

// openThrough opens a port in a new group through endpoint and lists it.
func openThrough(t *testing.T, endpoint string) {
	t.Helper()
	ctx := context.Background()
	sg, err := New(ctx, Options{GroupIDs: []string{newGroup(t, "tentacles")}, Region: "us-east-1", EC2Endpoint: endpoint})
	if err != nil {
		t.Fatal(err)
	}
	rule := firewall.NewRule("", firewall.SinglePort(10933), nil)
	apply(t, sg)(sg.PlanOpen(ctx, rule))
	if rules, err := sg.List(ctx); err != nil || len(rules) != 1 {
		t.Fatalf("listed %v %v", rules, err)
	}
}

// A front to moto that answers the first requests with throttling (as EC2
// does under RequestLimitExceeded): the SDK's retryer waits and tries again,
// and the calls succeed.
func TestThrottledCallsAreRetried(t *testing.T) {
	motoEnv(t)
	var throttled atomic.Int32
	front := frontToMoto(t, func(w http.ResponseWriter, r *http.Request) bool {
		if throttled.Add(1) > 2 {
			return false
		}
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprint(w, `<Response><Errors><Error><Code>RequestLimitExceeded</Code><Message>Request limit exceeded.</Message></Error></Errors><RequestID>x</RequestID></Response>`)
		return true
	})
	openThrough(t, front)
	if n := throttled.Load(); n < 5 {
		t.Fatalf("%d requests reached the front, want the 2 throttled ones, their retries and the rest", n)
	}

	// With AWS_MAX_ATTEMPTS=1 nothing is retried: the throttling is the answer.
	throttled.Store(0)
	t.Setenv("AWS_MAX_ATTEMPTS", "1")
	once, err := New(context.Background(), Options{GroupIDs: []string{newGroup(t, "others")}, Region: "us-east-1", EC2Endpoint: front})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := once.List(context.Background()); apiCode(err) != "RequestLimitExceeded" {
		t.Fatalf("with one attempt: %v, want RequestLimitExceeded", err)
	}
}

// A machine whose clock is an hour slow: EC2 refuses the first request as
// signed at the wrong time, and the next is signed at EC2's time (the Date
// of that answer), as the SDK's clients do.
func TestClockSkewIsCorrected(t *testing.T) {
	motoEnv(t)
	ahead := time.Hour // AWS's clock against this machine's
	var refused atomic.Int32
	front := frontToMoto(t, func(w http.ResponseWriter, r *http.Request) bool {
		now := time.Now().Add(ahead)
		w.Header().Set("Date", now.UTC().Format(http.TimeFormat))
		signed, err := time.Parse("20060102T150405Z", r.Header.Get("X-Amz-Date"))
		if err == nil && signed.Sub(now).Abs() <= 5*time.Minute {
			return false
		}
		refused.Add(1)
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprintf(w, `<Response><Errors><Error><Code>RequestExpired</Code><Message>Request has expired. Timestamp date is %s</Message></Error></Errors><RequestID>x</RequestID></Response>`, r.Header.Get("X-Amz-Date"))
		return true
	})
	openThrough(t, front)
	if n := refused.Load(); n != 1 {
		t.Fatalf("%d requests were refused for their time, want only the first", n)
	}
}
