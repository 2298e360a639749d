// Package tentacleclient runs scripts on any Tentacle the way an Octopus
// Server does: it asks the Tentacle for its capabilities, picks
// IScriptServiceV2 when the Tentacle has it and the legacy IScriptService
// otherwise, then starts the script, follows its log to the end (cancelling
// it when asked) and completes it. Tentacles older than mid-2023 have no
// ICapabilitiesServiceV2 and no IScriptServiceV2; they are driven with V1,
// as upstream's client does.
package tentacleclient

import (
	"context"
	"errors"
	"slices"
	"strings"

	"github.com/tentacle-go/tentacle/agent/contracts"
	"github.com/tentacle-go/tentacle/agent/halibut"
)

// Client drives one Tentacle through a Caller (listening, polling or relayed).
type Client struct {
	Caller contracts.Caller
}

// Capabilities is what a Tentacle says it supports.
type Capabilities struct {
	contracts.CapabilitiesResponseV2
	// Assumed is true when the Tentacle has no ICapabilitiesServiceV2 (one
	// older than mid-2023): the list is then the services every Tentacle
	// has, IScriptService and IFileTransferService, as upstream's client
	// assumes.
	Assumed bool
}

// legacyCapabilities is what upstream's client assumes of a Tentacle that
// predates ICapabilitiesServiceV2.
func legacyCapabilities() contracts.CapabilitiesResponseV2 {
	return contracts.CapabilitiesResponseV2{SupportedCapabilities: []string{contracts.ScriptServiceName, contracts.FileTransferServiceName}}
}

// Capabilities asks the Tentacle for its services. Only the Tentacle's own
// answer that it has no such service turns into the assumed legacy list; a
// connection that fails or closes without an answer stays an error.
func (c Client) Capabilities(ctx context.Context) (Capabilities, error) {
	caps, err := contracts.CapabilitiesClient{Caller: c.Caller}.GetCapabilities(ctx)
	if err != nil {
		if ServiceMissing(err) {
			return Capabilities{CapabilitiesResponseV2: legacyCapabilities(), Assumed: true}, nil
		}
		return Capabilities{}, err
	}
	return Capabilities{CapabilitiesResponseV2: caps}, nil
}

// Has reports whether the Tentacle lists service.
func (c Capabilities) Has(service string) bool {
	return slices.Contains(c.SupportedCapabilities, service)
}

// Halibut's client exception types that mean "no such service or method"
// (NoMatchingServiceOrMethodHalibutClientException and its subclasses);
// upstream's client treats each as a Tentacle without the service.
var serviceMissingTypes = []string{
	"Halibut.Exceptions.NoMatchingServiceOrMethodHalibutClientException",
	"Halibut.Exceptions.ServiceNotFoundHalibutClientException",
	"Halibut.Exceptions.MethodNotFoundHalibutClientException",
	"Halibut.Exceptions.AmbiguousMethodMatchHalibutClientException",
}

// ServiceMissing reports whether err is a Tentacle's error response saying
// that it has no such service (or method). It is true only for an error
// response the Tentacle sent (halibut.ServerError), never for a connection
// that failed or closed: those say nothing about what the Tentacle has.
//
// It recognises what upstream's client does: the HalibutErrorType of the
// not-found family; without one (older Halibut), the messages Halibut's
// client maps to those types; and the texts older Tentacles' service
// factories produce (UnknownServiceNameException, a failure inside
// CreateService unless the Tentacle is shutting down, Autofac's
// ComponentNotRegisteredException). Upstream also accepts any error whose
// text names ICapabilitiesServiceV2; that one is left out on purpose,
// because transport errors relayed by `tentacle remote serve` name the
// request's service too, and would then pass for a missing service.
func ServiceMissing(err error) bool {
	var se *halibut.ServerError
	if !errors.As(err, &se) {
		return false
	}
	if se.HalibutErrorType != nil && slices.Contains(serviceMissingTypes, *se.HalibutErrorType) {
		return true
	}
	details := ""
	if se.Details != nil {
		details = *se.Details
	}
	msg := se.Message
	switch {
	case strings.HasPrefix(msg, "Service not found: "),
		strings.HasPrefix(msg, "Service ") && strings.HasSuffix(msg, " not found"),
		strings.HasPrefix(details, "System.Reflection.AmbiguousMatchException: "):
		return true
	}
	// .NET's HalibutClientException carries the message and the details;
	// upstream's text checks run over both.
	text := msg + "\n" + details
	switch {
	case strings.Contains(text, "Octopus.Tentacle.Communications.UnknownServiceNameException"):
		return true
	case strings.Contains(text, "CreateService("):
		return !strings.Contains(text, "The Tentacle service is shutting down and cannot process this request.") &&
			!strings.Contains(text, "ObjectDisposedException")
	case strings.Contains(text, "NotRegistered"):
		return true
	}
	return false
}
