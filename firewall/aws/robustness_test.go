package aws

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os/user"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"
)

// Without HOME (cloud-init, some services) and no account home either, there
// are no default config files: the instance profile still works.
func TestNoHomeDirectory(t *testing.T) {
	f := newFakeAWS(t)
	fakeEnv(t, f)
	t.Setenv("HOME", "")
	t.Setenv("AWS_CONFIG_FILE", "")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", "")
	old := currentUser
	currentUser = func() (*user.User, error) { return nil, errors.New("no user database") }
	t.Cleanup(func() { currentUser = old })
	t.Setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", f.URL)
	wantKey(t, f, Options{}, "ASIAIMDS")
}

// A metadata service whose IMDSv2 token answer never arrives (a container on
// EC2 with a hop limit of 1) is read with IMDSv1, as the SDK does; unless
// AWS_EC2_METADATA_V1_DISABLED rules that out.
func TestIMDSv1WhenTheTokenNeverComes(t *testing.T) {
	f := newFakeAWS(t)
	fakeEnv(t, f)
	imds := imdsV1Only(t, "ASIAV1", func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done() // the answer is lost on the way
	})
	t.Setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", imds.URL)
	start := time.Now()
	wantKey(t, f, Options{}, "ASIAV1")
	if d := time.Since(start); d > imdsConnectTimeout+2*time.Second {
		t.Errorf("took %s", d)
	}
	t.Setenv("AWS_EC2_METADATA_V1_DISABLED", "true")
	_, err := open(t, f, Options{})
	wantUserError(t, err, "No usable AWS credentials")
}

// No redirect is followed: it would carry the session token to another host
// and replay the signed request.
func TestNoRedirectIsFollowed(t *testing.T) {
	isolate(t)
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIATEST")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "secret")
	t.Setenv("AWS_SESSION_TOKEN", "session-token")
	var reached atomic.Int32
	elsewhere := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { reached.Add(1) }))
	t.Cleanup(elsewhere.Close)
	redirecting := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, elsewhere.URL+r.URL.Path, http.StatusTemporaryRedirect)
	}))
	t.Cleanup(redirecting.Close)
	sg, err := New(context.Background(), Options{GroupIDs: []string{"sg-0000000000000000a"}, Region: "us-east-1", EC2Endpoint: redirecting.URL})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sg.List(context.Background()); err == nil {
		t.Error("a redirect answer was taken for a result")
	}
	if n := reached.Load(); n != 0 {
		t.Errorf("the redirect was followed %d times", n)
	}
}

// role_arn with nothing to assume it with is a configuration error, as in
// the SDK, not a silent use of the instance profile.
func TestRoleWithoutSource(t *testing.T) {
	f := newFakeAWS(t)
	home := fakeEnv(t, f)
	writeFile(t, home+"/config", "[profile deploy]\nrole_arn = arn:aws:iam::123456789012:role/deploy\n")
	t.Setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", f.URL)
	_, err := open(t, f, Options{Profile: "deploy"})
	wantUserError(t, err, `The AWS profile "deploy" has role_arn but nothing to assume it with`)
}

// noHome takes HOME and the account's home away.
func noHome(t *testing.T) {
	t.Helper()
	t.Setenv("HOME", "")
	t.Setenv("USERPROFILE", "")
	old := currentUser
	currentUser = func() (*user.User, error) { return nil, errors.New("no user database") }
	t.Cleanup(func() { currentUser = old })
}

// Without a home, files named by AWS_CONFIG_FILE and
// AWS_SHARED_CREDENTIALS_FILE are still read; an SSO profile, whose token
// cache lives under the home, is a clear user error.
func TestNoHomeDirectoryExplicitFiles(t *testing.T) {
	f := newFakeAWS(t)
	home := fakeEnv(t, f)
	noHome(t)
	writeFile(t, filepath.Join(home, "credentials"), "[ci]\naws_access_key_id = AKIAEXPLICIT\naws_secret_access_key = s\n")
	writeFile(t, filepath.Join(home, "config"), "[profile sso]\nsso_start_url = https://corp.awsapps.com/start\nsso_region = us-east-1\nsso_account_id = 1\nsso_role_name = r\n")
	wantKey(t, f, Options{Profile: "ci"}, "AKIAEXPLICIT")
	_, err := open(t, f, Options{Profile: "sso"})
	wantUserError(t, err, `The AWS SSO profile "sso"`, "no home directory")
}

// A token request whose connection is dropped (not a timeout) falls back to
// IMDSv1 too, as the SDK's does on any failed send; not with
// AWS_EC2_METADATA_V1_DISABLED.
func TestIMDSv1WhenTheTokenRequestFails(t *testing.T) {
	f := newFakeAWS(t)
	fakeEnv(t, f)
	var puts atomic.Int32
	imds := imdsV1Only(t, "ASIAV1RESET", func(w http.ResponseWriter, r *http.Request) {
		puts.Add(1)
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			conn.Close()
		}
	})
	t.Setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", imds.URL)
	wantKey(t, f, Options{}, "ASIAV1RESET")
	if puts.Load() == 0 {
		t.Error("IMDSv2 was not tried first")
	}
	t.Setenv("AWS_EC2_METADATA_V1_DISABLED", "true")
	_, err := open(t, f, Options{})
	wantUserError(t, err, "No usable AWS credentials")
}

// Where nothing listens, the fallback to IMDSv1 still fails fast.
func TestIMDSNothingListensFailsFast(t *testing.T) {
	f := newFakeAWS(t)
	fakeEnv(t, f) // the metadata endpoint is nowhere
	start := time.Now()
	_, err := open(t, f, Options{})
	wantUserError(t, err, "No usable AWS credentials")
	if d := time.Since(start); d > 2*imdsConnectTimeout+time.Second {
		t.Errorf("took %s", d)
	}
}

// The link-local client does not follow redirects either: the container
// authorization token would go to the other host.
func TestContainerRedirectNotFollowed(t *testing.T) {
	f := newFakeAWS(t)
	fakeEnv(t, f)
	var reached atomic.Int32
	var leaked atomic.Value
	elsewhere := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reached.Add(1)
		leaked.Store(r.Header.Get("Authorization"))
		fmt.Fprint(w, `{"AccessKeyId":"AKIASTOLEN","SecretAccessKey":"s","Token":"t"}`)
	}))
	t.Cleanup(elsewhere.Close)
	redirecting := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, elsewhere.URL+r.URL.Path, http.StatusTemporaryRedirect)
	}))
	t.Cleanup(redirecting.Close)
	t.Setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", redirecting.URL+"/creds")
	t.Setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN", "secret-token")
	if c, err := open(t, f, Options{}); err == nil {
		t.Errorf("a redirect answer was taken for credentials: %+v", c)
	}
	if n := reached.Load(); n != 0 {
		t.Errorf("the redirect was followed %d times (Authorization %v)", n, leaked.Load())
	}
}

// imdsV1Only is a metadata service that answers the IMDSv2 token request with
// put, and the instance profile's credentials (access key key) only to
// requests that carry no token.
func imdsV1Only(t *testing.T, key string, put http.HandlerFunc) *httptest.Server {
	imds := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.Method == http.MethodPut:
			put(w, r)
		case r.Header.Get("X-Aws-Ec2-Metadata-Token") != "":
			http.Error(w, "unexpected token", http.StatusBadRequest)
		case r.URL.Path == "/latest/meta-data/iam/security-credentials/":
			fmt.Fprint(w, "v1-role")
		case r.URL.Path == "/latest/meta-data/iam/security-credentials/v1-role":
			fmt.Fprintf(w, `{"Code":"Success","AccessKeyId":%q,"SecretAccessKey":"s","Token":"t"}`, key)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(imds.Close)
	return imds
}
