package halibut

import (
	"context"
	"fmt"
	"io"
	"os"
)

// RelayHandler forwards any request it receives to the polling Tentacle
// named by the request's endpoint BaseUri (poll://id/) and presenting the
// certificate of its RemoteThumbprint, and answers with that Tentacle's
// response. A long-running polling endpoint (`tentacle
// remote serve`) mounts it on a loopback listener so that short-lived
// operator commands can reach the agents connected to it. Data streams are
// relayed both ways through temporary files.
func (s *PollingServer) RelayHandler(tempDir string) Handler {
	return func(ctx context.Context, call *Call) (any, error) {
		req := call.Request
		if req.Endpoint == nil {
			return nil, &RemoteError{Message: "the request names no endpoint to relay to"}
		}
		if req.Endpoint.RemoteThumbprint == nil || *req.Endpoint.RemoteThumbprint == "" {
			return nil, &RemoteError{Message: "the request names no thumbprint for the polling Tentacle; give the Tentacle's --thumbprint"}
		}
		params := make([]any, len(call.Params))
		for i, p := range call.Params {
			v, err := withStreamBodies(p, call)
			if err != nil {
				return nil, err
			}
			params[i] = v
		}
		var spooled map[Guid]*os.File
		result, err := s.Call(ctx, req.Endpoint.BaseURI, *req.Endpoint.RemoteThumbprint, req.Service, req.Method, params, func(ds DataStream, payload io.Reader) error {
			f, err := os.CreateTemp(tempDir, spoolFilePattern)
			if err != nil {
				return err
			}
			if spooled == nil {
				spooled = map[Guid]*os.File{}
			}
			spooled[ds.ID] = f
			if _, err := io.Copy(f, payload); err != nil {
				return err
			}
			_, err = f.Seek(0, io.SeekStart)
			return err
		})
		if err != nil {
			for _, f := range spooled {
				f.Close()
				os.Remove(f.Name())
			}
			if se, ok := err.(*ServerError); ok {
				re := &RemoteError{Message: se.Message}
				if se.Details != nil {
					re.Details = *se.Details
				}
				if se.HalibutErrorType != nil {
					re.HalibutErrorType = *se.HalibutErrorType
				}
				return nil, re
			}
			return nil, err
		}
		used := map[Guid]bool{}
		relayed, err := replaceStreams(result, func(ds DataStream) (any, error) {
			f, ok := spooled[ds.ID]
			if !ok {
				return nil, fmt.Errorf("the Tentacle announced data stream %s but did not send it", ds.ID)
			}
			used[ds.ID] = true
			return NewDataStreamFrom(ds, &removeOnClose{f}), nil
		})
		// A stream the response does not name is never sent on, and none
		// is when the response cannot be rebuilt: remove their files now;
		// the rest go when the response has been written (Service.respond).
		for id, f := range spooled {
			if err != nil || !used[id] {
				f.Close()
				os.Remove(f.Name())
			}
		}
		return relayed, err
	}
}

// NewDataStreamFrom is a stream with a given id and length sending body.
func NewDataStreamFrom(ds DataStream, body io.Reader) *DataStream {
	return &DataStream{ID: ds.ID, Length: ds.Length, Body: body}
}

// removeOnClose deletes a relay's temporary file once it has been sent.
type removeOnClose struct{ *os.File }

func (r *removeOnClose) Close() error {
	err := r.File.Close()
	os.Remove(r.File.Name())
	return err
}

// withStreamBodies replaces the data streams inside a received value with
// streams that send the payloads the call spooled.
func withStreamBodies(v any, call *Call) (any, error) {
	return replaceStreams(v, func(ds DataStream) (any, error) {
		f, err := call.StreamBody(ds)
		if err != nil {
			return nil, err
		}
		return NewDataStreamFrom(ds, f), nil
	})
}

// replaceStreams rebuilds v with every data stream document swapped for
// what swap returns.
func replaceStreams(v any, swap func(DataStream) (any, error)) (any, error) {
	switch x := v.(type) {
	case Doc:
		if ds, ok, err := dataStreamShape(x); err != nil {
			return nil, err
		} else if ok {
			return swap(ds)
		}
		out := make(Doc, len(x))
		for i, e := range x {
			nv, err := replaceStreams(e.Value, swap)
			if err != nil {
				return nil, err
			}
			out[i] = Elem{Key: e.Key, Value: nv}
		}
		return out, nil
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			nv, err := replaceStreams(e, swap)
			if err != nil {
				return nil, err
			}
			out[i] = nv
		}
		return out, nil
	}
	return v, nil
}
