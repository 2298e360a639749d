package aws

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// AWS Signature Version 4, as the SDK's signer computes it for a header-
// signed (not presigned) request: the same headers signed, so the tests can
// hold the two side by side.
// https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_sigv-create-signed-request.html

const (
	sigAlgorithm  = "AWS4-HMAC-SHA256"
	amzDateFormat = "20060102T150405Z"
)

// unsignedHeaders are left out of the signature, as the SDK leaves them:
// proxies and the transport may change them on the way.
var unsignedHeaders = []string{"authorization", "user-agent", "x-amzn-trace-id", "expect", "transfer-encoding"}

// sign adds X-Amz-Date, X-Amz-Security-Token (with a session token) and
// Authorization to r, whose body is body, for service in region at t.
func sign(r *http.Request, body []byte, c credentials, service, region string, t time.Time) {
	t = t.UTC()
	r.Header.Set("X-Amz-Date", t.Format(amzDateFormat))
	if c.SessionToken != "" {
		r.Header.Set("X-Amz-Security-Token", c.SessionToken)
	}
	host := signingHost(r)
	r.Host = host

	// The headers signed: host, content-length when there is a body, and
	// every header set on r but those the transport may rewrite.
	values := map[string][]string{"host": {host}}
	if len(body) > 0 {
		values["content-length"] = []string{strconv.Itoa(len(body))}
	}
	for k, v := range r.Header {
		lk := strings.ToLower(k)
		if slices.Contains(unsignedHeaders, lk) || lk == "content-length" {
			continue
		}
		values[lk] = append(values[lk], v...)
	}
	names := make([]string, 0, len(values))
	for k := range values {
		names = append(names, k)
	}
	slices.Sort(names)
	var headers strings.Builder
	for _, k := range names {
		headers.WriteString(k + ":")
		for i, v := range values[k] {
			if i > 0 {
				headers.WriteByte(',')
			}
			headers.WriteString(collapseSpaces(v))
		}
		headers.WriteByte('\n')
	}
	signed := strings.Join(names, ";")

	payload := sha256.Sum256(body)
	canonical := strings.Join([]string{
		r.Method,
		canonicalPath(r.URL),
		canonicalQuery(r.URL.Query()),
		headers.String(),
		signed,
		hex.EncodeToString(payload[:]),
	}, "\n")

	day := t.Format("20060102")
	scope := day + "/" + region + "/" + service + "/aws4_request"
	canonicalHash := sha256.Sum256([]byte(canonical))
	toSign := sigAlgorithm + "\n" + t.Format(amzDateFormat) + "\n" + scope + "\n" + hex.EncodeToString(canonicalHash[:])

	key := hmacSHA256([]byte("AWS4"+c.SecretAccessKey), day)
	key = hmacSHA256(key, region)
	key = hmacSHA256(key, service)
	key = hmacSHA256(key, "aws4_request")
	signature := hex.EncodeToString(hmacSHA256(key, toSign))

	r.Header.Set("Authorization", sigAlgorithm+" Credential="+c.AccessKeyID+"/"+scope+", SignedHeaders="+signed+", Signature="+signature)
}

func hmacSHA256(key []byte, data string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(data))
	return m.Sum(nil)
}

// signingHost is the Host header as sent: the default port left out, since
// the server signs what it receives.
func signingHost(r *http.Request) string {
	host := r.Host
	if host == "" {
		host = r.URL.Host
	}
	if h, port, err := net.SplitHostPort(host); err == nil {
		if port == "443" && r.URL.Scheme == "https" || port == "80" && r.URL.Scheme == "http" {
			if strings.Contains(h, ":") {
				return "[" + h + "]"
			}
			return h
		}
	}
	return host
}

// canonicalPath escapes the already escaped path once more, as every
// service but S3 expects.
func canonicalPath(u *url.URL) string {
	p := u.EscapedPath()
	if p == "" {
		return "/"
	}
	return uriEncode(p, false)
}

func canonicalQuery(q url.Values) string {
	// Sorted by encoded name, then value: not as joined strings, where
	// "a-b=" would sort before "a=".
	var pairs [][2]string
	for k, vs := range q {
		for _, v := range vs {
			pairs = append(pairs, [2]string{uriEncode(k, true), uriEncode(v, true)})
		}
	}
	slices.SortFunc(pairs, func(a, b [2]string) int {
		if c := strings.Compare(a[0], b[0]); c != 0 {
			return c
		}
		return strings.Compare(a[1], b[1])
	})
	joined := make([]string, len(pairs))
	for i, p := range pairs {
		joined[i] = p[0] + "=" + p[1]
	}
	return strings.Join(joined, "&")
}

// uriEncode is SigV4's UriEncode: every byte but A-Z a-z 0-9 - _ . ~ as
// %XX, and '/' too when encodeSlash.
func uriEncode(s string, encodeSlash bool) string {
	const hexDigits = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.' || c == '~' || c == '/' && !encodeSlash {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hexDigits[c>>4])
		b.WriteByte(hexDigits[c&15])
	}
	return b.String()
}

// collapseSpaces trims a header value and folds runs of spaces into one.
func collapseSpaces(v string) string {
	return strings.Join(strings.FieldsFunc(v, func(r rune) bool { return r == ' ' }), " ")
}
