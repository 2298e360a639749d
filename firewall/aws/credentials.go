package aws

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/tentacle-go/tentacle/firewall"
)

// The credential chain, in the SDK's default order:
//  1. AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (AWS_SESSION_TOKEN);
//  2. AWS_WEB_IDENTITY_TOKEN_FILE with AWS_ROLE_ARN (EKS, GitHub OIDC);
//  3. the profile: static keys, source_profile or credential_source with
//     role_arn, web_identity_token_file, SSO, credential_process;
//  4. the container endpoint (ECS, EKS Pod Identity);
//  5. the instance profile, from IMDSv2.
//
// A profile given with --profile comes first, before the environment's
// keys, as in the SDK; AWS_PROFILE does not.
// Credentials are fetched once: a run lasts seconds, far less than the
// 15 minutes the shortest of them live.

type credentials struct {
	AccessKeyID, SecretAccessKey, SessionToken string
	// Source says where they came from, for messages.
	Source string
}

func (c credentials) check() (credentials, error) {
	if c.AccessKeyID == "" || c.SecretAccessKey == "" {
		return credentials{}, fmt.Errorf("%s gave no access key", c.Source)
	}
	return c, nil
}

// containerHost is where AWS_CONTAINER_CREDENTIALS_RELATIVE_URI points
// (ECS's agent); a variable so that tests can put a local server there.
var containerHost = "http://169.254.170.2"

// maxRoleChain bounds source_profile chains, as loops are possible.
const maxRoleChain = 10

type chain struct {
	cfg *sharedConfig
	// profile is the profile to use; explicit when Options.Profile gave it.
	profile  string
	explicit bool
	region   string
	imds     *imdsClient
	now      func() time.Time
}

// resolve finds credentials. A problem with a source that is configured
// (a failing credential_process, a refused AssumeRole) is reported as such
// and the chain does not go on, as in the SDK.
func (c *chain) resolve(ctx context.Context) (credentials, error) {
	if !c.explicit {
		if k := envKeys(); k.AccessKeyID != "" {
			return k, nil
		}
		if f := os.Getenv("AWS_WEB_IDENTITY_TOKEN_FILE"); f != "" {
			return c.webIdentity(ctx, f, os.Getenv("AWS_ROLE_ARN"), os.Getenv("AWS_ROLE_SESSION_NAME"), "AWS_WEB_IDENTITY_TOKEN_FILE")
		}
	}
	return c.fromProfile(ctx, c.profile, nil)
}

// envKeys are the environment's keys, if both are set.
func envKeys() credentials {
	id, secret := os.Getenv("AWS_ACCESS_KEY_ID"), os.Getenv("AWS_SECRET_ACCESS_KEY")
	if id == "" || secret == "" {
		return credentials{}
	}
	return credentials{AccessKeyID: id, SecretAccessKey: secret, SessionToken: os.Getenv("AWS_SESSION_TOKEN"), Source: "the environment (AWS_ACCESS_KEY_ID)"}
}

func (c *chain) fromProfile(ctx context.Context, name string, seen []string) (credentials, error) {
	if slices.Contains(seen, name) || len(seen) > maxRoleChain {
		return credentials{}, fmt.Errorf("the profiles' source_profile settings loop: %s -> %s", strings.Join(seen, " -> "), name)
	}
	seen = append(seen, name)
	p := c.cfg.profiles[name]
	role := p["role_arn"]
	var base credentials
	var err error
	switch {
	case role != "" && p["source_profile"] != "":
		src := p["source_profile"]
		if src == name {
			// A profile may hold both the keys and the role to assume with them.
			base, err = staticKeys(p, name)
		} else if _, ok := c.cfg.profiles[src]; !ok {
			return credentials{}, errProfileNotFound{src}
		} else {
			base, err = c.fromProfile(ctx, src, seen)
		}
	case p["aws_access_key_id"] != "":
		base, err = staticKeys(p, name)
	case p["credential_source"] != "":
		base, err = c.fromCredentialSource(ctx, name, p["credential_source"])
	case p["web_identity_token_file"] != "":
		return c.webIdentity(ctx, p["web_identity_token_file"], role, p["role_session_name"], fmt.Sprintf("profile %q", name))
	case p["sso_session"] != "" || p["sso_start_url"] != "" || p["sso_account_id"] != "" || p["sso_role_name"] != "":
		base, err = c.sso(ctx, name, p)
	case p["credential_process"] != "":
		base, err = credentialProcess(ctx, name, p["credential_process"])
	case role != "":
		// The SDK refuses this too: which credentials assume the role is not
		// guessed from the machine.
		return credentials{}, firewall.Userf("The AWS profile %q has role_arn but nothing to assume it with: add source_profile, credential_source (Environment, Ec2InstanceMetadata or EcsContainer) or web_identity_token_file to it.", name)
	case containerConfigured():
		base, err = containerCredentials(ctx)
	default:
		base, err = c.imds.instanceCredentials(ctx)
		if err != nil && role == "" {
			return credentials{}, c.triedAll(name, err)
		}
	}
	if err != nil {
		return credentials{}, err
	}
	if role != "" {
		return c.assumeRole(ctx, base, name, p)
	}
	return base, nil
}

// triedAll names every place looked in, for the "No usable AWS
// credentials" sentence.
func (c *chain) triedAll(profile string, imdsErr error) error {
	var tried []string
	if !c.explicit {
		tried = append(tried, "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (not set)", "AWS_WEB_IDENTITY_TOKEN_FILE (not set)")
	}
	tried = append(tried,
		fmt.Sprintf("profile %q in %s and %s (no credentials)", profile, c.cfg.configFile, c.cfg.credentialsFile),
		"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI and _FULL_URI (not set)")
	if errors.Is(imdsErr, errIMDSDisabled) {
		tried = append(tried, "the instance profile (AWS_EC2_METADATA_DISABLED is set)")
	} else {
		tried = append(tried, "the instance profile from the instance metadata service at "+c.imds.endpoint+" ("+shortError(imdsErr)+")")
	}
	return errors.New("tried " + strings.Join(tried, ", "))
}

func staticKeys(p section, name string) (credentials, error) {
	return credentials{
		AccessKeyID:     p["aws_access_key_id"],
		SecretAccessKey: p["aws_secret_access_key"],
		SessionToken:    p["aws_session_token"],
		Source:          fmt.Sprintf("profile %q", name),
	}.check()
}

// fromCredentialSource is a role profile's credential_source: where the
// keys to assume the role with come from.
func (c *chain) fromCredentialSource(ctx context.Context, profile, source string) (credentials, error) {
	switch source {
	case "Environment":
		if k := envKeys(); k.AccessKeyID != "" {
			return k, nil
		}
		return credentials{}, fmt.Errorf("profile %q has credential_source = Environment, but AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not set", profile)
	case "Ec2InstanceMetadata":
		return c.imds.instanceCredentials(ctx)
	case "EcsContainer":
		if !containerConfigured() {
			return credentials{}, fmt.Errorf("profile %q has credential_source = EcsContainer, but AWS_CONTAINER_CREDENTIALS_RELATIVE_URI (or _FULL_URI) is not set", profile)
		}
		return containerCredentials(ctx)
	}
	return credentials{}, fmt.Errorf("profile %q has credential_source = %s: use Environment, Ec2InstanceMetadata or EcsContainer", profile, source)
}

// credentialProcess runs a profile's credential_process through the shell,
// as the SDK does, and reads its JSON (Version 1) from stdout. Its stderr
// and stdin are the user's, for prompts.
// https://docs.aws.amazon.com/sdkref/latest/guide/feature-process-credentials.html
func credentialProcess(ctx context.Context, profile, command string) (credentials, error) {
	ctx, cancel := context.WithTimeout(ctx, processTimeout)
	defer cancel()
	var cmd *exec.Cmd
	if runtime.GOOS == "windows" {
		cmd = exec.CommandContext(ctx, "cmd.exe", "/C", command)
	} else {
		cmd = exec.CommandContext(ctx, "sh", "-c", command)
	}
	cmd.Stdin, cmd.Stderr = os.Stdin, os.Stderr
	cmd.WaitDelay = time.Second
	fail := func(err error) (credentials, error) {
		return credentials{}, fmt.Errorf("the credential_process of profile %q: %w", profile, err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return fail(err)
	}
	if err := cmd.Start(); err != nil {
		return fail(err)
	}
	out, readErr := io.ReadAll(io.LimitReader(stdout, maxSmallResponse))
	io.Copy(io.Discard, stdout)
	if err := cmd.Wait(); err != nil {
		if ctx.Err() != nil {
			return fail(fmt.Errorf("no answer within %s", processTimeout))
		}
		return fail(err)
	}
	if readErr != nil {
		return fail(readErr)
	}
	var v struct {
		Version         int
		AccessKeyID     string `json:"AccessKeyId"`
		SecretAccessKey string
		SessionToken    string
		Expiration      *time.Time
	}
	if err := json.Unmarshal(out, &v); err != nil {
		return fail(fmt.Errorf("its output is not the expected JSON: %w", err))
	}
	if v.Version != 1 {
		return fail(fmt.Errorf("its output has Version %d; only 1 is defined", v.Version))
	}
	if v.Expiration != nil && !v.Expiration.After(time.Now()) {
		return fail(fmt.Errorf("it returned credentials that expired at %s", v.Expiration.Format(time.RFC3339)))
	}
	return credentials{AccessKeyID: v.AccessKeyID, SecretAccessKey: v.SecretAccessKey, SessionToken: v.SessionToken,
		Source: fmt.Sprintf("the credential_process of profile %q", profile)}.check()
}

func containerConfigured() bool {
	return os.Getenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI") != "" || os.Getenv("AWS_CONTAINER_CREDENTIALS_FULL_URI") != ""
}

// containerCredentials asks the container's credential endpoint: ECS's
// agent at a relative URI, or a full URI (EKS Pod Identity, local tools)
// with an authorization token.
// https://docs.aws.amazon.com/sdkref/latest/guide/feature-container-credentials.html
func containerCredentials(ctx context.Context) (credentials, error) {
	endpoint := os.Getenv("AWS_CONTAINER_CREDENTIALS_FULL_URI")
	if rel := os.Getenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"); rel != "" {
		endpoint = containerHost + rel
	} else if err := checkFullURI(endpoint); err != nil {
		return credentials{}, err
	}
	token := os.Getenv("AWS_CONTAINER_AUTHORIZATION_TOKEN")
	if f := os.Getenv("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"); f != "" {
		b, err := os.ReadFile(f)
		if err != nil {
			return credentials{}, fmt.Errorf("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE: %w", err)
		}
		token = strings.TrimSpace(string(b))
	}
	if strings.ContainsAny(token, "\r\n") {
		return credentials{}, errors.New("the container authorization token contains a line break")
	}
	resp, body, err := exchange(ctx, localHTTP, func() (*http.Request, error) {
		req, err := http.NewRequest(http.MethodGet, endpoint, nil)
		if err == nil && token != "" {
			req.Header.Set("Authorization", token)
		}
		return req, err
	}, maxSmallResponse, true)
	if err != nil {
		return credentials{}, fmt.Errorf("container credentials: %s", shortError(err))
	}
	var v struct {
		AccessKeyID     string `json:"AccessKeyId"`
		SecretAccessKey string
		Token           string
		Code, Message   string
	}
	jsonErr := json.Unmarshal(body, &v)
	if resp.StatusCode != http.StatusOK {
		e := &apiError{Service: "container credentials", Action: endpoint, Status: resp.StatusCode, Code: v.Code, Message: v.Message}
		if jsonErr != nil || e.Message == "" {
			e.Message = snippet(body)
		}
		return credentials{}, e
	}
	if jsonErr != nil {
		return credentials{}, fmt.Errorf("container credentials from %s: %w", endpoint, jsonErr)
	}
	return credentials{AccessKeyID: v.AccessKeyID, SecretAccessKey: v.SecretAccessKey, SessionToken: v.Token, Source: "the container credentials endpoint"}.check()
}

// checkFullURI allows https anywhere, and plain http only to this machine
// or to the ECS and EKS agents' link-local addresses, as the SDK does: the
// token must not cross a network in the clear.
func checkFullURI(endpoint string) error {
	u, err := url.Parse(endpoint)
	if err != nil || u.Host == "" {
		return fmt.Errorf("AWS_CONTAINER_CREDENTIALS_FULL_URI %q is not a URL", endpoint)
	}
	if u.Scheme == "https" {
		return nil
	}
	host := u.Hostname()
	if ip := net.ParseIP(host); u.Scheme == "http" && (host == "localhost" || ip != nil &&
		(ip.IsLoopback() || ip.Equal(net.ParseIP("169.254.170.2")) || ip.Equal(net.ParseIP("169.254.170.23")) || ip.Equal(net.ParseIP("fd00:ec2::23")))) {
		return nil
	}
	return fmt.Errorf("AWS_CONTAINER_CREDENTIALS_FULL_URI %q must be https, or http to a loopback address or the ECS/EKS agent", endpoint)
}

// userErrorOf passes a firewall.UserError through unchanged.
func userErrorOf(err error) (*firewall.UserError, bool) {
	var ue *firewall.UserError
	ok := errors.As(err, &ue)
	return ue, ok
}
