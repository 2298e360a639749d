package halibut

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Endpoint is a listening service to call: https://host:port/ and the
// thumbprint its certificate must have.
type Endpoint struct {
	BaseURI    string
	Thumbprint string
	// Proxy, when set, overrides the client's ProxyFunc for this endpoint.
	Proxy *url.URL
	// RelayTo, when set, is the BaseUri written into requests instead of
	// BaseURI: the connection goes to a relay (a `tentacle remote serve`)
	// that forwards each request to this poll://id/ agent.
	RelayTo string
	// RelayThumbprint, with RelayTo, is the certificate thumbprint that agent
	// must present; it is sent as the request's RemoteThumbprint, and the
	// relay hands the request to no other connection.
	RelayThumbprint string
}

// requestBaseURI and requestThumbprint are the destination written into a
// request: the agent relayed to, when there is one.
func (ep Endpoint) requestBaseURI() string { return cmp.Or(ep.RelayTo, ep.BaseURI) }

func (ep Endpoint) requestThumbprint() string {
	if ep.RelayTo != "" {
		return strings.ToUpper(ep.RelayThumbprint)
	}
	return strings.ToUpper(ep.Thumbprint)
}

func (ep Endpoint) key() string {
	p := ""
	if ep.Proxy != nil {
		p = ep.Proxy.String()
	}
	return strings.ToLower(ep.BaseURI) + "|" + strings.ToUpper(ep.Thumbprint) + "|" + p
}

// StreamSink receives the data streams of a response (for example the file
// of DownloadFile) before the call returns. A nil sink discards them.
type StreamSink func(ds DataStream, payload io.Reader) error

// Client is the RPC client role towards listening services (what an Octopus
// Server does to a listening Tentacle; `tentacle remote` uses it). It keeps
// a small pool of idle connections per endpoint and retries only while
// nothing can have reached the service (reference/halibut-protocol.md §3.5).
type Client struct {
	Certificate *tls.Certificate
	Limits      Limits
	// Proxy chooses an HTTP proxy per destination; nil connects directly.
	Proxy ProxyFunc
	// Tickets, when set, resumes TLS sessions across processes (TicketFiles).
	Tickets *TicketFiles

	mu      sync.Mutex
	pools   map[string][]*pooledConn
	counter atomic.Int64
}

type pooledConn struct {
	*conn
	idleSince time.Time
}

// ConnectionInitializationError is a failure before the request was sent
// (connect, TLS, identification, NEXT/PROCEED): safe to retry.
type ConnectionInitializationError struct{ Err error }

func (e *ConnectionInitializationError) Error() string {
	return "could not establish a Halibut connection: " + e.Err.Error()
}
func (e *ConnectionInitializationError) Unwrap() error { return e.Err }

// Call invokes service.method on ep with params (primitives, WireTyped
// structs, *DataStream) and returns the raw result (a primitive or Doc; bind
// it with UnmarshalValue). A ServerError from the service is returned as the
// error.
func (cl *Client) Call(ctx context.Context, ep Endpoint, service, method string, params []any, sink StreamSink) (any, error) {
	if params == nil {
		params = []any{}
	}
	lim := cl.Limits
	activity := NewGuid()
	req := &RequestMessage{
		ID:         fmt.Sprintf("%s::%sAsync[%d] / %s", service, method, cl.counter.Add(1), activity),
		ActivityID: activity,
		Endpoint:   NewServiceEndPoint(ep.requestBaseURI(), ep.requestThumbprint(), lim),
		Service:    service,
		Method:     method,
		Params:     params,
	}
	// Refuse what cannot be sent before touching the network.
	if _, _, err := encodeEnvelope(req, lim); err != nil {
		return nil, err
	}
	start := time.Now()
	var lastErr error
	for attempt := 0; attempt < max(lim.RetryCountLimit, 1); attempt++ {
		if attempt > 0 {
			if time.Since(start) > lim.ConnectionErrorRetryTimeout {
				break
			}
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-time.After(lim.RetryListeningSleepInterval):
			}
			if attempt == 2 {
				cl.clearPool(ep) // a second initialisation failure: the pool is suspect
			}
		}
		c, err := cl.connection(ctx, ep)
		if err != nil {
			lastErr = err
			if !retryable(err) {
				return nil, err
			}
			continue
		}
		resp, err := cl.exchange(ctx, c, req, sink)
		if err != nil {
			c.Close()
			return nil, err // the request may have reached the service: no retry
		}
		cl.release(ep, c)
		if resp.Error != nil {
			return nil, resp.Error
		}
		return resp.Result, nil
	}
	return nil, fmt.Errorf("calling %s.%s on %s: %w", service, method, ep.BaseURI, lastErr)
}

// retryable reports whether a connection failure may be retried.
func retryable(err error) bool {
	var uc *UnexpectedCertificateError
	var pe *PeerCertificateError
	var dnsErr *net.DNSError
	switch {
	case errors.As(err, &uc), errors.As(err, &pe):
		return false
	case errors.As(err, &dnsErr) && dnsErr.IsNotFound:
		return false
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return false
	}
	return true
}

// connection returns a pooled connection that answered NEXT with PROCEED,
// or a new identified one.
func (cl *Client) connection(ctx context.Context, ep Endpoint) (*conn, error) {
	for {
		pc := cl.take(ep)
		if pc == nil {
			break
		}
		if time.Since(pc.idleSince) > cl.Limits.PooledConnectionIdleTimeout {
			pc.closeWithEnd()
			continue
		}
		if err := pc.sendControl(controlNext); err != nil {
			pc.Close()
			continue
		}
		word, err := pc.readControl(cl.Limits.HeartbeatReceiveTimeout)
		if err != nil || word != controlProceed {
			// The service closed it while idle (a Tentacle does after a minute).
			pc.Close()
			continue
		}
		return pc.conn, nil
	}
	u, err := url.Parse(ep.BaseURI)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("%q is not a listening endpoint such as https://host:10933/", ep.BaseURI)
	}
	port := u.Port()
	if port == "" {
		port = "443"
	}
	proxy := cl.Proxy
	if ep.Proxy != nil {
		p := ep.Proxy
		proxy = func(string) (*url.URL, error) { return p, nil }
	}
	c, err := dialHalibut(ctx, net.JoinHostPort(u.Hostname(), port), u.Hostname(), []string{ep.Thumbprint}, cl.Certificate, proxy, cl.Tickets, cl.Limits)
	if err != nil {
		var uc *UnexpectedCertificateError
		var pe *PeerCertificateError
		if errors.As(err, &uc) || errors.As(err, &pe) {
			return nil, err
		}
		return nil, &ConnectionInitializationError{Err: err}
	}
	if err := c.sendText(identityLine(identityClient), cl.Limits.SendTimeout); err != nil {
		c.Close()
		if isReset(err) { // Windows: the refusal arrived as a reset before we wrote
			err = cl.closedDuringIdentification(err)
		}
		return nil, &ConnectionInitializationError{Err: err}
	}
	id, err := readIdentity(c.r, cl.Limits.MaxControlLineBytes)
	if pe, ok := asPeerCertificateError(err, "the service at "+ep.BaseURI, cl.Certificate); ok {
		// With TLS 1.3 the service's refusal of our certificate arrives here.
		c.Close()
		return nil, pe
	}
	if err != nil || id.kind != identityServer {
		c.Close()
		if err == nil {
			err = protocolErrorf("expected MX-SERVER, got %s", id.kind)
		}
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || isReset(err) {
			err = cl.closedDuringIdentification(err)
		}
		return nil, &ConnectionInitializationError{Err: err}
	}
	return c, nil
}

func (cl *Client) closedDuringIdentification(err error) error {
	return fmt.Errorf("the service closed the connection during identification; it probably does not trust this client's certificate thumbprint %s%s (%w)", thumbprintDER(cl.Certificate.Certificate[0]), ownCertificateNote(cl.Certificate), err)
}

// NoResponseError is a connection that the service closed after a request
// was sent and before any byte of its response, so the request may or may
// not have run. Services do this when they cannot read a request at all
// (upstream drops the connection when an argument's $type is not in its
// type registry), and when they stop or crash.
type NoResponseError struct {
	Service, Method string
	Err             error
}

func (e *NoResponseError) Error() string {
	return fmt.Sprintf("the service closed the connection without answering %s.%s (%v)", e.Service, e.Method, e.Err)
}
func (e *NoResponseError) Unwrap() error { return e.Err }

// responseWaitError describes a failure while waiting for req's response.
func responseWaitError(req *RequestMessage, err error) error {
	if errors.Is(err, io.EOF) || isReset(err) {
		return &NoResponseError{Service: req.Service, Method: req.Method, Err: err}
	}
	return fmt.Errorf("waiting for the response to %s.%s: %w", req.Service, req.Method, err)
}

func isReset(err error) bool {
	var errno syscall.Errno
	if errors.As(err, &errno) && (errno == syscall.ECONNRESET || runtime.GOOS == "windows" && errno == wsaECONNRESET) {
		return true
	}
	return err != nil && strings.Contains(err.Error(), "connection reset")
}

// wsaECONNRESET is Winsock's reset ("An existing connection was forcibly closed by the
// remote host."), which is not syscall.ECONNRESET on Windows. Windows resets a connection
// the peer closed with unread data, so a refusal often arrives as one.
const wsaECONNRESET = syscall.Errno(10054)

// exchange sends the request and reads its response.
func (cl *Client) exchange(ctx context.Context, c *conn, req *RequestMessage, sink StreamSink) (*ResponseMessage, error) {
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	if err := c.writeMessage(req); err != nil {
		return nil, err
	}
	if err := c.waitForData(cl.Limits.ReceiveResponseTimeout); err != nil {
		return nil, responseWaitError(req, err)
	}
	msg, err := c.readMessage()
	if err != nil {
		return nil, err
	}
	resp, err := msg.Response()
	if err != nil {
		return nil, err
	}
	if resp == nil {
		return nil, protocolErrorf("null response to %s.%s", req.Service, req.Method)
	}
	if resp.ID != req.ID {
		return nil, protocolErrorf("response id %q does not match request id %q", resp.ID, req.ID)
	}
	if err := msg.ReceiveStreams(sink); err != nil {
		return nil, err
	}
	return resp, nil
}

func (cl *Client) take(ep Endpoint) *pooledConn {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	pool := cl.pools[ep.key()]
	if len(pool) == 0 {
		return nil
	}
	pc := pool[len(pool)-1]
	cl.pools[ep.key()] = pool[:len(pool)-1]
	return pc
}

func (cl *Client) release(ep Endpoint, c *conn) {
	cl.mu.Lock()
	if cl.pools == nil {
		cl.pools = map[string][]*pooledConn{}
	}
	pool := cl.pools[ep.key()]
	if len(pool) < cl.Limits.MaxPooledConnectionsPerEndpoint {
		cl.pools[ep.key()] = append(pool, &pooledConn{conn: c, idleSince: time.Now()})
		cl.mu.Unlock()
		return
	}
	cl.mu.Unlock()
	c.closeWithEnd()
}

func (cl *Client) clearPool(ep Endpoint) {
	cl.mu.Lock()
	pool := cl.pools[ep.key()]
	delete(cl.pools, ep.key())
	cl.mu.Unlock()
	for _, pc := range pool {
		pc.Close()
	}
}

// Close closes every pooled connection, saying END first.
func (cl *Client) Close() {
	cl.mu.Lock()
	pools := cl.pools
	cl.pools = nil
	cl.mu.Unlock()
	for _, pool := range pools {
		for _, pc := range pool {
			pc.closeWithEnd()
		}
	}
}

// PooledConnections is how many idle connections the client holds for ep.
func (cl *Client) PooledConnections(ep Endpoint) int {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	return len(cl.pools[ep.key()])
}
