package halibut

import (
	"bufio"
	"bytes"
	"strings"
	"testing"
)

// FuzzReadIdentity feeds the listener's pre-conversation readers (preamble,
// identity line, control word) arbitrary bytes: they must return, never
// panic, never read past their bound, and accept only well-formed lines.
func FuzzReadIdentity(f *testing.F) {
	for _, seed := range []string{
		"MX\r\n\r\nMX-CLIENT 1.0\r\n\r\n",
		"MX\n\nMX-SUBSCRIBER 1.0 poll://abcdefghjkmnpqrstuvw/\r\n\r\n",
		"MX\r\n\r\nMX-SERVER 1.0\r\n\r\nNEXT\r\n",
		"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
		"MX\r\n\r\nMX-SUBSCRIBER 1.0\r\n\r\n",
		"MX\r\n\r\nMX-CLIENT 1.0\rX",
		"\r\n\r\n\r\nPROCEED\r\n",
		"",
	} {
		f.Add([]byte(seed))
	}
	const maxLine = 256
	f.Fuzz(func(t *testing.T, data []byte) {
		r := bufio.NewReader(bytes.NewReader(data))
		pre, err := readPreamble(r, 64)
		if len(pre) > 64 {
			t.Fatalf("preamble of %d bytes past the bound", len(pre))
		}
		if err != nil || !strings.HasPrefix(pre, "MX") {
			return
		}
		id, err := readIdentity(r, maxLine)
		if err != nil {
			return
		}
		switch id.kind {
		case identityClient, identityServer:
		case identitySubscr:
			if id.subscription == nil || !id.subscription.IsAbs() {
				t.Fatalf("subscriber accepted without an absolute subscription: %+v", id)
			}
		default:
			t.Fatalf("unknown identity accepted: %q", id.kind)
		}
		for {
			word, err := readControlWord(r, maxLine)
			if err != nil {
				return
			}
			if word == "" || len(word) > maxLine || strings.ContainsAny(word, "\r") {
				t.Fatalf("bad control word accepted: %q", word)
			}
		}
	})
}
