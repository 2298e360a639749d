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
)

// The three EC2 calls this package makes, in the EC2 Query protocol: a
// form-encoded POST, an XML answer.
// https://docs.aws.amazon.com/AWSEC2/latest/APIReference/Query-Requests.html

const ec2APIVersion = "2016-11-15"

type ec2Client struct {
	endpoint string
	region   string
	creds    credentials
	http     *http.Client
	now      func() time.Time
}

// securityGroup, ipPermission and addressRange are the parts of
// DescribeSecurityGroups' answer this package reads.
type securityGroup struct {
	GroupID       string         `xml:"groupId"`
	GroupName     string         `xml:"groupName"`
	IPPermissions []ipPermission `xml:"ipPermissions>item"`
}

type ipPermission struct {
	IPProtocol string         `xml:"ipProtocol"`
	FromPort   int32          `xml:"fromPort"`
	ToPort     int32          `xml:"toPort"`
	IPRanges   []addressRange `xml:"ipRanges>item"`
	IPv6Ranges []addressRange `xml:"ipv6Ranges>item"`
}

type addressRange struct {
	CidrIP      string `xml:"cidrIp"`
	CidrIPv6    string `xml:"cidrIpv6"`
	Description string `xml:"description"`
}

// apiError is an error answer of an AWS Query API (EC2's
// <Response><Errors><Error>, STS's <ErrorResponse><Error>) or of a JSON one.
type apiError struct {
	Service, Action string
	Status          int
	Code, Message   string
}

func (e *apiError) Error() string {
	code := e.Code
	if code == "" {
		code = "HTTP " + strconv.Itoa(e.Status)
	}
	if e.Message == "" {
		return fmt.Sprintf("%s %s: %s", e.Service, e.Action, code)
	}
	return fmt.Sprintf("%s %s: %s: %s", e.Service, e.Action, code, e.Message)
}

// queryError reads a Query API error body; one that is not AWS's XML (a
// proxy's page) keeps the HTTP status and the start of the text.
func queryError(service, action string, status int, body []byte) *apiError {
	var doc struct {
		Errors []struct {
			Code    string `xml:"Code"`
			Message string `xml:"Message"`
		} `xml:"Errors>Error"`
		Error struct {
			Code    string `xml:"Code"`
			Message string `xml:"Message"`
		} `xml:"Error"`
	}
	e := &apiError{Service: service, Action: action, Status: status}
	if xml.Unmarshal(body, &doc) == nil {
		if len(doc.Errors) > 0 {
			e.Code, e.Message = doc.Errors[0].Code, doc.Errors[0].Message
		} else {
			e.Code, e.Message = doc.Error.Code, doc.Error.Message
		}
	}
	if e.Code == "" {
		e.Message = snippet(body)
	}
	return e
}

func snippet(body []byte) string {
	s := strings.Join(strings.Fields(string(body)), " ")
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}

// call POSTs action with params, signed, and decodes a 2xx answer into out.
func (c *ec2Client) call(ctx context.Context, action string, params url.Values, out any) error {
	params.Set("Action", action)
	params.Set("Version", ec2APIVersion)
	body := []byte(params.Encode())
	resp, answer, err := exchange(ctx, c.http, func() (*http.Request, error) {
		req, err := http.NewRequest(http.MethodPost, c.endpoint, bytes.NewReader(body))
		if err != nil {
			return nil, err
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
		sign(req, body, c.creds, "ec2", c.region, c.now())
		return req, nil
	}, maxAPIResponse, true)
	if err != nil {
		return fmt.Errorf("EC2 %s: %w", action, err)
	}
	if resp.StatusCode/100 != 2 {
		return queryError("EC2", action, resp.StatusCode, answer)
	}
	if out == nil {
		return nil
	}
	if err := xml.Unmarshal(answer, out); err != nil {
		return fmt.Errorf("EC2 %s: unreadable answer: %w", action, err)
	}
	return nil
}

// describeSecurityGroups reads the groups, page after page.
func (c *ec2Client) describeSecurityGroups(ctx context.Context, ids []string) ([]securityGroup, error) {
	var groups []securityGroup
	token := ""
	for page := 0; ; page++ {
		params := url.Values{}
		for i, id := range ids {
			params.Set("GroupId."+strconv.Itoa(i+1), id)
		}
		if token != "" {
			params.Set("NextToken", token)
		}
		var out struct {
			Groups    []securityGroup `xml:"securityGroupInfo>item"`
			NextToken string          `xml:"nextToken"`
		}
		if err := c.call(ctx, "DescribeSecurityGroups", params, &out); err != nil {
			return nil, err
		}
		groups = append(groups, out.Groups...)
		// A token that repeats would loop for ever.
		if out.NextToken == "" || out.NextToken == token || page > 1000 {
			return groups, nil
		}
		token = out.NextToken
	}
}

func (c *ec2Client) authorizeIngress(ctx context.Context, group string, p ipPermission) error {
	return c.call(ctx, "AuthorizeSecurityGroupIngress", permissionParams(group, p), nil)
}

func (c *ec2Client) revokeIngress(ctx context.Context, group string, p ipPermission) error {
	return c.call(ctx, "RevokeSecurityGroupIngress", permissionParams(group, p), nil)
}

// permissionParams is one IpPermissions entry as the Query protocol spells
// it: IpPermissions.1.IpRanges.2.CidrIp and so on.
func permissionParams(group string, p ipPermission) url.Values {
	v := url.Values{}
	v.Set("GroupId", group)
	const pre = "IpPermissions.1."
	v.Set(pre+"IpProtocol", p.IPProtocol)
	v.Set(pre+"FromPort", strconv.Itoa(int(p.FromPort)))
	v.Set(pre+"ToPort", strconv.Itoa(int(p.ToPort)))
	for i, r := range p.IPRanges {
		n := pre + "IpRanges." + strconv.Itoa(i+1) + "."
		v.Set(n+"CidrIp", r.CidrIP)
		if r.Description != "" {
			v.Set(n+"Description", r.Description)
		}
	}
	for i, r := range p.IPv6Ranges {
		n := pre + "Ipv6Ranges." + strconv.Itoa(i+1) + "."
		v.Set(n+"CidrIpv6", r.CidrIPv6)
		if r.Description != "" {
			v.Set(n+"Description", r.Description)
		}
	}
	return v
}

// serviceEndpoint is where service (EC2, STS, SSO) is reached in region:
// an endpoint configured in the environment as the SDK honours it, else
// AWS's regional one. The service's host prefix is host.
func serviceEndpoint(service, host, region string) string {
	if !envTrue("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS") {
		if v := os.Getenv("AWS_ENDPOINT_URL_" + service); v != "" {
			return v
		}
		if v := os.Getenv("AWS_ENDPOINT_URL"); v != "" {
			return v
		}
	}
	if region == "" {
		return "https://" + host + ".amazonaws.com"
	}
	return "https://" + host + "." + region + "." + dnsSuffix(region)
}

// dnsSuffix is the domain of region's partition.
func dnsSuffix(region string) string {
	switch {
	case strings.HasPrefix(region, "cn-"):
		return "amazonaws.com.cn"
	case strings.HasPrefix(region, "us-isob-"):
		return "sc2s.sgov.gov"
	case strings.HasPrefix(region, "us-isof-"):
		return "csp.hci.ic.gov"
	case strings.HasPrefix(region, "us-iso-"):
		return "c2s.ic.gov"
	case strings.HasPrefix(region, "eu-isoe-"):
		return "cloud.adc-e.uk"
	}
	return "amazonaws.com"
}

func envTrue(name string) bool {
	return strings.EqualFold(strings.TrimSpace(os.Getenv(name)), "true")
}
