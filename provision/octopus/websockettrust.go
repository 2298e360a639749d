package octopus

import (
	"strings"
)

// Prompt asks the person at the terminal a yes/no question.
type Prompt interface {
	// CanPrompt is false when nobody can answer (input redirected, a
	// pipeline, cloud-init): reading would block or eat someone else's input.
	CanPrompt() bool
	Confirm(context, question string) (bool, error)
}

// WebSocketTrust decides whether the certificate a WebSocket polling
// endpoint presented may be pinned. The probe that learns it accepts any
// certificate, so pinning it blindly would trust whoever answered, an
// attacker between this machine and the server included. As upstream since
// 2026-09 (OctopusTentacle#1296): a certificate that passes standard
// validation is trusted as before; one that does not is trusted only when
// the operator named its thumbprint, confirmed it at a prompt, or said
// --dangerously-skip-certificate-validation.
type WebSocketTrust struct {
	// Expected is a thumbprint the operator gave (--server-web-socket-thumbprint):
	// the certificate must be that one, validated or not.
	Expected string
	// SkipValidation trusts an unvalidated certificate without asking.
	SkipValidation bool
	// Prompt asks the operator; nil means nobody to ask.
	Prompt Prompt
	// Warn reports what the operator should know (required).
	Warn func(string)
}

// Thumbprint returns the thumbprint to pin for the endpoint at address,
// given what Handshake saw, or a user error saying why not and how to go on.
func (t WebSocketTrust) Thumbprint(address string, seen HandshakeResult) (string, error) {
	if seen.Thumbprint == "" {
		return "", userErrorf("The WebSocket endpoint %s presented no certificate, so there is nothing to trust.", address)
	}
	if t.Expected != "" {
		if !strings.EqualFold(strings.TrimSpace(t.Expected), seen.Thumbprint) {
			return "", userErrorf("The certificate presented by %s has thumbprint %s, which does not match the thumbprint %s given by --server-web-socket-thumbprint. Either that thumbprint is wrong, or something other than your Octopus Server answered at that address.", address, seen.Thumbprint, t.Expected)
		}
		return seen.Thumbprint, nil
	}
	if seen.ValidationErr == nil {
		return seen.Thumbprint, nil
	}
	problem := "The certificate presented by " + address + " could not be validated (" + seen.ValidationErr.Error() + "). Its thumbprint is " + seen.Thumbprint + "."
	t.Warn(problem)
	if t.SkipValidation {
		t.Warn("Trusting it anyway, as --dangerously-skip-certificate-validation says.")
		return seen.Thumbprint, nil
	}
	const why = "Because it could not be validated, nothing shows that it belongs to your Octopus Server rather than to someone between this machine and the server. " +
		"It is the certificate of wherever TLS ends for the WebSocket endpoint (IIS, HTTP.SYS or a reverse proxy), not the server's Tentacle communications certificate."
	if t.Prompt == nil || !t.Prompt.CanPrompt() {
		return "", userErrorf("%s %s Check that thumbprint against that certificate, then run this command again with --server-web-socket-thumbprint %s (or --dangerously-skip-certificate-validation to trust whatever answers).", problem, why, seen.Thumbprint)
	}
	ok, err := t.Prompt.Confirm(problem+"\n"+why+"\nCheck the thumbprint against that certificate before you go on.", "Trust this certificate?")
	if err != nil {
		return "", userErrorf("Could not read an answer (%v), so the certificate of %s was not trusted and nothing was changed.", err, address)
	}
	if !ok {
		return "", userErrorf("The certificate presented by %s was not trusted, so nothing was changed.", address)
	}
	t.Warn("Trusting the certificate with thumbprint " + seen.Thumbprint + ", as confirmed at the prompt, although it failed validation.")
	return seen.Thumbprint, nil
}
