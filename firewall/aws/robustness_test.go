package aws

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os/user"
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
	imds := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.Method == http.MethodPut:
			<-r.Context().Done() // the answer is lost on the way
		case r.Header.Get("X-Aws-Ec2-Metadata-Token") != "":
			http.Error(w, "unexpected token", http.StatusBadRequest)
		case r.URL.Path == "/latest/meta-data/iam/security-credentials/":
			fmt.Fprint(w, "v1-role")
		case r.URL.Path == "/latest/meta-data/iam/security-credentials/v1-role":
			fmt.Fprint(w, `{"Code":"Success","AccessKeyId":"ASIAV1","SecretAccessKey":"s","Token":"t"}`)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(imds.Close)
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
