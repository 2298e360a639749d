package contracts

import (
	"context"
	"fmt"
	"io"
	"net/url"

	"github.com/tentacle-go/tentacle/agent/halibut"
)

// Caller sends one request to one agent, listening or polling.
type Caller interface {
	Call(ctx context.Context, service, method string, params []any, sink halibut.StreamSink) (any, error)
}

// ListeningCaller reaches a listening agent at Endpoint.
type ListeningCaller struct {
	Client   *halibut.Client
	Endpoint halibut.Endpoint
}

func (l ListeningCaller) Call(ctx context.Context, service, method string, params []any, sink halibut.StreamSink) (any, error) {
	return l.Client.Call(ctx, l.Endpoint, service, method, params, sink)
}

// PollingCaller reaches a polling agent through the server's queue for its
// subscription.
type PollingCaller struct {
	Server       *halibut.PollingServer
	Subscription string
	// Thumbprint is the certificate the agent must poll with.
	Thumbprint string
}

func (p PollingCaller) Call(ctx context.Context, service, method string, params []any, sink halibut.StreamSink) (any, error) {
	return p.Server.Call(ctx, p.Subscription, p.Thumbprint, service, method, params, sink)
}

// NewCaller picks the caller for an agent address: https://host:port/ for a
// listening agent (reached through client), poll://id/ for a polling one
// (reached through server).
func NewCaller(address, thumbprint string, client *halibut.Client, server *halibut.PollingServer) (Caller, error) {
	u, err := url.Parse(address)
	if err != nil {
		return nil, fmt.Errorf("%q is not an agent address", address)
	}
	switch u.Scheme {
	case "https":
		return ListeningCaller{Client: client, Endpoint: halibut.Endpoint{BaseURI: address, Thumbprint: thumbprint}}, nil
	case "poll":
		if server == nil {
			return nil, fmt.Errorf("%s is a polling agent: it must poll this machine", address)
		}
		return PollingCaller{Server: server, Subscription: address, Thumbprint: thumbprint}, nil
	}
	return nil, fmt.Errorf("%q is neither https://host:port/ (listening) nor poll://id/ (polling)", address)
}

func call[R any](ctx context.Context, c Caller, service, method string, params []any) (R, error) {
	var out R
	raw, err := c.Call(ctx, service, method, params, nil)
	if err != nil {
		return out, err
	}
	if err := halibut.UnmarshalValue(raw, &out); err != nil {
		return out, fmt.Errorf("%s.%s returned something unexpected: %w", service, method, err)
	}
	return out, nil
}

// ScriptServiceV2Client calls IScriptServiceV2.
type ScriptServiceV2Client struct{ Caller }

func (c ScriptServiceV2Client) StartScript(ctx context.Context, cmd StartScriptCommandV2) (ScriptStatusResponseV2, error) {
	return call[ScriptStatusResponseV2](ctx, c.Caller, ScriptServiceV2Name, "StartScript", []any{cmd})
}

func (c ScriptServiceV2Client) GetStatus(ctx context.Context, req ScriptStatusRequestV2) (ScriptStatusResponseV2, error) {
	return call[ScriptStatusResponseV2](ctx, c.Caller, ScriptServiceV2Name, "GetStatus", []any{req})
}

func (c ScriptServiceV2Client) CancelScript(ctx context.Context, cmd CancelScriptCommandV2) (ScriptStatusResponseV2, error) {
	return call[ScriptStatusResponseV2](ctx, c.Caller, ScriptServiceV2Name, "CancelScript", []any{cmd})
}

func (c ScriptServiceV2Client) CompleteScript(ctx context.Context, cmd CompleteScriptCommandV2) error {
	_, err := c.Caller.Call(ctx, ScriptServiceV2Name, "CompleteScript", []any{cmd}, nil)
	return err
}

// ScriptServiceClient calls the legacy IScriptService.
type ScriptServiceClient struct{ Caller }

func (c ScriptServiceClient) StartScript(ctx context.Context, cmd StartScriptCommand) (ScriptTicket, error) {
	return call[ScriptTicket](ctx, c.Caller, ScriptServiceName, "StartScript", []any{cmd})
}

func (c ScriptServiceClient) GetStatus(ctx context.Context, req ScriptStatusRequest) (ScriptStatusResponse, error) {
	return call[ScriptStatusResponse](ctx, c.Caller, ScriptServiceName, "GetStatus", []any{req})
}

func (c ScriptServiceClient) CancelScript(ctx context.Context, cmd CancelScriptCommand) (ScriptStatusResponse, error) {
	return call[ScriptStatusResponse](ctx, c.Caller, ScriptServiceName, "CancelScript", []any{cmd})
}

func (c ScriptServiceClient) CompleteScript(ctx context.Context, cmd CompleteScriptCommand) (ScriptStatusResponse, error) {
	return call[ScriptStatusResponse](ctx, c.Caller, ScriptServiceName, "CompleteScript", []any{cmd})
}

// FileTransferClient calls IFileTransferService.
type FileTransferClient struct{ Caller }

// UploadFile sends length bytes of content to remotePath on the agent.
func (c FileTransferClient) UploadFile(ctx context.Context, remotePath string, content io.Reader, length int64) (UploadResult, error) {
	return call[UploadResult](ctx, c.Caller, FileTransferServiceName, "UploadFile", []any{remotePath, halibut.NewDataStream(length, content)})
}

// DownloadFile copies remotePath from the agent into w; found is false when
// the agent has no such file.
func (c FileTransferClient) DownloadFile(ctx context.Context, remotePath string, w io.Writer) (found bool, length int64, err error) {
	raw, err := c.Caller.Call(ctx, FileTransferServiceName, "DownloadFile", []any{remotePath}, func(ds halibut.DataStream, r io.Reader) error {
		n, err := io.Copy(w, r)
		length = n
		return err
	})
	if err != nil {
		return false, 0, err
	}
	return raw != nil, length, nil
}

// CapabilitiesClient calls ICapabilitiesServiceV2.
type CapabilitiesClient struct{ Caller }

func (c CapabilitiesClient) GetCapabilities(ctx context.Context) (CapabilitiesResponseV2, error) {
	return call[CapabilitiesResponseV2](ctx, c.Caller, CapabilitiesServiceV2Name, "GetCapabilities", nil)
}
