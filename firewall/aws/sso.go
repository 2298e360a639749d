package aws

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/tentacle-go/tentacle/firewall"
)

// IAM Identity Center (SSO) profiles: the access token `aws sso login`
// cached, exchanged at the SSO portal for the account role's credentials.
// This package does not refresh the token itself (the CLI does that on
// login); an expired one asks the user to log in again.
// https://docs.aws.amazon.com/sdkref/latest/guide/feature-sso-credentials.html

func (c *chain) sso(ctx context.Context, profile string, p section) (credentials, error) {
	region, startURL, cacheKey := p["sso_region"], p["sso_start_url"], p["sso_start_url"]
	if name := p["sso_session"]; name != "" {
		s, ok := c.cfg.ssoSessions[name]
		if !ok {
			return credentials{}, firewall.Userf("The AWS profile %q names sso_session %q, but %s has no [sso-session %s] section: run `aws configure sso --profile %s`.", profile, name, c.cfg.configFile, name, profile)
		}
		region, startURL, cacheKey = s["sso_region"], s["sso_start_url"], name
	}
	var missing []string
	for _, k := range []struct{ key, value string }{{"sso_start_url", startURL}, {"sso_region", region}, {"sso_account_id", p["sso_account_id"]}, {"sso_role_name", p["sso_role_name"]}} {
		if k.value == "" {
			missing = append(missing, k.key)
		}
	}
	if len(missing) > 0 {
		return credentials{}, firewall.Userf("The AWS SSO profile %q lacks %s: run `aws configure sso --profile %s`.", profile, strings.Join(missing, ", "), profile)
	}
	login := firewall.Userf("The AWS SSO session of profile %q has expired or was never started: run `aws sso login --profile %s`, then try again.", profile, profile)

	home := homeDir()
	if home == "" {
		return credentials{}, firewall.Userf("The AWS SSO profile %q needs the SSO token cache in ~/.aws/sso/cache, but there is no home directory (HOME is not set): set HOME, or use another kind of credentials.", profile)
	}
	sum := sha1.Sum([]byte(cacheKey))
	file := filepath.Join(home, ".aws", "sso", "cache", hex.EncodeToString(sum[:])+".json")
	data, err := os.ReadFile(file)
	if errors.Is(err, fs.ErrNotExist) {
		return credentials{}, login
	}
	if err != nil {
		return credentials{}, fmt.Errorf("the SSO token cache: %w", err)
	}
	var cached struct {
		AccessToken string `json:"accessToken"`
		ExpiresAt   string `json:"expiresAt"`
	}
	if err := json.Unmarshal(data, &cached); err != nil || cached.AccessToken == "" {
		return credentials{}, login
	}
	if at, ok := parseSSOTime(cached.ExpiresAt); !ok || expired(at, c.now()) {
		return credentials{}, login
	}

	endpoint := strings.TrimSuffix(serviceEndpoint("SSO", "portal.sso", region), "/") + "/federation/credentials?" +
		url.Values{"account_id": {p["sso_account_id"]}, "role_name": {p["sso_role_name"]}}.Encode()
	resp, body, err := exchange(ctx, apiHTTP, func() (*http.Request, error) {
		req, err := http.NewRequest(http.MethodGet, endpoint, nil)
		if err == nil {
			req.Header.Set("X-Amz-Sso_bearer_token", cached.AccessToken)
		}
		return req, err
	}, maxSmallResponse, true)
	if err != nil {
		return credentials{}, fmt.Errorf("SSO GetRoleCredentials: %s", shortError(err))
	}
	if resp.StatusCode == http.StatusUnauthorized {
		return credentials{}, login
	}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Message string `json:"message"`
		}
		json.Unmarshal(body, &e)
		code, _, _ := strings.Cut(resp.Header.Get("X-Amzn-Errortype"), ":")
		return credentials{}, fmt.Errorf("profile %q: %w", profile, &apiError{Service: "SSO", Action: "GetRoleCredentials", Status: resp.StatusCode, Code: code, Message: e.Message})
	}
	var out struct {
		RoleCredentials struct {
			AccessKeyID     string `json:"accessKeyId"`
			SecretAccessKey string `json:"secretAccessKey"`
			SessionToken    string `json:"sessionToken"`
		} `json:"roleCredentials"`
	}
	if err := json.Unmarshal(body, &out); err != nil {
		return credentials{}, fmt.Errorf("SSO GetRoleCredentials: unreadable answer: %w", err)
	}
	rc := out.RoleCredentials
	return credentials{AccessKeyID: rc.AccessKeyID, SecretAccessKey: rc.SecretAccessKey, SessionToken: rc.SessionToken,
		Source: fmt.Sprintf("SSO role %s of profile %q", p["sso_role_name"], profile)}.check()
}

// parseSSOTime reads the cache's expiresAt: RFC 3339, or the older
// "2006-01-02T15:04:05UTC" some CLI versions wrote.
func parseSSOTime(s string) (time.Time, bool) {
	for _, layout := range []string{time.RFC3339, "2006-01-02T15:04:05UTC"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}
