package halibut

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"
)

// Control text of the conversation (reference/halibut-protocol.md §2-3).
// Every control line ends with CR LF; an identity line is followed by an
// empty line, in the same write.
const (
	preamble        = "MX\r\n\r\n"
	identityClient  = "MX-CLIENT"
	identitySubscr  = "MX-SUBSCRIBER"
	identityServer  = "MX-SERVER"
	protocolVersion = "1.0"
	controlNext     = "NEXT"
	controlProceed  = "PROCEED"
	controlEnd      = "END"
)

// ErrProtocol wraps every violation of the conversation by a peer. After
// one, the connection is closed.
var ErrProtocol = errors.New("halibut protocol error")

func protocolErrorf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrProtocol, fmt.Sprintf(format, args...))
}

// readPreamble reads what a dialer sends right after TLS, the way upstream's
// listener does: byte by byte (never past the preamble), ignoring CR, up to
// the first empty line or EOF, at most max bytes. Halibut peers send "MX";
// anything else is a browser or a probe.
func readPreamble(r *bufio.Reader, max int) (string, error) {
	var b strings.Builder
	prevNL := false
	for n := 0; n < max; n++ {
		c, err := r.ReadByte()
		if err == io.EOF {
			return b.String(), nil
		}
		if err != nil {
			return b.String(), err
		}
		switch c {
		case '\r':
			continue
		case '\n':
			if prevNL {
				return b.String(), nil
			}
			prevNL = true
			b.WriteByte('\n')
			continue
		}
		prevNL = false
		b.WriteByte(c)
	}
	return b.String(), protocolErrorf("preamble longer than %d bytes", max)
}

// readLine reads one control line ending in CR LF. A CR followed by anything
// but LF is an error, and a bare LF is part of the line, as upstream: peers
// must send CR LF.
func readLine(r *bufio.Reader, max int) (string, error) {
	var b []byte
	for {
		c, err := r.ReadByte()
		if err != nil {
			if err == io.EOF && len(b) > 0 {
				err = io.ErrUnexpectedEOF
			}
			return "", err
		}
		if c == '\r' {
			next, err := r.ReadByte()
			if err != nil {
				return "", err
			}
			if next != '\n' {
				return "", protocolErrorf("carriage return not followed by line feed in a control line")
			}
			return string(b), nil
		}
		if len(b) >= max {
			return "", protocolErrorf("control line longer than %d bytes", max)
		}
		b = append(b, c)
	}
}

// readControlWord reads the next non-empty control line.
func readControlWord(r *bufio.Reader, max int) (string, error) {
	for {
		line, err := readLine(r, max)
		if err != nil || line != "" {
			return line, err
		}
	}
}

// identity is a peer's identification line.
type identity struct {
	kind         string   // MX-CLIENT, MX-SUBSCRIBER or MX-SERVER
	subscription *url.URL // MX-SUBSCRIBER only
}

// readIdentity reads an identity line and the empty line after it. The
// version is ignored: shipped Halibut never negotiated one.
func readIdentity(r *bufio.Reader, max int) (identity, error) {
	line, err := readLine(r, max)
	if err != nil {
		return identity{}, err
	}
	if line == "" {
		return identity{}, protocolErrorf("expected an identity line, got an empty line")
	}
	empty, err := readLine(r, max)
	if err != nil {
		return identity{}, err
	}
	if empty != "" {
		return identity{}, protocolErrorf("expected an empty line after the identity line, got %q", empty)
	}
	parts := strings.Fields(line)
	if len(parts) == 0 {
		return identity{}, protocolErrorf("expected an identity line, got blanks")
	}
	id := identity{kind: parts[0]}
	switch id.kind {
	case identityClient, identityServer:
	case identitySubscr:
		if len(parts) < 3 {
			return identity{}, protocolErrorf("subscriber identity without a subscription id: %q", line)
		}
		u, err := url.Parse(parts[2])
		if err != nil || !u.IsAbs() {
			return identity{}, protocolErrorf("subscriber identity with an invalid subscription id: %q", parts[2])
		}
		id.subscription = u
	default:
		return identity{}, protocolErrorf("unknown identity %q", parts[0])
	}
	return id, nil
}

// identityLine is an identity message: the line and the empty line after
// it, to be written in one write (old Halibut services misread two writes).
func identityLine(kind string, extra ...string) string {
	return strings.Join(append([]string{kind, protocolVersion}, extra...), " ") + "\r\n\r\n"
}

// NormalizeSubscriptionID puts a subscription URI in the form both sides key
// their queues by: lower case, scheme://host/ (as .NET's ServiceEndPoint
// normalises every non-wss URI).
func NormalizeSubscriptionID(s string) (string, error) {
	u, err := url.Parse(strings.TrimSpace(s))
	if err != nil || u.Scheme == "" || u.Host == "" {
		return "", fmt.Errorf("%q is not a subscription URI such as poll://abcdefghjkmnpqrstuvw/", s)
	}
	return strings.ToLower(u.Scheme) + "://" + strings.ToLower(u.Host) + "/", nil
}
