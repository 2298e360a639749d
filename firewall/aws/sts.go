package aws

import (
	"bytes"
	"context"
	"encoding/xml"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/tentacle-go/tentacle/firewall"
)

// STS's AssumeRole (signed with the source credentials) and
// AssumeRoleWithWebIdentity (unsigned: the token is the proof), in the
// Query protocol, at the regional endpoint as the SDK uses it.

const stsAPIVersion = "2011-06-15"

func (c *chain) stsCall(ctx context.Context, action string, params url.Values, signer *credentials) (credentials, error) {
	params.Set("Action", action)
	params.Set("Version", stsAPIVersion)
	body := []byte(params.Encode())
	endpoint := serviceEndpoint("STS", "sts", c.region)
	region := c.region
	if region == "" {
		region = "us-east-1" // the global endpoint signs as us-east-1
	}
	resp, answer, err := exchange(ctx, apiHTTP, func() (*http.Request, error) {
		req, err := http.NewRequest(http.MethodPost, endpoint, bytes.NewReader(body))
		if err != nil {
			return nil, err
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
		if signer != nil {
			sign(req, body, *signer, "sts", region, c.now())
		}
		return req, nil
	}, maxAPIResponse, true)
	if err != nil {
		return credentials{}, fmt.Errorf("STS %s: %s", action, shortError(err))
	}
	if resp.StatusCode/100 != 2 {
		return credentials{}, queryError("STS", action, resp.StatusCode, answer)
	}
	type stsCredentials struct {
		AccessKeyID     string `xml:"AccessKeyId"`
		SecretAccessKey string `xml:"SecretAccessKey"`
		SessionToken    string `xml:"SessionToken"`
	}
	var out struct {
		Role stsCredentials `xml:"AssumeRoleResult>Credentials"`
		Web  stsCredentials `xml:"AssumeRoleWithWebIdentityResult>Credentials"`
	}
	if err := xml.Unmarshal(answer, &out); err != nil {
		return credentials{}, fmt.Errorf("STS %s: unreadable answer: %w", action, err)
	}
	got := out.Role
	if got.AccessKeyID == "" {
		got = out.Web
	}
	return credentials{AccessKeyID: got.AccessKeyID, SecretAccessKey: got.SecretAccessKey, SessionToken: got.SessionToken}, nil
}

// sessionName is the default RoleSessionName: unique, and naming this tool
// in CloudTrail.
func (c *chain) sessionName() string {
	return "tentacle-" + strconv.FormatInt(c.now().UnixNano(), 10)
}

// assumeRole assumes profile p's role_arn with base.
func (c *chain) assumeRole(ctx context.Context, base credentials, profile string, p section) (credentials, error) {
	if p["mfa_serial"] != "" {
		return credentials{}, firewall.Userf("The AWS profile %q needs an MFA code (mfa_serial), which this command cannot ask for: use a profile without MFA, or export temporary credentials (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN) first.", profile)
	}
	params := url.Values{"RoleArn": {p["role_arn"]}, "RoleSessionName": {p["role_session_name"]}}
	if params.Get("RoleSessionName") == "" {
		params.Set("RoleSessionName", c.sessionName())
	}
	if id := p["external_id"]; id != "" {
		params.Set("ExternalId", id)
	}
	if d := p["duration_seconds"]; d != "" {
		if _, err := strconv.Atoi(d); err != nil {
			return credentials{}, fmt.Errorf("profile %q: duration_seconds %q is not a number of seconds", profile, d)
		}
		params.Set("DurationSeconds", d)
	}
	creds, err := c.stsCall(ctx, "AssumeRole", params, &base)
	if err != nil {
		return credentials{}, fmt.Errorf("profile %q: assuming role %s with %s: %w", profile, p["role_arn"], base.Source, err)
	}
	creds.Source = fmt.Sprintf("role %s of profile %q", p["role_arn"], profile)
	return creds.check()
}

// webIdentity exchanges the OIDC token in tokenFile for role's credentials.
func (c *chain) webIdentity(ctx context.Context, tokenFile, role, session, from string) (credentials, error) {
	if role == "" {
		return credentials{}, fmt.Errorf("%s gives a web identity token file but no role ARN (AWS_ROLE_ARN or role_arn)", from)
	}
	token, err := os.ReadFile(tokenFile)
	if err != nil {
		return credentials{}, fmt.Errorf("%s: cannot read the web identity token: %w", from, err)
	}
	if session == "" {
		session = c.sessionName()
	}
	params := url.Values{"RoleArn": {role}, "RoleSessionName": {session}, "WebIdentityToken": {strings.TrimSpace(string(token))}}
	creds, err := c.stsCall(ctx, "AssumeRoleWithWebIdentity", params, nil)
	if err != nil {
		return credentials{}, fmt.Errorf("%s: assuming role %s with the web identity token in %s: %w", from, role, tokenFile, err)
	}
	creds.Source = "web identity role " + role
	return creds.check()
}

// expired reports whether t is past, with a minute to spare for the call.
func expired(t, now time.Time) bool { return !t.After(now.Add(time.Minute)) }
