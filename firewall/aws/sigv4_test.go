package aws

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"reflect"
	"sync"
	"testing"
	"time"

	awssdk "github.com/aws/aws-sdk-go-v2/aws"
	sdkv4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/tentacle-go/tentacle/firewall"
)

// TestSignMatchesSDK: our signer and the SDK's, on the same request at the
// same time with the same credentials, give the same Authorization.
func TestSignMatchesSDK(t *testing.T) {
	at := time.Date(2026, 3, 9, 23, 59, 58, 0, time.UTC)
	static := credentials{AccessKeyID: "AKIDEXAMPLE", SecretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"}
	session := static
	session.AccessKeyID, session.SessionToken = "ASIAEXAMPLE", "FwoGZXIvYXdzEJr//////////wEaDHf0+session/token=="
	rule := firewall.NewRule("Tentacle: ünïcode & spaces  (x)", firewall.PortRange{First: 10933, Last: 10940},
		[]netip.Prefix{netip.MustParsePrefix("203.0.113.0/24"), netip.MustParsePrefix("2001:db8::/64")})
	authorize := permissionParams("sg-0123456789abcdef0", permission(rule, rule.Sources))
	authorize.Set("Action", "AuthorizeSecurityGroupIngress")
	authorize.Set("Version", ec2APIVersion)

	cases := []struct {
		name, method, url, service, region string
		body                               string
		headers                            map[string]string
		creds                              credentials
	}{
		{"describe", "POST", "https://ec2.us-east-1.amazonaws.com/", "ec2", "us-east-1", "Action=DescribeSecurityGroups&GroupId.1=sg-0123456789abcdef0&Version=2016-11-15", nil, static},
		{"authorize with a session token and odd description", "POST", "https://ec2.eu-west-1.amazonaws.com", "ec2", "eu-west-1", authorize.Encode(), nil, session},
		{"china, default port", "POST", "https://ec2.cn-north-1.amazonaws.com.cn:443/", "ec2", "cn-north-1", "Action=DescribeSecurityGroups&Version=2016-11-15", nil, session},
		{"local endpoint with a port", "POST", "http://127.0.0.1:5000/", "sts", "us-east-1", "Action=AssumeRole&RoleArn=arn%3Aaws%3Aiam%3A%3A123456789012%3Arole%2Fx&RoleSessionName=s&Version=2011-06-15", nil, static},
		{"query string, spaces in a header", "GET", "https://example.amazonaws.com/a%20b/c~d?b=2&a=1&a-b=3&a=%C3%BC+x&empty=", "svc", "ap-south-1", "", map[string]string{"X-Custom": "  two   spaces  ", "User-Agent": "not signed"}, static},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			build := func() *http.Request {
				var body io.Reader
				if c.body != "" {
					body = bytes.NewReader([]byte(c.body))
				}
				r, err := http.NewRequest(c.method, c.url, body)
				if err != nil {
					t.Fatal(err)
				}
				if c.body != "" {
					r.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
				}
				for k, v := range c.headers {
					r.Header.Set(k, v)
				}
				return r
			}
			ours := build()
			sign(ours, []byte(c.body), c.creds, c.service, c.region, at)

			theirs := build()
			hash := sha256.Sum256([]byte(c.body))
			err := sdkv4.NewSigner().SignHTTP(context.Background(),
				awssdk.Credentials{AccessKeyID: c.creds.AccessKeyID, SecretAccessKey: c.creds.SecretAccessKey, SessionToken: c.creds.SessionToken},
				theirs, hex.EncodeToString(hash[:]), c.service, c.region, at)
			if err != nil {
				t.Fatal(err)
			}
			for _, h := range []string{"Authorization", "X-Amz-Date", "X-Amz-Security-Token"} {
				if got, want := ours.Header.Get(h), theirs.Header.Get(h); got != want {
					t.Errorf("%s:\n ours %s\n SDK  %s", h, got, want)
				}
			}
			if ours.Host != theirs.Host && theirs.Host != "" {
				t.Errorf("Host: ours %q, SDK %q", ours.Host, theirs.Host)
			}
		})
	}
}

// TestQueryParametersMatchSDK: the form our EC2 client posts is the one the
// SDK's ec2 client posts for the same call.
func TestQueryParametersMatchSDK(t *testing.T) {
	var mu sync.Mutex
	var forms []url.Values
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm()
		mu.Lock()
		forms = append(forms, r.PostForm)
		mu.Unlock()
		w.Header().Set("Content-Type", "text/xml")
		io.WriteString(w, `<AuthorizeSecurityGroupIngressResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><requestId>r</requestId><return>true</return></AuthorizeSecurityGroupIngressResponse>`)
	}))
	defer srv.Close()
	ctx := context.Background()
	rule := firewall.NewRule("Octopus: ümlaut & more", firewall.PortRange{First: 10933, Last: 10940},
		[]netip.Prefix{netip.MustParsePrefix("203.0.113.0/24"), netip.MustParsePrefix("198.51.100.7/32"), netip.MustParsePrefix("2001:db8::/64")})
	perm := permission(rule, rule.Sources)

	ours := &ec2Client{endpoint: srv.URL, region: "us-east-1", creds: credentials{AccessKeyID: "a", SecretAccessKey: "b"}, http: srv.Client(), now: time.Now}
	if err := ours.authorizeIngress(ctx, "sg-0123456789abcdef0", perm); err != nil {
		t.Fatal(err)
	}
	sdk := ec2.New(ec2.Options{Region: "us-east-1", BaseEndpoint: awssdk.String(srv.URL), Credentials: awssdk.AnonymousCredentials{}, HTTPClient: srv.Client()})
	sdkPerm := types.IpPermission{IpProtocol: awssdk.String("tcp"), FromPort: awssdk.Int32(10933), ToPort: awssdk.Int32(10940)}
	for _, r := range perm.IPRanges {
		sdkPerm.IpRanges = append(sdkPerm.IpRanges, types.IpRange{CidrIp: awssdk.String(r.CidrIP), Description: awssdk.String(r.Description)})
	}
	for _, r := range perm.IPv6Ranges {
		sdkPerm.Ipv6Ranges = append(sdkPerm.Ipv6Ranges, types.Ipv6Range{CidrIpv6: awssdk.String(r.CidrIPv6), Description: awssdk.String(r.Description)})
	}
	if _, err := sdk.AuthorizeSecurityGroupIngress(ctx, &ec2.AuthorizeSecurityGroupIngressInput{GroupId: awssdk.String("sg-0123456789abcdef0"), IpPermissions: []types.IpPermission{sdkPerm}}); err != nil {
		t.Fatal(err)
	}
	if len(forms) != 2 || !reflect.DeepEqual(forms[0], forms[1]) {
		t.Fatalf("forms differ:\n ours %v\n SDK  %v", forms[0], forms[1])
	}
}
