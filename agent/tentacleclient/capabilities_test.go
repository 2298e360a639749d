package tentacleclient

import (
	"context"
	"errors"
	"fmt"
	"io"
	"testing"

	"github.com/tentacle-go/tentacle/agent/contracts"
	"github.com/tentacle-go/tentacle/agent/halibut"
)

func serverError(msg, details, errType string) *halibut.ServerError {
	se := &halibut.ServerError{Message: msg}
	if details != "" {
		se.Details = &details
	}
	if errType != "" {
		se.HalibutErrorType = &errType
	}
	return se
}

// Which failures mean "this Tentacle has no such service": only error
// answers of the not-found kind, never a failed or dropped connection.
func TestServiceMissing(t *testing.T) {
	const invocation = "System.Reflection.TargetInvocationException: Exception has been thrown by the target of an invocation."
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"upstream Halibut's ServiceNotFound", serverError("Service not found: ICapabilitiesServiceV2", "Halibut.Exceptions.ServiceNotFoundHalibutClientException: ...", "Halibut.Exceptions.ServiceNotFoundHalibutClientException"), true},
		{"MethodNotFound", serverError("Method ICapabilitiesServiceV2::GetCapabilitiesAsync not found", "", "Halibut.Exceptions.MethodNotFoundHalibutClientException"), true},
		{"AmbiguousMethodMatch", serverError("x", "", "Halibut.Exceptions.AmbiguousMethodMatchHalibutClientException"), true},
		{"NoMatchingServiceOrMethod", serverError("x", "", "Halibut.Exceptions.NoMatchingServiceOrMethodHalibutClientException"), true},
		{"older Halibut, no type: service", serverError("Service not found: ICapabilitiesServiceV2", "", ""), true},
		{"older Halibut, no type: method", serverError("Service ICapabilitiesServiceV2::GetCapabilities not found", "", ""), true},
		{"older Halibut, no type: ambiguous", serverError("x", "System.Reflection.AmbiguousMatchException: Ambiguous match found.", ""), true},
		{"Tentacle's UnknownServiceNameException", serverError("x", "Octopus.Tentacle.Communications.UnknownServiceNameException: Service not found", ""), true},
		{"Autofac could not create it", serverError("The requested service has not been registered.", "Autofac.Core.Registration.ComponentNotRegisteredException: ...\n   at Halibut.ServiceModel.AutofacServiceFactory.CreateService(String serviceName)", ""), true},
		{"NotRegistered", serverError("x", "ComponentNotRegisteredException", ""), true},
		{"CreateService while shutting down", serverError("The Tentacle service is shutting down and cannot process this request.", "at X.CreateService(String serviceName)", ""), false},
		{"CreateService on a disposed container", serverError("x", "System.ObjectDisposedException: ...\n at X.CreateService(String serviceName)", ""), false},
		{"the service failed", serverError("disk full", invocation, "Halibut.Exceptions.ServiceInvocationHalibutClientException"), false},
		// `remote serve` relays a polling Tentacle's dropped connection as an
		// error answer that names the service: not a missing service.
		{"relayed transport error naming the service", serverError("the service closed the connection without answering ICapabilitiesServiceV2.GetCapabilities (EOF)", invocation+"\n ---> System.Exception: EOF", ""), false},
		{"dropped connection", &halibut.NoResponseError{Service: "ICapabilitiesServiceV2", Method: "GetCapabilities", Err: io.EOF}, false},
		{"EOF", io.EOF, false},
		{"could not connect", &halibut.ConnectionInitializationError{Err: errors.New("connection refused")}, false},
		{"timeout", context.DeadlineExceeded, false},
		{"wrapped answer", fmt.Errorf("asking: %w", serverError("Service not found: ICapabilitiesServiceV2", "", "")), true},
	} {
		if got := ServiceMissing(tc.err); got != tc.want {
			t.Errorf("%s: ServiceMissing = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestPickScriptService(t *testing.T) {
	for _, tc := range []struct {
		caps []string
		want ScriptService
	}{
		{[]string{"IScriptService", "IFileTransferService", "IScriptServiceV2"}, ScriptServiceV2},
		{[]string{"IScriptService", "IFileTransferService"}, ScriptServiceV1},
	} {
		got, err := PickScriptService(Capabilities{CapabilitiesResponseV2: capsOf(tc.caps)})
		if got != tc.want || err != nil {
			t.Errorf("%v: %v %v, want %v", tc.caps, got, err, tc.want)
		}
	}
	if _, err := PickScriptService(Capabilities{CapabilitiesResponseV2: capsOf([]string{"IKubernetesScriptServiceV1", "IFileTransferService"})}); err == nil {
		t.Error("a Tentacle with neither script service: no error")
	}
}

func capsOf(s []string) contracts.CapabilitiesResponseV2 {
	return contracts.CapabilitiesResponseV2{SupportedCapabilities: s}
}
