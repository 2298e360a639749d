package aws

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tentacle-go/tentacle/firewall"
)

// awsEnv is every variable this package (or the SDK the tests use) reads.
var awsEnv = []string{
	"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_DEFAULT_PROFILE",
	"AWS_REGION", "AWS_DEFAULT_REGION", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN", "AWS_ROLE_SESSION_NAME",
	"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI",
	"AWS_CONTAINER_AUTHORIZATION_TOKEN", "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
	"AWS_EC2_METADATA_DISABLED", "AWS_EC2_METADATA_SERVICE_ENDPOINT", "AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE",
	"AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_EC2", "AWS_ENDPOINT_URL_STS", "AWS_ENDPOINT_URL_SSO",
	"AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE",
}

// nowhere is a loopback port nothing listens on: a metadata service or
// container endpoint that is not there, refusing at once.
const nowhere = "http://127.0.0.1:1"

// isolate keeps the machine's ~/.aws, environment, metadata service and
// container endpoint out of a test: every file is under a fresh HOME and
// every endpoint on loopback.
func isolate(t *testing.T) (home string) {
	t.Helper()
	home = t.TempDir()
	for _, k := range awsEnv {
		t.Setenv(k, "")
	}
	t.Setenv("HOME", home)
	t.Setenv("USERPROFILE", home)
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(home, "config"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(home, "credentials"))
	t.Setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", nowhere)
	old := containerHost
	containerHost = nowhere
	t.Cleanup(func() { containerHost = old })
	return home
}

func writeFile(t *testing.T, path, text string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
}

// fakeAWS is STS, the SSO portal, a container endpoint, IMDSv2 and EC2's
// DescribeSecurityGroups on one loopback server, answering in AWS's shapes.
// It records who called what.
type fakeAWS struct {
	*httptest.Server
	mu    sync.Mutex
	calls []string
	forms []map[string]string
	// describeErrors are answered, in turn, before DescribeSecurityGroups
	// succeeds: status and error code.
	describeErrors []struct {
		status int
		code   string
	}
}

const (
	imdsToken      = "imds-token"
	ssoToken       = "sso-access-token"
	containerToken = "container-token"
	oidcToken      = "oidc-token"
)

func newFakeAWS(t *testing.T) *fakeAWS {
	f := &fakeAWS{}
	f.Server = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.Close)
	return f
}

func (f *fakeAWS) record(call string) {
	f.mu.Lock()
	f.calls = append(f.calls, call)
	f.mu.Unlock()
}

func (f *fakeAWS) reset() {
	f.mu.Lock()
	f.calls, f.forms = nil, nil
	f.mu.Unlock()
}

// form is the i-th form posted; negative counts from the end.
func (f *fakeAWS) form(i int) map[string]string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if i < 0 {
		i += len(f.forms)
	}
	return f.forms[i]
}

func (f *fakeAWS) failDescribe(status int, code string) {
	f.mu.Lock()
	f.describeErrors = append(f.describeErrors, struct {
		status int
		code   string
	}{status, code})
	f.mu.Unlock()
}

func (f *fakeAWS) called() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.calls...)
}

// signer is the access key of a request's Authorization, or "unsigned".
func signer(r *http.Request) string {
	a := r.Header.Get("Authorization")
	_, rest, ok := strings.Cut(a, "Credential=")
	if !ok {
		return "unsigned"
	}
	key, _, _ := strings.Cut(rest, "/")
	return key
}

func (f *fakeAWS) serve(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.Method == http.MethodPut && r.URL.Path == "/latest/api/token":
		if r.Header.Get("X-Aws-Ec2-Metadata-Token-Ttl-Seconds") == "" {
			http.Error(w, "no TTL", http.StatusBadRequest)
			return
		}
		fmt.Fprint(w, imdsToken)
	case strings.HasPrefix(r.URL.Path, "/latest/"):
		if r.Header.Get("X-Aws-Ec2-Metadata-Token") != imdsToken {
			http.Error(w, "IMDSv1 is disabled", http.StatusUnauthorized)
			return
		}
		f.record("IMDS " + r.URL.Path)
		switch strings.TrimPrefix(r.URL.Path, "/latest/meta-data/") {
		case "iam/security-credentials/":
			fmt.Fprint(w, "tentacle-role")
		case "iam/security-credentials/tentacle-role":
			fmt.Fprint(w, `{"Code":"Success","LastUpdated":"2026-01-01T00:00:00Z","Type":"AWS-HMAC","AccessKeyId":"ASIAIMDS","SecretAccessKey":"imds-secret","Token":"imds-session","Expiration":"2099-01-01T00:00:00Z"}`)
		case "placement/region":
			fmt.Fprint(w, "eu-central-1")
		case "mac":
			fmt.Fprint(w, "0e:00:00:00:00:01")
		case "network/interfaces/macs/0e:00:00:00:00:01/security-group-ids":
			fmt.Fprint(w, "sg-0000000000000000a\nsg-0000000000000000b\n")
		default:
			http.NotFound(w, r)
		}
	case r.URL.Path == "/federation/credentials":
		f.record(fmt.Sprintf("SSO %s/%s", r.URL.Query().Get("account_id"), r.URL.Query().Get("role_name")))
		if r.Header.Get("X-Amz-Sso_bearer_token") != ssoToken {
			w.Header().Set("X-Amzn-Errortype", "UnauthorizedException:http://internal.amazon.com/coral/com.amazonaws.switchboard.portal/")
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprint(w, `{"message":"Session token not found or invalid"}`)
			return
		}
		fmt.Fprintf(w, `{"roleCredentials":{"accessKeyId":"ASIASSO","secretAccessKey":"sso-secret","sessionToken":"sso-session","expiration":%d}}`, time.Now().Add(time.Hour).UnixMilli())
	case r.URL.Path == "/container/credentials":
		f.record("container " + r.Header.Get("Authorization"))
		if r.Header.Get("Authorization") != containerToken && r.URL.Query().Get("open") == "" {
			w.WriteHeader(http.StatusForbidden)
			fmt.Fprint(w, `{"code":"AccessDenied","message":"bad token"}`)
			return
		}
		fmt.Fprint(w, `{"AccessKeyId":"ASIACONTAINER","SecretAccessKey":"container-secret","Token":"container-session","Expiration":"2099-01-01T00:00:00Z","RoleArn":"arn:aws:iam::123456789012:role/task"}`)
	case r.Method == http.MethodPost:
		r.ParseForm()
		form := map[string]string{"signer": signer(r)}
		for k := range r.PostForm {
			form[k] = r.PostForm.Get(k)
		}
		f.mu.Lock()
		f.forms = append(f.forms, form)
		f.mu.Unlock()
		action := form["Action"]
		f.record(action + " by " + form["signer"])
		switch action {
		case "AssumeRole":
			if form["signer"] == "unsigned" || form["signer"] == "AKIDDENIED" {
				w.WriteHeader(http.StatusForbidden)
				fmt.Fprintf(w, `<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type><Code>AccessDenied</Code><Message>User: arn:aws:iam::123456789012:user/denied is not authorized to perform: sts:AssumeRole on resource: %s</Message></Error><RequestId>r</RequestId></ErrorResponse>`, form["RoleArn"])
				return
			}
			fmt.Fprintf(w, `<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><AssumeRoleResult><AssumedRoleUser><Arn>%s/%s</Arn><AssumedRoleId>AROA:x</AssumedRoleId></AssumedRoleUser><Credentials><AccessKeyId>ASIAROLE%d</AccessKeyId><SecretAccessKey>role-secret</SecretAccessKey><SessionToken>role-session</SessionToken><Expiration>2099-01-01T00:00:00Z</Expiration></Credentials><PackedPolicySize>6</PackedPolicySize></AssumeRoleResult><ResponseMetadata><RequestId>r</RequestId></ResponseMetadata></AssumeRoleResponse>`, form["RoleArn"], form["RoleSessionName"], len(f.called()))
		case "AssumeRoleWithWebIdentity":
			if form["signer"] != "unsigned" || form["WebIdentityToken"] != oidcToken {
				w.WriteHeader(http.StatusBadRequest)
				fmt.Fprint(w, `<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type><Code>InvalidIdentityToken</Code><Message>Couldn't retrieve verification key from your identity provider</Message></Error><RequestId>r</RequestId></ErrorResponse>`)
				return
			}
			fmt.Fprint(w, `<AssumeRoleWithWebIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><AssumeRoleWithWebIdentityResult><SubjectFromWebIdentityToken>system:serviceaccount:ns:sa</SubjectFromWebIdentityToken><Audience>sts.amazonaws.com</Audience><Credentials><AccessKeyId>ASIAWEB</AccessKeyId><SecretAccessKey>web-secret</SecretAccessKey><SessionToken>web-session</SessionToken><Expiration>2099-01-01T00:00:00Z</Expiration></Credentials><Provider>oidc</Provider></AssumeRoleWithWebIdentityResult><ResponseMetadata><RequestId>r</RequestId></ResponseMetadata></AssumeRoleWithWebIdentityResponse>`)
		case "DescribeSecurityGroups":
			f.mu.Lock()
			var fail *struct {
				status int
				code   string
			}
			if len(f.describeErrors) > 0 {
				fail = &f.describeErrors[0]
				f.describeErrors = f.describeErrors[1:]
			}
			f.mu.Unlock()
			if fail != nil {
				w.WriteHeader(fail.status)
				fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?><Response><Errors><Error><Code>%s</Code><Message>Request failed: %s.</Message></Error></Errors><RequestID>r</RequestID></Response>`, fail.code, fail.code)
				return
			}
			// Two pages: the second group comes after a NextToken.
			id, next := "sg-0000000000000000a", "<nextToken>page-2</nextToken>"
			if form["NextToken"] == "page-2" {
				id, next = "sg-0000000000000000b", ""
			}
			fmt.Fprintf(w, `<DescribeSecurityGroupsResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><requestId>r</requestId><securityGroupInfo><item><ownerId>123456789012</ownerId><groupId>%s</groupId><groupName>web</groupName><groupDescription>d</groupDescription><ipPermissions><item><ipProtocol>tcp</ipProtocol><fromPort>10933</fromPort><toPort>10933</toPort><groups/><ipRanges><item><cidrIp>203.0.113.0/24</cidrIp><description>Tentacle &amp; ü</description></item></ipRanges><ipv6Ranges><item><cidrIpv6>2001:db8::/64</cidrIpv6><description>Tentacle &amp; ü</description></item></ipv6Ranges><prefixListIds/></item><item><ipProtocol>-1</ipProtocol><groups/><ipRanges><item><cidrIp>0.0.0.0/0</cidrIp></item></ipRanges></item></ipPermissions><ipPermissionsEgress/><vpcId>vpc-1</vpcId></item></securityGroupInfo>%s</DescribeSecurityGroupsResponse>`, id, next)
		default:
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprintf(w, `<Response><Errors><Error><Code>InvalidAction</Code><Message>%s</Message></Error></Errors></Response>`, action)
		}
	default:
		http.NotFound(w, r)
	}
}

// fakeEnv isolates the test and points STS and SSO at f.
func fakeEnv(t *testing.T, f *fakeAWS) (home string) {
	home = isolate(t)
	t.Setenv("AWS_ENDPOINT_URL_STS", f.URL)
	t.Setenv("AWS_ENDPOINT_URL_SSO", f.URL)
	return home
}

// open runs New against f and returns the credentials it settled on.
func open(t *testing.T, f *fakeAWS, o Options) (credentials, error) {
	t.Helper()
	if len(o.GroupIDs) == 0 && !o.Self {
		o.GroupIDs = []string{"sg-0000000000000000a"}
	}
	if o.Region == "" && os.Getenv("AWS_REGION") == "" && !o.Self {
		o.Region = "us-east-1"
	}
	o.EC2Endpoint = f.URL
	sg, err := New(context.Background(), o)
	if err != nil {
		return credentials{}, err
	}
	return sg.ec2.creds, nil
}

func wantKey(t *testing.T, f *fakeAWS, o Options, key string) credentials {
	t.Helper()
	c, err := open(t, f, o)
	if err != nil {
		t.Fatal(err)
	}
	if c.AccessKeyID != key {
		t.Fatalf("got %+v, want access key %s", c, key)
	}
	return c
}

func wantUserError(t *testing.T, err error, parts ...string) {
	t.Helper()
	var ue *firewall.UserError
	if !errors.As(err, &ue) {
		t.Fatalf("got %v, want a user error", err)
	}
	for _, p := range parts {
		if !strings.Contains(ue.Msg, p) {
			t.Errorf("%q\n lacks %q", ue.Msg, p)
		}
	}
}

func TestEnvironmentAndProfilePrecedence(t *testing.T) {
	f := newFakeAWS(t)
	fakeEnv(t, f)
	writeFile(t, os.Getenv("AWS_SHARED_CREDENTIALS_FILE"), "[ops]\naws_access_key_id = AKIDOPS\naws_secret_access_key = s\n[default]\naws_access_key_id=AKIDDEFAULT\naws_secret_access_key=s\n")

	// The default profile when nothing else is set.
	wantKey(t, f, Options{}, "AKIDDEFAULT")

	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDENV")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "env-secret")
	t.Setenv("AWS_SESSION_TOKEN", "env-session")
	c := wantKey(t, f, Options{}, "AKIDENV")
	if c.SessionToken != "env-session" {
		t.Errorf("session token %q", c.SessionToken)
	}
	// AWS_PROFILE does not beat the environment's keys; --profile does.
	t.Setenv("AWS_PROFILE", "ops")
	wantKey(t, f, Options{}, "AKIDENV")
	wantKey(t, f, Options{Profile: "ops"}, "AKIDOPS")

	// Only one half of the pair is no pair.
	t.Setenv("AWS_SECRET_ACCESS_KEY", "")
	wantKey(t, f, Options{}, "AKIDOPS")

	// A profile named and missing.
	_, err := open(t, f, Options{Profile: "nosuch"})
	wantUserError(t, err, `The AWS profile "nosuch" was not found`, "aws configure --profile nosuch")
	t.Setenv("AWS_PROFILE", "gone")
	_, err = open(t, f, Options{})
	wantUserError(t, err, `The AWS profile "gone" was not found`)
}

func TestRegionOrder(t *testing.T) {
	f := newFakeAWS(t)
	fakeEnv(t, f)
	t.Setenv("AWS_ACCESS_KEY_ID", "AKID")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "s")
	writeFile(t, os.Getenv("AWS_CONFIG_FILE"), "[default]\nregion = ap-southeast-2\n[profile cn]\nregion = cn-north-1\n")
	region := func(o Options) string {
		t.Helper()
		o.GroupIDs = []string{"sg-0000000000000000a"}
		sg, err := New(context.Background(), o)
		if err != nil {
			t.Fatal(err)
		}
		return sg.region + " " + sg.ec2.endpoint
	}
	if got := region(Options{}); got != "ap-southeast-2 https://ec2.ap-southeast-2.amazonaws.com" {
		t.Errorf("profile region: %s", got)
	}
	t.Setenv("AWS_PROFILE", "cn")
	if got := region(Options{}); got != "cn-north-1 https://ec2.cn-north-1.amazonaws.com.cn" {
		t.Errorf("china: %s", got)
	}
	t.Setenv("AWS_PROFILE", "")
	t.Setenv("AWS_DEFAULT_REGION", "eu-west-2")
	if got := region(Options{}); got != "eu-west-2 https://ec2.eu-west-2.amazonaws.com" {
		t.Errorf("AWS_DEFAULT_REGION: %s", got)
	}
	t.Setenv("AWS_REGION", "eu-west-3")
	t.Setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:4566")
	if got := region(Options{}); got != "eu-west-3 http://127.0.0.1:4566" {
		t.Errorf("AWS_REGION, AWS_ENDPOINT_URL: %s", got)
	}
	t.Setenv("AWS_ENDPOINT_URL_EC2", "http://127.0.0.1:4567")
	if got := region(Options{Region: "us-west-1"}); got != "us-west-1 http://127.0.0.1:4567" {
		t.Errorf("--region, AWS_ENDPOINT_URL_EC2: %s", got)
	}
	t.Setenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "true")
	if got := region(Options{Region: "us-west-1"}); got != "us-west-1 https://ec2.us-west-1.amazonaws.com" {
		t.Errorf("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS: %s", got)
	}
	_, err := New(context.Background(), Options{GroupIDs: []string{"sg-0000000000000000a"}, Region: "eu west 1"})
	wantUserError(t, err, `"eu west 1" is not an AWS region`)
}

func TestAssumeRole(t *testing.T) {
	f := newFakeAWS(t)
	fakeEnv(t, f)
	writeFile(t, os.Getenv("AWS_SHARED_CREDENTIALS_FILE"), "[base]\naws_access_key_id = AKIDBASE\naws_secret_access_key = base-secret\n[denied]\naws_access_key_id = AKIDDENIED\naws_secret_access_key = s\n")
	writeFile(t, os.Getenv("AWS_CONFIG_FILE"), `
[profile admin]
role_arn = arn:aws:iam::123456789012:role/admin
source_profile = base
external_id = ext-1
role_session_name = ci-run
duration_seconds = 3600
[profile chained]
role_arn = arn:aws:iam::210987654321:role/deploy
source_profile = admin
[profile self]
role_arn = arn:aws:iam::123456789012:role/self
source_profile = self
aws_access_key_id = AKIDSELF
aws_secret_access_key = s
[profile fromenv]
role_arn = arn:aws:iam::123456789012:role/env
credential_source = Environment
[profile fromimds]
role_arn = arn:aws:iam::123456789012:role/imds
credential_source = Ec2InstanceMetadata
[profile loop1]
role_arn = arn:aws:iam::123456789012:role/l
source_profile = loop2
[profile loop2]
role_arn = arn:aws:iam::123456789012:role/l
source_profile = loop1
[profile orphan]
role_arn = arn:aws:iam::123456789012:role/o
source_profile = nowhere
[profile refused]
role_arn = arn:aws:iam::123456789012:role/r
source_profile = denied
[profile mfa]
role_arn = arn:aws:iam::123456789012:role/m
source_profile = base
mfa_serial = arn:aws:iam::123456789012:mfa/me
`)
	c := wantKey(t, f, Options{Profile: "admin"}, "ASIAROLE1")
	if c.SecretAccessKey != "role-secret" || c.SessionToken != "role-session" {
		t.Errorf("credentials %+v", c)
	}
	form := f.form(0)
	for k, v := range map[string]string{"signer": "AKIDBASE", "Version": "2011-06-15", "RoleArn": "arn:aws:iam::123456789012:role/admin", "ExternalId": "ext-1", "RoleSessionName": "ci-run", "DurationSeconds": "3600"} {
		if form[k] != v {
			t.Errorf("AssumeRole %s = %q, want %q", k, form[k], v)
		}
	}

	// A chain: base -> admin -> deploy, each step signed by the one before.
	f.reset()
	wantKey(t, f, Options{Profile: "chained"}, "ASIAROLE2")
	if got := strings.Join(f.called(), "; "); got != "AssumeRole by AKIDBASE; AssumeRole by ASIAROLE1" {
		t.Errorf("calls: %s", got)
	}
	if !strings.HasPrefix(f.form(-1)["RoleSessionName"], "tentacle-") {
		t.Errorf("default session name %q", f.form(-1)["RoleSessionName"])
	}

	f.reset()
	wantKey(t, f, Options{Profile: "self"}, "ASIAROLE1")
	if got := f.called(); len(got) != 1 || got[0] != "AssumeRole by AKIDSELF" {
		t.Errorf("calls: %v", got)
	}

	// credential_source = Environment: the environment's keys sign, and
	// since --profile names the profile it wins over those keys themselves.
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDENV")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "s")
	f.reset()
	wantKey(t, f, Options{Profile: "fromenv"}, "ASIAROLE1")
	if got := f.called(); got[0] != "AssumeRole by AKIDENV" {
		t.Errorf("calls: %v", got)
	}

	// credential_source = Ec2InstanceMetadata, with Options.IMDSEndpoint
	// beating AWS_EC2_METADATA_SERVICE_ENDPOINT (which points nowhere).
	f.reset()
	wantKey(t, f, Options{Profile: "fromimds", IMDSEndpoint: f.URL}, "ASIAROLE3")
	if got := f.called(); got[len(got)-1] != "AssumeRole by ASIAIMDS" {
		t.Errorf("calls: %v", got)
	}

	_, err := open(t, f, Options{Profile: "loop1"})
	wantUserError(t, err, "No usable AWS credentials", "loop1 -> loop2 -> loop1")
	_, err = open(t, f, Options{Profile: "orphan"})
	wantUserError(t, err, `The AWS profile "nowhere" was not found`)
	_, err = open(t, f, Options{Profile: "refused"})
	wantUserError(t, err, "No usable AWS credentials", `profile "refused": assuming role arn:aws:iam::123456789012:role/r`, "AccessDenied", "is not authorized to perform: sts:AssumeRole")
	_, err = open(t, f, Options{Profile: "mfa"})
	wantUserError(t, err, `The AWS profile "mfa" needs an MFA code`)
}

func TestWebIdentity(t *testing.T) {
	f := newFakeAWS(t)
	home := fakeEnv(t, f)
	token := filepath.Join(home, "token")
	writeFile(t, token, oidcToken+"\n")
	t.Setenv("AWS_WEB_IDENTITY_TOKEN_FILE", token)
	t.Setenv("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/eks")
	t.Setenv("AWS_ROLE_SESSION_NAME", "pod-1")
	wantKey(t, f, Options{}, "ASIAWEB")
	form := f.form(0)
	if form["signer"] != "unsigned" || form["RoleArn"] != "arn:aws:iam::123456789012:role/eks" || form["RoleSessionName"] != "pod-1" {
		t.Errorf("form %v", form)
	}

	// Environment keys come first.
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDENV")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "s")
	wantKey(t, f, Options{}, "AKIDENV")
	t.Setenv("AWS_ACCESS_KEY_ID", "")

	t.Setenv("AWS_ROLE_ARN", "")
	_, err := open(t, f, Options{})
	wantUserError(t, err, "No usable AWS credentials", "AWS_WEB_IDENTITY_TOKEN_FILE gives a web identity token file but no role ARN")

	// In a profile.
	t.Setenv("AWS_WEB_IDENTITY_TOKEN_FILE", "")
	bad := filepath.Join(home, "bad-token")
	writeFile(t, bad, "forged")
	writeFile(t, os.Getenv("AWS_CONFIG_FILE"), fmt.Sprintf("[profile web]\nrole_arn = arn:aws:iam::123456789012:role/web\nweb_identity_token_file = %s\n[profile forged]\nrole_arn = arn:aws:iam::123456789012:role/web\nweb_identity_token_file = %s\n", token, bad))
	wantKey(t, f, Options{Profile: "web"}, "ASIAWEB")
	_, err = open(t, f, Options{Profile: "forged"})
	wantUserError(t, err, "InvalidIdentityToken")
}

func TestSSO(t *testing.T) {
	f := newFakeAWS(t)
	home := fakeEnv(t, f)
	writeFile(t, os.Getenv("AWS_CONFIG_FILE"), `
# IAM Identity Center, the current form
[profile dev]
sso_session = corp
sso_account_id = 111122223333
sso_role_name = Deployer
region = eu-west-1

[sso-session corp]
sso_start_url = https://corp.awsapps.com/start
sso_region = us-east-1
sso_registration_scopes = sso:account:access

; the legacy form
[profile legacy]
sso_start_url = https://legacy.awsapps.com/start
sso_region = us-east-1
sso_account_id = 444455556666
sso_role_name = ReadOnly

[profile broken]
sso_session = nosuch
sso_account_id = 1
sso_role_name = r

[profile partial]
sso_start_url = https://legacy.awsapps.com/start
sso_region = us-east-1
`)
	cache := func(key, token string, expires time.Time) {
		sum := sha1.Sum([]byte(key))
		doc, _ := json.Marshal(map[string]string{"startUrl": "x", "region": "us-east-1", "accessToken": token, "expiresAt": expires.UTC().Format(time.RFC3339)})
		writeFile(t, filepath.Join(home, ".aws", "sso", "cache", hex.EncodeToString(sum[:])+".json"), string(doc))
	}

	_, err := open(t, f, Options{Profile: "dev"})
	wantUserError(t, err, `The AWS SSO session of profile "dev" has expired or was never started`, "aws sso login --profile dev")

	cache("corp", ssoToken, time.Now().Add(time.Hour))
	c := wantKey(t, f, Options{Profile: "dev"}, "ASIASSO")
	if c.SessionToken != "sso-session" {
		t.Errorf("credentials %+v", c)
	}
	if got := f.called(); got[len(got)-1] != "SSO 111122223333/Deployer" {
		t.Errorf("calls %v", got)
	}

	cache("corp", ssoToken, time.Now().Add(-time.Hour))
	_, err = open(t, f, Options{Profile: "dev"})
	wantUserError(t, err, "aws sso login --profile dev")

	// Legacy: the cache is named after the start URL. A token the portal
	// no longer takes asks for a login too.
	cache("https://legacy.awsapps.com/start", "revoked", time.Now().Add(time.Hour))
	_, err = open(t, f, Options{Profile: "legacy"})
	wantUserError(t, err, "aws sso login --profile legacy")
	cache("https://legacy.awsapps.com/start", ssoToken, time.Now().Add(time.Hour))
	wantKey(t, f, Options{Profile: "legacy"}, "ASIASSO")

	_, err = open(t, f, Options{Profile: "broken"})
	wantUserError(t, err, `names sso_session "nosuch"`)
	_, err = open(t, f, Options{Profile: "partial"})
	wantUserError(t, err, `lacks sso_account_id, sso_role_name`)
}

func TestContainerCredentials(t *testing.T) {
	f := newFakeAWS(t)
	home := fakeEnv(t, f)
	containerHost = f.URL
	t.Setenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "/container/credentials?open=1")
	wantKey(t, f, Options{}, "ASIACONTAINER")

	t.Setenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "")
	t.Setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", f.URL+"/container/credentials")
	t.Setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN", "wrong")
	_, err := open(t, f, Options{})
	wantUserError(t, err, "No usable AWS credentials", "AccessDenied", "bad token")

	t.Setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN", containerToken)
	wantKey(t, f, Options{}, "ASIACONTAINER")
	// The token file wins over the variable (EKS Pod Identity).
	file := filepath.Join(home, "eks-token")
	writeFile(t, file, containerToken+"\n")
	t.Setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN", "wrong")
	t.Setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", file)
	wantKey(t, f, Options{}, "ASIACONTAINER")

	// Plain http off this machine would send the token in the clear.
	t.Setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://192.0.2.1/creds")
	_, err = open(t, f, Options{})
	wantUserError(t, err, "must be https, or http to a loopback address")
}

func TestInstanceProfile(t *testing.T) {
	f := newFakeAWS(t)
	fakeEnv(t, f)
	t.Setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", f.URL)
	c := wantKey(t, f, Options{}, "ASIAIMDS")
	if c.SessionToken != "imds-session" {
		t.Errorf("credentials %+v", c)
	}
	if got := strings.Join(f.called(), "; "); got != "IMDS /latest/meta-data/iam/security-credentials/; IMDS /latest/meta-data/iam/security-credentials/tentacle-role" {
		t.Errorf("calls: %s", got)
	}

	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	_, err := open(t, f, Options{})
	wantUserError(t, err, "No usable AWS credentials", "AWS_EC2_METADATA_DISABLED is set")
}

// TestNoCredentials: nothing anywhere gives one sentence naming every
// place looked in, and quickly (the metadata service is not there).
func TestNoCredentials(t *testing.T) {
	f := newFakeAWS(t)
	fakeEnv(t, f)
	// The refusal is the OS's own text: Windows says the target machine
	// "actively refused it" (Wine: "Connection refused").
	refused := "connection refused"
	if runtime.GOOS == "windows" {
		refused = "refused"
	}
	start := time.Now()
	_, err := open(t, f, Options{})
	wantUserError(t, err, "No usable AWS credentials were found: set AWS_PROFILE or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY",
		"AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (not set)", `profile "default" in `, "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
		"instance metadata service at "+nowhere, refused)
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("took %s", d)
	}
}

// TestSelfFromMetadata: --self takes the region from placement/region and
// the groups from the primary interface, with the IMDSv2 token.
func TestSelfFromMetadata(t *testing.T) {
	f := newFakeAWS(t)
	fakeEnv(t, f)
	t.Setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", f.URL)
	sg, err := New(context.Background(), Options{Self: true, EC2Endpoint: f.URL})
	if err != nil {
		t.Fatal(err)
	}
	targets, all := sg.Groups()
	if sg.region != "eu-central-1" || len(targets) != 1 || targets[0] != "sg-0000000000000000a" || len(all) != 2 {
		t.Fatalf("region %s, targets %v, all %v", sg.region, targets, all)
	}
	if sg.ec2.creds.AccessKeyID != "ASIAIMDS" {
		t.Errorf("credentials %+v", sg.ec2.creds)
	}
	// One IMDSv2 session for region, credentials and groups.
	if got := sg.Name(); got != "AWS security group sg-0000000000000000a (eu-central-1)" {
		t.Errorf("name %q", got)
	}

	// No metadata service, no region: the region sentence.
	t.Setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", nowhere)
	_, err = New(context.Background(), Options{Self: true, EC2Endpoint: f.URL})
	wantUserError(t, err, "No AWS region is set")
}

// TestListPagesAndErrors: DescribeSecurityGroups is read page by page; a
// throttled call is retried; AWS's error codes become sentences.
func TestListPagesAndErrors(t *testing.T) {
	f := newFakeAWS(t)
	fakeEnv(t, f)
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDENV")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "s")
	ctx := context.Background()
	sg, err := New(ctx, Options{GroupIDs: []string{"sg-0000000000000000a", "sg-0000000000000000b"}, Region: "us-east-1", EC2Endpoint: f.URL})
	if err != nil {
		t.Fatal(err)
	}
	f.failDescribe(http.StatusServiceUnavailable, "RequestLimitExceeded")
	rules, err := sg.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(rules) != 2 || rules[0].Name != "Tentacle & ü" || !strings.HasPrefix(rules[1].Location, "sg-0000000000000000b (web)") || len(rules[0].Sources) != 2 {
		t.Fatalf("rules %+v", rules)
	}
	form := f.form(-1)
	if form["GroupId.1"] != "sg-0000000000000000a" || form["GroupId.2"] != "sg-0000000000000000b" || form["NextToken"] != "page-2" || form["signer"] != "AKIDENV" {
		t.Errorf("last page's form %v", form)
	}
	if p, err := sg.PlanOpen(ctx, firewall.NewRule("", firewall.SinglePort(10933), nil)); err != nil || len(p.Steps) != 2 {
		t.Errorf("plan %v %v", p, err)
	}

	for code, want := range map[string]string{
		"UnauthorizedOperation":              "is not allowed ec2:DescribeSecurityGroups on sg-0000000000000000a, sg-0000000000000000b",
		"AuthFailure":                        "AWS rejected the credentials (AuthFailure)",
		"InvalidGroup.NotFound":              "was not found in region us-east-1",
		"InvalidParameterValue":              "AWS refused the rule (InvalidParameterValue): Request failed: InvalidParameterValue.",
		"RulesPerSecurityGroupLimitExceeded": "is full",
	} {
		f.failDescribe(http.StatusBadRequest, code)
		_, err := sg.List(ctx)
		wantUserError(t, err, want)
	}
	// Not one a user can fix: the code and message as AWS gave them.
	f.failDescribe(http.StatusBadRequest, "OptInRequired")
	if _, err := sg.List(ctx); err == nil || err.Error() != "EC2 DescribeSecurityGroups: OptInRequired: Request failed: OptInRequired." {
		t.Errorf("got %v", err)
	}
}
