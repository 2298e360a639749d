package azure

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tentacle-go/tentacle/firewall"
)

// armServer is an httptest ARM whose handler is given per test; it
// records "METHOD path" of each request.
type armServer struct {
	*httptest.Server
	mu   sync.Mutex
	seen []string
}

func newARMServer(t *testing.T, h func(w http.ResponseWriter, r *http.Request, n int)) *armServer {
	s := &armServer{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.seen = append(s.seen, r.Method+" "+r.URL.Path)
		n := len(s.seen)
		s.mu.Unlock()
		if r.Header.Get("Authorization") != "Bearer fake-token" || r.URL.Query().Get("api-version") == "" {
			t.Errorf("%s %s: Authorization %q", r.Method, r.URL, r.Header.Get("Authorization"))
		}
		h(w, r, n)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *armServer) requests() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.seen...)
}

func testClient(t *testing.T, url string) *armClient {
	t.Helper()
	c, err := newARMClient(url, staticToken("fake-token"), nil, time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	c.backoff = time.Millisecond
	return c
}

func armError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, map[string]any{"error": map[string]any{"code": code, "message": msg}})
}

func TestARMErrors(t *testing.T) {
	var status int
	var code string
	srv := newARMServer(t, func(w http.ResponseWriter, r *http.Request, _ int) {
		armError(w, status, code, "The client 'x' does not have authorization.\nMore.")
	})
	s := &SecurityGroup{o: Options{Subscription: "sub-1", ResourceGroup: "rg", NSG: "nsg"}, arm: testClient(t, srv.URL)}
	rule := firewall.NewRule("", firewall.SinglePort(10933), nil)
	for _, c := range []struct {
		status int
		code   string
		want   string
	}{
		{404, "SubscriptionNotFound", "Subscription sub-1 was not found"},
		{400, "InvalidSubscriptionId", "Subscription sub-1 was not found"},
		{404, "ResourceGroupNotFound", "Resource group rg was not found in subscription sub-1"},
		{404, "ResourceNotFound", "Network security group nsg was not found in resource group rg"},
		{403, "AuthorizationFailed", "The identity in use may not read the rules of network security group nsg"},
		{401, "InvalidAuthenticationToken", "No usable Azure credentials were found"},
		{409, "AnotherOperationInProgress", "Azure refused the change to network security group nsg (AnotherOperationInProgress, HTTP 409)"},
	} {
		status, code = c.status, c.code
		_, err := s.PlanOpen(context.Background(), rule)
		userError(t, err, c.want)
	}

	// Anything else is ARM's own error, with its code and message.
	status, code = 422, "Weird"
	_, err := s.List(context.Background())
	var re *ResponseError
	if !errors.As(err, &re) || re.StatusCode != 422 || re.Code != "Weird" || !strings.HasPrefix(re.Message, "The client 'x'") ||
		!strings.Contains(err.Error(), "GET "+srv.URL+"/subscriptions/sub-1/resourceGroups/rg/providers/Microsoft.Network/networkSecurityGroups/nsg: HTTP 422 Weird") {
		t.Fatalf("got %#v", err)
	}
}

func TestARMRetries(t *testing.T) {
	srv := newARMServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
		switch n {
		case 1:
			w.Header().Set("Retry-After", "0")
			armError(w, http.StatusTooManyRequests, "TooManyRequests", "slow down")
		case 2:
			armError(w, http.StatusServiceUnavailable, "ServiceUnavailable", "")
		case 3:
			w.WriteHeader(http.StatusBadGateway)
		default:
			writeJSON(w, http.StatusOK, map[string]any{"name": "nsg", "properties": map[string]any{"securityRules": []any{}}})
		}
	})
	c := testClient(t, srv.URL)
	var g securityGroup
	if err := c.get(context.Background(), c.resourceURL("x"), &g); err != nil || g.Name != "nsg" {
		t.Fatalf("%+v %v", g, err)
	}
	if n := len(srv.requests()); n != 4 {
		t.Fatalf("%d requests", n)
	}

	// Not forever: after maxAttempts the last answer stands.
	always := newARMServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
		armError(w, http.StatusInternalServerError, "InternalServerError", "down")
	})
	c = testClient(t, always.URL)
	err := c.get(context.Background(), c.resourceURL("x"), &g)
	var re *ResponseError
	if !errors.As(err, &re) || re.StatusCode != 500 || len(always.requests()) != maxAttempts {
		t.Fatalf("%v after %d requests", err, len(always.requests()))
	}

	// Client errors are not retried.
	once := newARMServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
		armError(w, http.StatusBadRequest, "InvalidResource", "no")
	})
	c = testClient(t, once.URL)
	if err := c.get(context.Background(), c.resourceURL("x"), &g); err == nil || len(once.requests()) != 1 {
		t.Fatalf("%v after %d requests", err, len(once.requests()))
	}
}

func TestRetryAfter(t *testing.T) {
	for v, want := range map[string]time.Duration{"3": 3 * time.Second, "86400": maxRetryAfter, "99999999999999999": maxRetryAfter} {
		if got, ok := retryAfter(http.Header{"Retry-After": {v}}); !ok || got != want {
			t.Errorf("Retry-After %s: %s %v", v, got, ok)
		}
	}
	// No wait at all is not taken: the caller keeps its own pace.
	for _, v := range []string{"soon", "0", "-5", time.Now().Add(-time.Hour).UTC().Format(http.TimeFormat)} {
		if d, ok := retryAfter(http.Header{"Retry-After": {v}}); ok {
			t.Errorf("took Retry-After %s: %s", v, d)
		}
	}
	// ARM's millisecond headers come first.
	for _, c := range []struct {
		h    http.Header
		want time.Duration
	}{
		{http.Header{"Retry-After-Ms": {"250"}, "Retry-After": {"7"}}, 250 * time.Millisecond},
		{http.Header{"X-Ms-Retry-After-Ms": {"1500"}, "Retry-After": {"7"}}, 1500 * time.Millisecond},
		{http.Header{"Retry-After-Ms": {"40"}, "X-Ms-Retry-After-Ms": {"1500"}}, 40 * time.Millisecond},
		{http.Header{"Retry-After-Ms": {"0"}, "X-Ms-Retry-After-Ms": {"x"}, "Retry-After": {"7"}}, 7 * time.Second},
		{http.Header{"Retry-After-Ms": {"99999999999"}}, maxRetryAfter},
	} {
		if got, ok := retryAfter(c.h); !ok || got != c.want {
			t.Errorf("%v: %s %v", c.h, got, ok)
		}
	}
	if d, ok := retryAfter(http.Header{"Retry-After-Ms": {"0"}, "Retry-After": {"0"}}); ok {
		t.Errorf("took zero: %s", d)
	}
	if d, ok := retryAfter(http.Header{"Retry-After": {time.Now().Add(10 * time.Second).UTC().Format(http.TimeFormat)}}); !ok || d < 8*time.Second || d > 10*time.Second {
		t.Errorf("date: %s", d)
	}
}

// A PUT answered 201 with Azure-AsyncOperation: the operation is polled
// until its status is terminal.
func TestAsyncOperation(t *testing.T) {
	var body string
	var final string
	var srv *armServer
	srv = newARMServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
		switch {
		case r.Method == http.MethodPut:
			b, _ := io.ReadAll(r.Body)
			body = string(b)
			w.Header().Set("Azure-AsyncOperation", srv.URL+"/providers/Microsoft.Network/locations/westeurope/operations/op-1?api-version="+apiVersion)
			w.Header().Set("Retry-After", "0")
			writeJSON(w, http.StatusCreated, map[string]any{"name": "r", "properties": map[string]any{"provisioningState": "Updating"}})
		case strings.Contains(r.URL.Path, "/operations/op-1") && n < 4:
			writeJSON(w, http.StatusOK, map[string]any{"status": "InProgress"})
		case strings.Contains(r.URL.Path, "/operations/op-1"):
			if final == "Succeeded" {
				writeJSON(w, http.StatusOK, map[string]any{"status": final})
			} else {
				writeJSON(w, http.StatusOK, map[string]any{"status": final, "error": map[string]any{"code": "SecurityRuleInvalidPortRange", "message": "bad port"}})
			}
		default:
			t.Errorf("unexpected %s %s", r.Method, r.URL)
		}
	})
	c := testClient(t, srv.URL)
	rule := newSecurityRule(firewall.NewRule("", firewall.SinglePort(10933), nil), 101)
	final = "Succeeded"
	if err := c.put(context.Background(), c.resourceURL("rules", "r"), rule); err != nil {
		t.Fatal(err)
	}
	if got := srv.requests(); len(got) != 4 {
		t.Fatalf("requests %v", got)
	}
	if want := `{"name":"Octopus-Deploy-Tentacle-10933","properties":{"description":"Lets the Octopus Server reach the Tentacle","protocol":"Tcp","sourcePortRange":"*","destinationPortRange":"10933","sourceAddressPrefix":"*","destinationAddressPrefix":"*","access":"Allow","priority":101,"direction":"Inbound"}}`; body != want {
		t.Fatalf("body\n%s\nwant\n%s", body, want)
	}

	srv.mu.Lock()
	srv.seen = nil
	srv.mu.Unlock()
	final = "Failed"
	err := c.put(context.Background(), c.resourceURL("rules", "r"), rule)
	var re *ResponseError
	if !errors.As(err, &re) || re.Code != "SecurityRuleInvalidPortRange" || re.Message != "bad port" {
		t.Fatalf("got %v", err)
	}
}

// A DELETE answered 202 with Location: the location is polled while it
// answers 202.
func TestLocationPolling(t *testing.T) {
	var srv *armServer
	srv = newARMServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
		switch {
		case r.Method == http.MethodDelete:
			w.Header().Set("Location", srv.URL+"/operationResults/op-2?api-version="+apiVersion)
			w.WriteHeader(http.StatusAccepted)
		case r.URL.Path == "/operationResults/op-2" && n < 4:
			w.Header().Set("Location", srv.URL+"/operationResults/op-2?api-version="+apiVersion)
			w.WriteHeader(http.StatusAccepted)
		case r.URL.Path == "/operationResults/op-2":
			w.WriteHeader(http.StatusNoContent)
		default:
			t.Errorf("unexpected %s %s", r.Method, r.URL)
		}
	})
	c := testClient(t, srv.URL)
	if err := c.delete(context.Background(), c.resourceURL("rules", "r")); err != nil {
		t.Fatal(err)
	}
	if got := srv.requests(); len(got) != 4 || got[3] != "GET /operationResults/op-2" {
		t.Fatalf("requests %v", got)
	}
}

// A PUT answered with a provisioningState under way and no operation
// header: the resource itself is polled.
func TestProvisioningStatePolling(t *testing.T) {
	srv := newARMServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
		state := "Updating"
		if n >= 3 {
			state = "Succeeded"
		}
		writeJSON(w, map[bool]int{true: http.StatusCreated, false: http.StatusOK}[r.Method == http.MethodPut],
			map[string]any{"properties": map[string]any{"provisioningState": state}})
	})
	c := testClient(t, srv.URL)
	if err := c.put(context.Background(), c.resourceURL("rules", "r"), map[string]any{}); err != nil {
		t.Fatal(err)
	}
	if got := srv.requests(); len(got) != 3 || !strings.HasPrefix(got[2], "GET /rules/r") {
		t.Fatalf("requests %v", got)
	}
}

// The bearer token goes to ARM only, never to a status URL elsewhere.
func TestPollURLElsewhere(t *testing.T) {
	srv := newARMServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
		w.Header().Set("Azure-AsyncOperation", "https://attacker.invalid/op")
		w.WriteHeader(http.StatusCreated)
	})
	c := testClient(t, srv.URL)
	if err := c.put(context.Background(), c.resourceURL("rules", "r"), map[string]any{}); err == nil || !strings.Contains(err.Error(), "outside") {
		t.Fatalf("got %v", err)
	}
}

// A token that cannot be had mid-way is the credentials sentence; a
// cancelled context stops polling.
func TestTokenFailureAndCancel(t *testing.T) {
	srv := newARMServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
		w.Header().Set("Azure-AsyncOperation", "http://"+r.Host+"/op?api-version="+apiVersion)
		w.Header().Set("Retry-After", "0")
		writeJSON(w, http.StatusOK, map[string]any{"status": "InProgress"})
	})
	s := &SecurityGroup{o: Options{Subscription: "s", ResourceGroup: "rg", NSG: "nsg"}, arm: testClient(t, srv.URL)}
	s.arm.cred = failingToken{}
	_, err := s.List(context.Background())
	userError(t, err, "No usable Azure credentials were found")
	userError(t, err, "token expired and refresh failed")

	c := testClient(t, srv.URL)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := c.put(ctx, c.resourceURL("rules", "r"), map[string]any{}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v", err)
	}
}

type failingToken struct{}

func (failingToken) Token(context.Context, string) (string, time.Time, error) {
	return "", time.Time{}, errors.New("token expired and refresh failed")
}

func TestEndpointAndScope(t *testing.T) {
	t.Setenv("AZURE_RESOURCE_MANAGER_ENDPOINT", "https://management.usgovcloudapi.net/")
	var scope string
	s, err := New(context.Background(), Options{Subscription: "s", ResourceGroup: "g", NSG: "n", Credential: scopeRecorder{&scope}})
	if err != nil {
		t.Fatal(err)
	}
	if scope != "https://management.usgovcloudapi.net/.default" {
		t.Fatalf("scope %q", scope)
	}
	if u := s.nsgURL("a rule"); u != "https://management.usgovcloudapi.net/subscriptions/s/resourceGroups/g/providers/Microsoft.Network/networkSecurityGroups/n/securityRules/a%20rule?api-version=2025-05-01" {
		t.Fatalf("url %s", u)
	}
	t.Setenv("AZURE_RESOURCE_MANAGER_ENDPOINT", "management.azure.com")
	_, err = New(context.Background(), Options{Subscription: "s", ResourceGroup: "g", NSG: "n", Credential: scopeRecorder{&scope}})
	userError(t, err, "is not an http(s) URL")
}

type scopeRecorder struct{ scope *string }

func (s scopeRecorder) Token(_ context.Context, scope string) (string, time.Time, error) {
	*s.scope = scope
	return "t", time.Now().Add(time.Hour), nil
}

// "Retry-After: 0" (or a date gone by) is not a licence to hammer ARM:
// retries keep their back-off and polls their frequency.
func TestZeroRetryAfterKeepsPace(t *testing.T) {
	const pace = 60 * time.Millisecond
	retried := newARMServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
		if n == 1 {
			w.Header().Set("Retry-After", "0")
			armError(w, http.StatusTooManyRequests, "TooManyRequests", "slow down")
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"name": "nsg"})
	})
	c := testClient(t, retried.URL)
	c.backoff = pace
	start := time.Now()
	var g securityGroup
	if err := c.get(context.Background(), c.resourceURL("x"), &g); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < pace {
		t.Fatalf("retried after %s", d)
	}

	var srv *armServer
	srv = newARMServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
		w.Header().Set("Azure-AsyncOperation", srv.URL+"/operations/op-3?api-version="+apiVersion)
		w.Header().Set("Retry-After", time.Now().Add(-time.Minute).UTC().Format(http.TimeFormat))
		if r.Method == http.MethodPut {
			writeJSON(w, http.StatusCreated, map[string]any{})
			return
		}
		w.Header().Set("Retry-After", "0")
		writeJSON(w, http.StatusOK, map[string]any{"status": map[bool]string{true: "Succeeded", false: "InProgress"}[n >= 4]})
	})
	c = testClient(t, srv.URL)
	c.poll = pace
	start = time.Now()
	if err := c.put(context.Background(), c.resourceURL("rules", "r"), map[string]any{}); err != nil {
		t.Fatal(err)
	}
	if got := len(srv.requests()); got != 4 {
		t.Fatalf("%d requests", got)
	}
	if d := time.Since(start); d < 3*pace {
		t.Fatalf("3 polls in %s", d)
	}
}

// retry-after-ms is honoured, before a longer Retry-After.
func TestRetryAfterMs(t *testing.T) {
	srv := newARMServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
		if n == 1 {
			w.Header().Set("Retry-After", "20")
			w.Header().Set("x-ms-retry-after-ms", "50")
			armError(w, http.StatusServiceUnavailable, "ServiceUnavailable", "")
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"name": "nsg"})
	})
	c := testClient(t, srv.URL)
	start := time.Now()
	var g securityGroup
	if err := c.get(context.Background(), c.resourceURL("x"), &g); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 50*time.Millisecond || d > 10*time.Second {
		t.Fatalf("retried after %s", d)
	}
}

// A redirect is an answer, not something to follow: the request, with its
// headers and token, never reaches the other host.
func TestARMDoesNotFollowRedirects(t *testing.T) {
	other := newTokenServer(t, func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("redirect followed: %s %v", r.URL, r.Header)
	})
	srv := newARMServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
		http.Redirect(w, r, other.URL+r.URL.RequestURI(), http.StatusTemporaryRedirect)
	})
	for _, hc := range []*http.Client{nil, {Transport: http.DefaultTransport}} {
		c, err := newARMClient(srv.URL, staticToken("fake-token"), hc, time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		err = c.put(context.Background(), c.resourceURL("rules", "r"), map[string]any{})
		var re *ResponseError
		if !errors.As(err, &re) || re.StatusCode != http.StatusTemporaryRedirect {
			t.Fatalf("got %v", err)
		}
	}
	if n := other.hits.Load(); n != 0 {
		t.Fatalf("%d requests reached the other host", n)
	}
}

// Tokens do not go over plain http, except to this machine.
func TestPlainHTTPEndpoint(t *testing.T) {
	for _, ep := range []string{"http://management.azure.com", "http://10.0.0.4:8080/", "http://[::ffff:10.0.0.1]"} {
		t.Setenv("AZURE_RESOURCE_MANAGER_ENDPOINT", ep)
		_, err := New(context.Background(), Options{Subscription: "s", ResourceGroup: "g", NSG: "n", Credential: staticToken("t")})
		userError(t, err, "is plain http, which would send access tokens unencrypted")
		userError(t, err, "AZURE_RESOURCE_MANAGER_ENDPOINT")
	}
	for _, ep := range []string{"http://127.0.0.1:1234", "http://localhost:8080", "http://[::1]:80", "https://management.azure.com"} {
		t.Setenv("AZURE_RESOURCE_MANAGER_ENDPOINT", ep)
		if _, err := New(context.Background(), Options{Subscription: "s", ResourceGroup: "g", NSG: "n", Credential: staticToken("t")}); err != nil {
			t.Errorf("%s: %v", ep, err)
		}
	}
}
