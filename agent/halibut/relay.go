package halibut

import (
	"context"
	"errors"
	"io"
	"os"
	"sync"
)

// RelayHandler forwards any request it receives to the polling Tentacle
// named by the request's endpoint BaseUri (poll://id/) and presenting the
// certificate of its RemoteThumbprint, and answers with that Tentacle's
// response. A long-running polling endpoint (`tentacle
// remote serve`) mounts it on a loopback listener so that short-lived
// operator commands can reach the agents connected to it. Mount it with
// Service.FallbackStreams set: data streams then pass through as they
// arrive, both ways, instead of being written to a temporary file and read
// back (which halved a polling upload's speed). tempDir receives only
// streams that arrive before their turn, and the request's streams when no
// connection polls the subscription yet (the caller would otherwise wait,
// its upload stalled, for one to come).
func (s *PollingServer) RelayHandler(tempDir string) Handler {
	return func(ctx context.Context, call *Call) (any, error) {
		req := call.Request
		if req.Endpoint == nil {
			return nil, &RemoteError{Message: "the request names no endpoint to relay to"}
		}
		if req.Endpoint.RemoteThumbprint == nil || *req.Endpoint.RemoteThumbprint == "" {
			return nil, &RemoteError{Message: "the request names no thumbprint for the polling Tentacle; give the Tentacle's --thumbprint"}
		}
		in := call.streamFeed(tempDir)
		defer in.close()
		if in.live && s.Subscribers(req.Endpoint.BaseURI) == 0 {
			if err := in.spoolAll(); err != nil {
				return nil, err
			}
		}
		params := make([]any, len(call.Params))
		for i, p := range call.Params {
			v, err := replaceStreams(p, func(ds DataStream) (any, error) {
				return NewDataStreamFrom(ds, in.body(ds.ID)), nil
			})
			if err != nil {
				return nil, err
			}
			params[i] = v
		}
		resp, msg, release, err := s.callHandingOver(ctx, req.Endpoint.BaseURI, *req.Endpoint.RemoteThumbprint, req.Service, req.Method, params)
		// Whatever the outcome, the Tentacle has stopped reading the
		// request's streams: no more reads of the caller's connection.
		in.close()
		if err != nil {
			return nil, err
		}
		if resp.Error != nil {
			release()
			re := &RemoteError{Message: resp.Error.Message}
			if resp.Error.Details != nil {
				re.Details = *resp.Error.Details
			}
			if resp.Error.HalibutErrorType != nil {
				re.HalibutErrorType = *resp.Error.HalibutErrorType
			}
			return nil, re
		}
		// The response's streams go on straight from the polling connection,
		// which is released once the last of them is closed (sent or not,
		// Service.respond closes them all).
		out := &streamFeed{next: msg.NextStream, tempDir: tempDir}
		pending := 0
		var mu sync.Mutex
		done := func() {
			mu.Lock()
			defer mu.Unlock()
			if pending--; pending == 0 {
				out.close()
				release()
			}
		}
		relayed, err := replaceStreams(resp.Result, func(ds DataStream) (any, error) {
			pending++
			return NewDataStreamFrom(ds, &closeNotify{Reader: out.body(ds.ID), closed: done}), nil
		})
		if err != nil || pending == 0 {
			out.close()
			release()
			if err != nil {
				closeResultStreams(relayed)
			}
		}
		return relayed, err
	}
}

// closeNotify calls closed once, on its first Close.
type closeNotify struct {
	io.Reader
	once   sync.Once
	closed func()
}

func (c *closeNotify) Close() error {
	c.once.Do(c.closed)
	return nil
}

// streamFeed passes on the data streams of one received message, each
// read by its body in the order the relay sends them: straight off the
// connection when they arrive in that order (as every .NET and Go sender
// writes them), or from a temporary file for a stream that arrived before
// its turn. Once closed, bodies fail and temporary files are removed; close
// waits for a body's Read in progress, so nothing reads the connection
// after it returns.
type streamFeed struct {
	next    func() (DataStream, io.Reader, error)
	tempDir string
	live    bool // next reads the connection (false: the streams were spooled already)

	mu      sync.Mutex
	closed  bool
	spooled map[Guid]*os.File
	files   []*os.File // every file made, for close
}

// streamFeed is the call's request streams: off the connection for a
// fallback with FallbackStreams, else from the files serve spooled.
func (c *Call) streamFeed(tempDir string) *streamFeed {
	if c.live != nil {
		return &streamFeed{next: c.live.NextStream, tempDir: tempDir, live: true}
	}
	f := &streamFeed{tempDir: tempDir, next: func() (DataStream, io.Reader, error) { return DataStream{}, nil, io.EOF }, spooled: map[Guid]*os.File{}}
	for id, file := range c.streams {
		f.spooled[id] = file // serve removes these itself
	}
	return f
}

func (f *streamFeed) body(id Guid) io.Reader { return &feedBody{feed: f, id: id} }

// spoolAll receives every remaining stream into temporary files now.
func (f *streamFeed) spoolAll() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for {
		ds, r, err := f.next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if err := f.spool(ds.ID, r); err != nil {
			return err
		}
	}
}

// spool copies one payload to a temporary file; f.mu is held.
func (f *streamFeed) spool(id Guid, r io.Reader) error {
	file, err := os.CreateTemp(f.tempDir, spoolFilePattern)
	if err != nil {
		return err
	}
	f.files = append(f.files, file)
	if f.spooled == nil {
		f.spooled = map[Guid]*os.File{}
	}
	f.spooled[id] = file
	_, err = io.Copy(file, r)
	return err
}

// take returns the reader of stream id, receiving (and spooling) the
// streams that come before it; f.mu is held.
func (f *streamFeed) take(id Guid) (io.Reader, error) {
	if file, ok := f.spooled[id]; ok {
		delete(f.spooled, id)
		if _, err := file.Seek(0, io.SeekStart); err != nil {
			return nil, err
		}
		return file, nil
	}
	for {
		ds, r, err := f.next()
		if err == io.EOF {
			return nil, streamErrorf("stream %s was announced but never sent", id)
		}
		if err != nil {
			return nil, err
		}
		if ds.ID == id {
			return r, nil
		}
		if err := f.spool(ds.ID, r); err != nil {
			return nil, err
		}
	}
}

func (f *streamFeed) close() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return
	}
	f.closed = true
	for _, file := range f.files {
		file.Close()
		os.Remove(file.Name())
	}
}

// errFeedClosed is a body read after its relay call ended.
var errFeedClosed = errors.New("the relayed call has ended: its data stream can no longer be read")

type feedBody struct {
	feed *streamFeed
	id   Guid
	src  io.Reader
}

func (b *feedBody) Read(p []byte) (int, error) {
	f := b.feed
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return 0, errFeedClosed
	}
	if b.src == nil {
		src, err := f.take(b.id)
		if err != nil {
			return 0, err
		}
		b.src = src
	}
	return b.src.Read(p)
}

// NewDataStreamFrom is a stream with a given id and length sending body.
func NewDataStreamFrom(ds DataStream, body io.Reader) *DataStream {
	return &DataStream{ID: ds.ID, Length: ds.Length, Body: body}
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
