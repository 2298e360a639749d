package halibut

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// Handler serves one method of one service. It returns the method's result
// (nil for void, a primitive, a WireTyped struct or a *DataStream) or an
// error, which the caller receives as a ServerError.
type Handler func(ctx context.Context, call *Call) (any, error)

// Call is one incoming request with its data streams already received.
type Call struct {
	Request *RequestMessage
	// Params are the raw positional arguments: primitives, Doc for objects
	// (bind them with UnmarshalValue), as decoded.
	Params []any
	// Peer is the thumbprint of the certificate the caller presented.
	Peer string

	streams map[Guid]*os.File
	live    *IncomingMessage // for a fallback with FallbackStreams: the streams, still on the connection
}

// StreamBody returns the received payload of a data stream announced by the
// request, positioned at its start. Payloads are spooled to temporary files
// before the handler runs (as upstream does), so they are never held in
// memory and a handler may read them more than once.
func (c *Call) StreamBody(ds DataStream) (*os.File, error) {
	f, ok := c.streams[ds.ID]
	if !ok {
		return nil, fmt.Errorf("data stream %s was not part of the request", ds.ID)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	return f, nil
}

// Service is the RPC service role: a registry of handlers by Halibut service
// and method name, used by the listening and the polling sides alike.
type Service struct {
	// TempDir receives spooled data streams; "" means os.TempDir().
	TempDir string
	// Fallback serves requests for services with no registered handler
	// (a relay); nil answers them with "Service not found".
	Fallback Handler
	// FallbackStreams has Fallback take the request's data streams off the
	// connection as they arrive (RelayHandler passes them on), instead of
	// from files spooled before it runs. Whatever it leaves unread is
	// discarded after it returns.
	FallbackStreams bool

	mu        sync.RWMutex
	handlers  map[string]map[string]Handler // service -> lower-cased method
	streaming map[string]bool               // service + "." + lower-cased method

	statsMu sync.Mutex
	stats   map[string]*CallStats // "Service.Method"
}

// CallStats counts the requests one method received and how many failed.
type CallStats struct {
	Service, Method string
	Calls, Errors   int64
}

// Stats returns a snapshot of the per-method request counts.
func (s *Service) Stats() []CallStats {
	s.statsMu.Lock()
	defer s.statsMu.Unlock()
	out := make([]CallStats, 0, len(s.stats))
	for _, st := range s.stats {
		out = append(out, *st)
	}
	return out
}

func (s *Service) count(req *RequestMessage, failed bool) {
	s.statsMu.Lock()
	defer s.statsMu.Unlock()
	if s.stats == nil {
		s.stats = map[string]*CallStats{}
	}
	key := req.Service + "." + req.Method
	st := s.stats[key]
	if st == nil {
		st = &CallStats{Service: req.Service, Method: req.Method}
		s.stats[key] = st
	}
	st.Calls++
	if failed {
		st.Errors++
	}
}

// ReceiveStreams hands a request's data streams, as they come off the
// connection, to sink.
type ReceiveStreams func(sink func(ds DataStream, payload io.Reader) error) error

// StreamingHandler is a Handler that takes the request's data streams
// straight off the connection instead of from spooled files, so an upload
// is written once, to its destination.
type StreamingHandler func(ctx context.Context, call *Call, receive ReceiveStreams) (any, error)

type streamsKey struct{}

// HandleStreaming registers h for service.method. Whatever stream bytes h
// does not read are discarded after it returns, so the connection stays in
// step even when h fails half-way.
func (s *Service) HandleStreaming(service, method string, h StreamingHandler) {
	s.Handle(service, method, func(ctx context.Context, call *Call) (any, error) {
		receive, _ := ctx.Value(streamsKey{}).(ReceiveStreams)
		return h(ctx, call, receive)
	})
	s.mu.Lock()
	if s.streaming == nil {
		s.streaming = map[string]bool{}
	}
	s.streaming[service+"."+strings.ToLower(method)] = true
	s.mu.Unlock()
}

func (s *Service) isStreaming(req *RequestMessage) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.streaming[req.Service+"."+strings.ToLower(req.Method)]
}

// fallbackTakesStreams says whether req goes to a Fallback that reads its
// streams off the connection.
func (s *Service) fallbackTakesStreams(req *RequestMessage) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	_, registered := s.handlers[req.Service]
	return !registered && s.Fallback != nil && s.FallbackStreams
}

// Handle registers h for service.method. Service names match exactly (as
// Tentacle's own service factory does), method names case-insensitively.
func (s *Service) Handle(service, method string, h Handler) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.handlers == nil {
		s.handlers = map[string]map[string]Handler{}
	}
	if s.handlers[service] == nil {
		s.handlers[service] = map[string]Handler{}
	}
	s.handlers[service][strings.ToLower(method)] = h
}

// Services lists the registered service names.
func (s *Service) Services() []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []string
	for name := range s.handlers {
		out = append(out, name)
	}
	return out
}

// Halibut's client exception types, which .NET clients re-create from
// HalibutErrorType (reference/halibut-protocol.md §4.6).
const (
	errTypeServiceNotFound = "Halibut.Exceptions.ServiceNotFoundHalibutClientException"
	errTypeMethodNotFound  = "Halibut.Exceptions.MethodNotFoundHalibutClientException"
	errTypeInvocation      = "Halibut.Exceptions.ServiceInvocationHalibutClientException"
)

// invocationDetails is how a .NET service's exception text starts: clients
// classify errors by it when HalibutErrorType is absent.
const invocationDetails = "System.Reflection.TargetInvocationException: Exception has been thrown by the target of an invocation."

// RemoteError lets a handler choose the ServerError its caller sees, for
// example a specific .NET exception type name.
type RemoteError struct {
	Message          string
	Details          string
	HalibutErrorType string
}

func (e *RemoteError) Error() string { return e.Message }

func serverError(message, details, errType string) *ServerError {
	se := &ServerError{Message: message}
	if details != "" {
		se.Details = &details
	}
	if errType != "" {
		se.HalibutErrorType = &errType
	}
	return se
}

// invoke runs the handler for req and builds the response. Every failure,
// including a panic in a handler, becomes an error response: a bad request
// never takes the connection or the agent down.
func (s *Service) invoke(ctx context.Context, call *Call) (resp *ResponseMessage) {
	req := call.Request
	resp = &ResponseMessage{ID: req.ID}
	defer func() { s.count(req, resp.Error != nil) }()
	s.mu.RLock()
	methods, ok := s.handlers[req.Service]
	var h Handler
	if ok {
		h = methods[strings.ToLower(req.Method)]
	}
	s.mu.RUnlock()
	switch {
	case !ok && s.Fallback != nil:
		h = s.Fallback
	case !ok:
		resp.Error = serverError("Service not found: "+req.Service, "", errTypeServiceNotFound)
		return resp
	case h == nil:
		resp.Error = serverError(fmt.Sprintf("Method %s::%sAsync not found", req.Service, req.Method), "", errTypeMethodNotFound)
		return resp
	}
	defer func() {
		if p := recover(); p != nil {
			resp.Result = nil
			resp.Error = serverError(fmt.Sprintf("the %s.%s handler failed: %v", req.Service, req.Method, p), invocationDetails, errTypeInvocation)
		}
	}()
	result, err := h(ctx, call)
	if err != nil {
		var re *RemoteError
		if errors.As(err, &re) {
			resp.Error = serverError(re.Message, re.Details, re.HalibutErrorType)
		} else {
			resp.Error = serverError(err.Error(), invocationDetails+"\n ---> System.Exception: "+err.Error(), "")
		}
		return resp
	}
	resp.Result = result
	return resp
}

// serve reads one request's streams, runs it and writes the response. The
// request's streams are spooled to temp files first; they are removed when
// the call is over. While the handler runs, the connection is watched: a
// peer that hangs up cancels the handler's context (with ErrPeerHungUp as
// its cause) and serve returns that error without writing a response.
func (s *Service) serve(ctx context.Context, c *conn, msg *IncomingMessage, peer string) error {
	req, err := msg.Request()
	if err != nil {
		return err
	}
	call := &Call{Request: req, Params: req.Params, Peer: peer, streams: map[Guid]*os.File{}}
	defer func() {
		for _, f := range call.streams {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	ctx, hungUp := context.WithCancelCause(ctx)
	defer hungUp(nil)
	var stopWatching func()
	watch := func() {
		if stopWatching == nil {
			stopWatching = c.watchForHangUp(hungUp)
		}
	}
	// abandoned stops the watch and reports a peer that hung up meanwhile;
	// resp's stream, if any, is then closed unsent.
	abandoned := func(resp *ResponseMessage) error {
		if stopWatching != nil {
			stopWatching()
		}
		cause := context.Cause(ctx)
		if !errors.Is(cause, ErrPeerHungUp) {
			return nil
		}
		closeResultStreams(resp.Result)
		return fmt.Errorf("%s.%s: %w", req.Service, req.Method, cause)
	}
	if s.isStreaming(req) {
		var streamErr error
		receive := ReceiveStreams(func(sink func(ds DataStream, payload io.Reader) error) error {
			streamErr = msg.ReceiveStreams(sink)
			if streamErr == nil {
				watch() // the streams are off the connection: nothing more is due
			}
			return streamErr
		})
		resp := s.invoke(context.WithValue(ctx, streamsKey{}, receive), call)
		if err := abandoned(resp); err != nil {
			return err
		}
		// Drain what the handler left; a framing error means the connection
		// is out of step and must close.
		if err := msg.ReceiveStreams(nil); err != nil {
			return err
		}
		if streamErr != nil && errors.Is(streamErr, ErrDataStream) {
			return streamErr
		}
		return s.respond(c, req, resp)
	}
	if s.fallbackTakesStreams(req) {
		call.live = msg
		if len(msg.Streams) == 0 {
			watch() // nothing more is due; with streams, the fallback reads them while it runs
		}
		resp := s.invoke(ctx, call)
		if err := abandoned(resp); err != nil {
			return err
		}
		if err := msg.ReceiveStreams(nil); err != nil {
			closeResultStreams(resp.Result)
			return err
		}
		return s.respond(c, req, resp)
	}
	err = msg.ReceiveStreams(func(ds DataStream, payload io.Reader) error {
		f, err := os.CreateTemp(s.TempDir, spoolFilePattern)
		if err != nil {
			return err
		}
		call.streams[ds.ID] = f
		_, err = io.Copy(f, payload)
		return err
	})
	if err != nil {
		return err
	}
	watch()
	resp := s.invoke(ctx, call)
	if err := abandoned(resp); err != nil {
		return err
	}
	return s.respond(c, req, resp)
}

// respond writes a response (an error response if it cannot be encoded).
func (s *Service) respond(c *conn, req *RequestMessage, resp *ResponseMessage) error {
	err := c.writeMessage(resp)
	var unsendable *unsendableError
	if errors.As(err, &unsendable) {
		// The handler's result cannot go on the wire; tell the caller why.
		err = c.writeMessage(&ResponseMessage{ID: req.ID, Error: serverError(
			fmt.Sprintf("the result of %s.%s cannot be sent: %v", req.Service, req.Method, unsendable.err), invocationDetails, errTypeInvocation)})
	}
	closeResultStreams(resp.Result)
	return err
}

// closeResultStreams closes the bodies of the data streams a handler
// returned, at the top of its result or nested in documents and arrays (a
// relayed response), sent or not.
func closeResultStreams(v any) {
	switch x := v.(type) {
	case *DataStream:
		if x != nil {
			if closer, ok := x.Body.(io.Closer); ok {
				closer.Close()
			}
		}
	case Doc:
		for _, e := range x {
			closeResultStreams(e.Value)
		}
	case []any:
		for _, e := range x {
			closeResultStreams(e)
		}
	}
}

// spoolFilePattern names the files data streams are spooled to.
const spoolFilePattern = "halibut-stream-*"

// SweepTempDir removes spooled data streams that a process stopped before
// startedAt left in TempDir (a crash mid-request), and nothing else: only
// regular files named as ours, last written before startedAt. It returns
// the files removed and their total size. With TempDir "" (shared with
// everything else) it does nothing.
func (s *Service) SweepTempDir(startedAt time.Time) (removed []string, bytes int64, err error) {
	if s.TempDir == "" {
		return nil, 0, nil
	}
	entries, err := os.ReadDir(s.TempDir)
	if err != nil {
		return nil, 0, err
	}
	var errs []error
	for _, e := range entries {
		if ok, _ := filepath.Match(spoolFilePattern, e.Name()); !ok || !e.Type().IsRegular() {
			continue
		}
		path := filepath.Join(s.TempDir, e.Name())
		info, err := e.Info()
		if err != nil || !info.ModTime().Before(startedAt) {
			continue
		}
		if err := os.Remove(path); err != nil {
			errs = append(errs, err)
			continue
		}
		removed = append(removed, path)
		bytes += info.Size()
	}
	return removed, bytes, errors.Join(errs...)
}
