package octopus_test

import (
	"crypto/x509"
	"errors"
	"strings"
	"testing"

	"github.com/tentacle-go/tentacle/provision/octopus"
)

type answer struct {
	canPrompt bool
	yes       bool
	err       error
	asked     int
}

func (a *answer) CanPrompt() bool { return a.canPrompt }
func (a *answer) Confirm(context, question string) (bool, error) {
	a.asked++
	return a.yes, a.err
}

func TestWebSocketTrust(t *testing.T) {
	const addr = "wss://octopus.example/OctopusComms"
	const thumb = "0123456789ABCDEF0123456789ABCDEF01234567"
	valid := octopus.HandshakeResult{Thumbprint: thumb}
	invalid := octopus.HandshakeResult{Thumbprint: thumb, ValidationErr: x509.UnknownAuthorityError{}}
	cases := []struct {
		name      string
		trust     octopus.WebSocketTrust
		prompt    *answer
		seen      octopus.HandshakeResult
		wantErr   string // empty: trusted
		wantAsked int
	}{
		{name: "validated: trusted, nobody asked", seen: valid, prompt: &answer{canPrompt: true}},
		{name: "validated but not the thumbprint given", trust: octopus.WebSocketTrust{Expected: strings.Repeat("AB", 20)}, seen: valid, wantErr: "does not match the thumbprint"},
		{name: "not validated, thumbprint given: trusted without asking", trust: octopus.WebSocketTrust{Expected: strings.ToLower(thumb)}, seen: invalid, prompt: &answer{canPrompt: true}},
		{name: "not validated, nobody to ask", seen: invalid, prompt: &answer{}, wantErr: "--server-web-socket-thumbprint " + thumb},
		{name: "not validated, no prompt at all", seen: invalid, wantErr: "could not be validated"},
		{name: "not validated, skip", trust: octopus.WebSocketTrust{SkipValidation: true}, seen: invalid, prompt: &answer{canPrompt: true}},
		{name: "not validated, confirmed", seen: invalid, prompt: &answer{canPrompt: true, yes: true}, wantAsked: 1},
		{name: "not validated, refused", seen: invalid, prompt: &answer{canPrompt: true}, wantErr: "was not trusted, so nothing was changed", wantAsked: 1},
		{name: "not validated, no answer", seen: invalid, prompt: &answer{canPrompt: true, err: errors.New("EOF")}, wantErr: "Could not read an answer", wantAsked: 1},
		{name: "no certificate", seen: octopus.HandshakeResult{}, wantErr: "presented no certificate"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var warnings []string
			tr := c.trust
			tr.Warn = func(s string) { warnings = append(warnings, s) }
			if c.prompt != nil {
				tr.Prompt = c.prompt
			}
			got, err := tr.Thumbprint(addr, c.seen)
			if c.wantErr == "" {
				if err != nil || got != thumb {
					t.Fatalf("got %q, %v; want %s trusted", got, err, thumb)
				}
			} else if err == nil || !strings.Contains(err.Error(), c.wantErr) || got != "" {
				t.Fatalf("got %q, %v; want an error containing %q", got, err, c.wantErr)
			}
			if c.prompt != nil && c.prompt.asked != c.wantAsked {
				t.Errorf("asked %d times, want %d", c.prompt.asked, c.wantAsked)
			}
			// Whenever an unvalidated certificate is in play without a
			// thumbprint given, the operator is told its thumbprint.
			if c.seen.ValidationErr != nil && tr.Expected == "" {
				if len(warnings) == 0 || !strings.Contains(warnings[0], thumb) {
					t.Errorf("warnings %q do not name the thumbprint", warnings)
				}
			}
		})
	}
}
