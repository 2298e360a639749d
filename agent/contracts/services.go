package contracts

import (
	"context"
	"fmt"
	"io"
	"os"
	"slices"

	"github.com/tentacle-go/tentacle/agent/halibut"
)

// ScriptServiceV2 is IScriptServiceV2.
type ScriptServiceV2 interface {
	StartScript(ctx context.Context, cmd StartScriptCommandV2) (ScriptStatusResponseV2, error)
	GetStatus(ctx context.Context, req ScriptStatusRequestV2) (ScriptStatusResponseV2, error)
	CancelScript(ctx context.Context, cmd CancelScriptCommandV2) (ScriptStatusResponseV2, error)
	CompleteScript(ctx context.Context, cmd CompleteScriptCommandV2) error
}

// ScriptService is the legacy IScriptService (V1).
type ScriptService interface {
	StartScript(ctx context.Context, cmd StartScriptCommand) (ScriptTicket, error)
	GetStatus(ctx context.Context, req ScriptStatusRequest) (ScriptStatusResponse, error)
	CancelScript(ctx context.Context, cmd CancelScriptCommand) (ScriptStatusResponse, error)
	CompleteScript(ctx context.Context, cmd CompleteScriptCommand) (ScriptStatusResponse, error)
}

// FileTransferService is IFileTransferService. UploadFile's content comes
// straight off the connection (nil for a null stream) and must be read
// within the call; DownloadFile returns nil for a missing file.
type FileTransferService interface {
	UploadFile(ctx context.Context, remotePath string, content io.Reader, length int64) (UploadResult, error)
	DownloadFile(ctx context.Context, remotePath string) (*halibut.DataStream, error)
}

// CapabilitiesServiceV2 is ICapabilitiesServiceV2.
type CapabilitiesServiceV2 interface {
	GetCapabilities(ctx context.Context) (CapabilitiesResponseV2, error)
}

type callKey struct{}

// StreamBody returns the received payload of a data stream that came with
// the current request (for example a ScriptFile's Contents).
func StreamBody(ctx context.Context, ds *halibut.DataStream) (*os.File, error) {
	call, _ := ctx.Value(callKey{}).(*halibut.Call)
	if call == nil || ds == nil {
		return nil, fmt.Errorf("no data stream is available here")
	}
	return call.StreamBody(*ds)
}

const errTypeAmbiguous = "Halibut.Exceptions.AmbiguousMethodMatchHalibutClientException"

// bindArg binds argument i of the call to dst, checking the argument count
// and, for objects, that its $type is one this parameter accepts (real
// Tentacles reject arguments of unexpected types the same way).
func bindArg(call *halibut.Call, i, count int, dst any) error {
	req := call.Request
	if len(call.Params) != count {
		return &halibut.RemoteError{
			Message:          fmt.Sprintf("%s::%sAsync takes %d argument(s), the request has %d", req.Service, req.Method, count, len(call.Params)),
			HalibutErrorType: errTypeAmbiguous,
		}
	}
	arg := call.Params[i]
	if doc, ok := arg.(halibut.Doc); ok {
		if wt, ok := dst.(halibut.WireTyped); ok {
			if name := doc.TypeName(); name != "" && !slices.Contains(acceptedTypeNames(wt), name) {
				return &halibut.RemoteError{
					Message:          fmt.Sprintf("argument %d of %s::%sAsync has type %s, expected %s", i+1, req.Service, req.Method, name, wt.WireTypeName()),
					HalibutErrorType: errTypeAmbiguous,
				}
			}
		}
	}
	if err := halibut.UnmarshalValue(arg, dst); err != nil {
		return &halibut.RemoteError{
			Message:          fmt.Sprintf("argument %d of %s::%sAsync cannot be read: %v", i+1, req.Service, req.Method, err),
			HalibutErrorType: errTypeAmbiguous,
		}
	}
	return nil
}

// handle adapts a typed method with one argument.
func handle[A any, R any](svc *halibut.Service, service, method string, fn func(context.Context, A) (R, error)) {
	svc.Handle(service, method, func(ctx context.Context, call *halibut.Call) (any, error) {
		var arg A
		if err := bindArg(call, 0, 1, &arg); err != nil {
			return nil, err
		}
		return fn(context.WithValue(ctx, callKey{}, call), arg)
	})
}

// RegisterScriptServiceV2 serves impl as IScriptServiceV2.
func RegisterScriptServiceV2(svc *halibut.Service, impl ScriptServiceV2) {
	handle(svc, ScriptServiceV2Name, "StartScript", impl.StartScript)
	handle(svc, ScriptServiceV2Name, "GetStatus", impl.GetStatus)
	handle(svc, ScriptServiceV2Name, "CancelScript", impl.CancelScript)
	handle(svc, ScriptServiceV2Name, "CompleteScript", func(ctx context.Context, cmd CompleteScriptCommandV2) (any, error) {
		return nil, impl.CompleteScript(ctx, cmd) // void: null result
	})
}

// RegisterScriptService serves impl as the legacy IScriptService.
func RegisterScriptService(svc *halibut.Service, impl ScriptService) {
	handle(svc, ScriptServiceName, "StartScript", impl.StartScript)
	handle(svc, ScriptServiceName, "GetStatus", impl.GetStatus)
	handle(svc, ScriptServiceName, "CancelScript", impl.CancelScript)
	handle(svc, ScriptServiceName, "CompleteScript", impl.CompleteScript)
}

// RegisterFileTransferService serves impl as IFileTransferService.
func RegisterFileTransferService(svc *halibut.Service, impl FileTransferService) {
	// Uploads are written once, straight to their destination, rather than
	// spooled to a temporary file first as upstream does.
	svc.HandleStreaming(FileTransferServiceName, "UploadFile", func(ctx context.Context, call *halibut.Call, receive halibut.ReceiveStreams) (any, error) {
		var path string
		var ds *halibut.DataStream
		if err := bindArg(call, 0, 2, &path); err != nil {
			return nil, err
		}
		if err := bindArg(call, 1, 2, &ds); err != nil {
			return nil, err
		}
		if ds == nil {
			return impl.UploadFile(ctx, path, nil, 0)
		}
		var result UploadResult
		var implErr error
		called := false
		err := receive(func(got halibut.DataStream, payload io.Reader) error {
			if got.ID != ds.ID {
				return nil // not ours: discarded
			}
			called = true
			result, implErr = impl.UploadFile(ctx, path, payload, got.Length)
			return implErr
		})
		switch {
		case implErr != nil:
			return nil, implErr
		case err != nil:
			return nil, err
		case !called:
			return nil, fmt.Errorf("the upload's data stream %s did not arrive", ds.ID)
		}
		return result, nil
	})
	svc.Handle(FileTransferServiceName, "DownloadFile", func(ctx context.Context, call *halibut.Call) (any, error) {
		var path string
		if err := bindArg(call, 0, 1, &path); err != nil {
			return nil, err
		}
		ds, err := impl.DownloadFile(ctx, path)
		if err != nil || ds == nil {
			return nil, err // a missing file is a null result
		}
		return ds, nil
	})
}

// RegisterCapabilitiesServiceV2 serves impl as ICapabilitiesServiceV2.
func RegisterCapabilitiesServiceV2(svc *halibut.Service, impl CapabilitiesServiceV2) {
	svc.Handle(CapabilitiesServiceV2Name, "GetCapabilities", func(ctx context.Context, call *halibut.Call) (any, error) {
		if len(call.Params) != 0 {
			return nil, &halibut.RemoteError{Message: "GetCapabilitiesAsync takes no arguments", HalibutErrorType: errTypeAmbiguous}
		}
		return impl.GetCapabilities(ctx)
	})
}
