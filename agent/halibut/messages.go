package halibut

import (
	"strings"
	"time"
)

// .NET type names of the protocol classes (reference/halibut-protocol.md §4.3).
const (
	RequestMessageTypeName  = "Halibut.Transport.Protocol.RequestMessage, Halibut"
	ResponseMessageTypeName = "Halibut.Transport.Protocol.ResponseMessage, Halibut"
	DataStreamTypeName      = "Halibut.DataStream, Halibut"
)

// RequestMessage is one RPC call (§4.4). Fields are in wire order.
type RequestMessage struct {
	// ID is an opaque correlation id echoed in the response; .NET clients write
	// "<Interface>::<Method>Async[<n>] / <activityId>".
	ID string `halibut:"id"`
	// ActivityID is random per call.
	ActivityID Guid `halibut:"activityId"`
	// Endpoint is the destination as the client sees it; services do not route on it.
	Endpoint *ServiceEndPoint `halibut:"endpoint"`
	// Service is the simple name of the sync contract interface, e.g. "IScriptServiceV2".
	Service string `halibut:"service"`
	// Method is the sync method name, e.g. "StartScript".
	Method string `halibut:"method"`
	// Params are the positional arguments (.NET object[]). When encoding, put WireTyped
	// structs, *DataStream or primitives here; after decoding, objects arrive as Doc (with
	// their `$type`) for the dispatcher to bind with UnmarshalValue. Never null on the wire.
	Params []any `halibut:"params,nonnull"`
}

// WireTypeName implements WireTyped.
func (RequestMessage) WireTypeName() string { return RequestMessageTypeName }

// ResponseMessage answers one RequestMessage (§4.6). Fields are in wire order.
type ResponseMessage struct {
	// ID is the request's ID; polling servers correlate on it.
	ID string `halibut:"id"`
	// Error is set when the call failed; Result is then nil.
	Error *ServerError `halibut:"error"`
	// Result is the return value (.NET object): nil for void methods, a WireTyped struct,
	// *DataStream or primitive when encoding, a Doc or primitive after decoding.
	Result any `halibut:"result"`
}

// WireTypeName implements WireTyped.
func (ResponseMessage) WireTypeName() string { return ResponseMessageTypeName }

// ServerError is the error document of a failed call (§4.6).
type ServerError struct {
	// Message is the innermost exception message.
	Message string `halibut:"message"`
	// Details is the full exception text (type, message, stack), or nil.
	Details *string `halibut:"details"`
	// HalibutErrorType is the .NET exception type name for Halibut's own client exceptions
	// (e.g. "Halibut.Exceptions.ServiceNotFoundHalibutClientException"), else nil. PascalCase
	// on the wire, unlike its siblings.
	HalibutErrorType *string `halibut:"HalibutErrorType"`
}

// Error implements error, so a decoded ServerError can be returned as is.
func (e *ServerError) Error() string { return e.Message }

// ProxyType is Halibut's proxy kind, an int32 enum on the wire.
type ProxyType int32

// ProxyType values as numbered in Halibut.
const (
	ProxyNone    ProxyType = 0
	ProxyHTTP    ProxyType = 1
	ProxySOCKS4  ProxyType = 2
	ProxySOCKS4A ProxyType = 3
	ProxySOCKS5  ProxyType = 4
)

// ProxyDetails is the proxy a client dials through (§4.5). Fields are in wire order.
type ProxyDetails struct {
	Host     string    `halibut:"Host"`
	Port     int32     `halibut:"Port"`
	UserName *string   `halibut:"UserName"`
	Password *string   `halibut:"Password"`
	Type     ProxyType `halibut:"Type"`
}

// ServiceEndPoint is the `endpoint` document of a request (§4.5): public readable properties
// of Halibut's ServiceEndPoint in declaration order. A .NET receiver constructs it from
// BaseUri, so BaseURI must be an absolute URI.
type ServiceEndPoint struct {
	PollingRequestQueueTimeout  time.Duration `halibut:"PollingRequestQueueTimeout"`
	RetryListeningSleepInterval time.Duration `halibut:"RetryListeningSleepInterval"`
	RetryCountLimit             int32         `halibut:"RetryCountLimit"`
	ConnectionErrorRetryTimeout time.Duration `halibut:"ConnectionErrorRetryTimeout"`
	TCPClientConnectTimeout     time.Duration `halibut:"TcpClientConnectTimeout"`
	// BaseURI is e.g. "https://host:10933/" or "poll://sq-abc/".
	BaseURI string `halibut:"BaseUri"`
	// RemoteThumbprint is the expected peer certificate thumbprint (uppercase hex), or nil.
	RemoteThumbprint *string       `halibut:"RemoteThumbprint"`
	Proxy            *ProxyDetails `halibut:"Proxy"`
	// ForceResolveHost (Halibut 8.1.1942+) changes the TCP destination only, or nil.
	ForceResolveHost *string `halibut:"ForceResolveHost"`
	// IsWebSocketEndpoint is computed by .NET from the scheme (wss).
	IsWebSocketEndpoint bool `halibut:"IsWebSocketEndpoint"`
}

// NewServiceEndPoint fills the timeout fields from lim, as a .NET client does from its
// HalibutTimeoutsAndLimits. An empty thumbprint is sent as null.
func NewServiceEndPoint(baseURI, remoteThumbprint string, lim Limits) *ServiceEndPoint {
	ep := &ServiceEndPoint{
		PollingRequestQueueTimeout:  lim.PollingRequestQueueTimeout,
		RetryListeningSleepInterval: lim.RetryListeningSleepInterval,
		RetryCountLimit:             int32(min(lim.RetryCountLimit, 1<<31-1)),
		ConnectionErrorRetryTimeout: lim.ConnectionErrorRetryTimeout,
		TCPClientConnectTimeout:     lim.ConnectTimeout,
		BaseURI:                     baseURI,
		IsWebSocketEndpoint:         strings.HasPrefix(strings.ToLower(baseURI), "wss://"),
	}
	if remoteThumbprint != "" {
		ep.RemoteThumbprint = &remoteThumbprint
	}
	return ep
}
