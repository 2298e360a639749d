package halibut

import (
	"github.com/tentacle-go/tentacle/agent/timespan"

	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// PollingServer is the polling endpoint role (what an Octopus Server runs on
// port 10943): it accepts polling Tentacles and hands each subscription's
// queued requests to whichever of its connections asks next
// (reference/halibut-protocol.md §2.4, §3.3). Tests and `tentacle remote`
// use it to drive polling agents.
type PollingServer struct {
	Certificate *tls.Certificate
	Trust       *TrustStore
	Limits      Limits
	Logger      *slog.Logger

	acceptor
	mu      sync.Mutex // guards queues and stopped
	queues  map[queueKey]*pendingQueue
	stopped chan struct{} // closed by Shutdown: wakes connections waiting for work
	counter atomic.Int64
}

func (s *PollingServer) stoppedChan() chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped == nil {
		s.stopped = make(chan struct{})
	}
	return s.stopped
}

type pendingQueue struct {
	ch         chan *pendingRequest
	subscribed atomic.Int32 // connections currently polling this subscription
}

// pendingRequest is one queued call. state moves once from pending to
// either collected (a poller took it) or abandoned (the caller gave up).
type pendingRequest struct {
	req  *RequestMessage
	sink StreamSink
	// handOver: the response goes to the caller as soon as its envelope is
	// read, its data streams still on the connection (pendingResult.msg),
	// which waits for pendingResult.release before it reads anything more.
	handOver bool
	state    atomic.Int32
	taken    chan struct{}
	done     chan pendingResult
}

const (
	requestPending int32 = iota
	requestCollected
	requestAbandoned
)

type pendingResult struct {
	resp *ResponseMessage
	err  error
	// With handOver: the response's streams, and what to close once the
	// caller is done with them.
	msg     *IncomingMessage
	release chan struct{}
}

// ErrRequestNotCollected is a request no poller collected in time.
var ErrRequestNotCollected = errors.New("a request was sent to a polling endpoint, but the polling endpoint did not collect the request within the allowed time")

func (s *PollingServer) logger() *slog.Logger {
	if s.Logger != nil {
		return s.Logger
	}
	return slog.Default()
}

// queueKey binds a subscription to the certificate of the Tentacle that
// owns it: a request is only ever handed to a connection that polls that
// subscription with that certificate, so one trusted Tentacle claiming
// another's subscription id gets none of its scripts or files.
type queueKey struct {
	subscription string
	thumbprint   string // upper-case hex
}

func (s *PollingServer) queue(k queueKey) *pendingQueue {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.queues == nil {
		s.queues = map[queueKey]*pendingQueue{}
	}
	q := s.queues[k]
	if q == nil {
		q = &pendingQueue{ch: make(chan *pendingRequest, 4096)}
		s.queues[k] = q
	}
	return q
}

// Subscribers is how many connections are polling subscription right now,
// with any certificate.
func (s *PollingServer) Subscribers(subscription string) int {
	sub, err := NormalizeSubscriptionID(subscription)
	if err != nil {
		return 0
	}
	n := 0
	for _, thumb := range s.pollingThumbprints(sub) {
		n += int(s.queue(queueKey{sub, thumb}).subscribed.Load())
	}
	return n
}

// pollingThumbprints are the certificates of the connections polling sub now.
func (s *PollingServer) pollingThumbprints(sub string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for k, q := range s.queues {
		if k.subscription == sub && q.subscribed.Load() > 0 {
			out = append(out, k.thumbprint)
		}
	}
	return out
}

// Call queues service.method for the Tentacle polling with subscription and
// presenting the certificate thumbprint, and waits for its response. A
// request not collected within PollingRequestQueueTimeout fails with
// ErrRequestNotCollected; once collected, it waits for the response (or ctx).
func (s *PollingServer) Call(ctx context.Context, subscription, thumbprint, service, method string, params []any, sink StreamSink) (any, error) {
	r, err := s.call(ctx, subscription, thumbprint, service, method, params, &pendingRequest{sink: sink})
	if err != nil {
		return nil, err
	}
	if r.resp.Error != nil {
		return nil, r.resp.Error
	}
	return r.resp.Result, nil
}

// callHandingOver is Call for a relay: it returns the response as soon as its
// envelope has been read, with its data streams still on the polling
// connection, to be read from msg (NextStream) and passed on without being
// spooled. The connection waits until release is called, then discards what
// was left unread; release must be called exactly once, even when resp
// carries an error.
func (s *PollingServer) callHandingOver(ctx context.Context, subscription, thumbprint, service, method string, params []any) (resp *ResponseMessage, msg *IncomingMessage, release func(), err error) {
	r, err := s.call(ctx, subscription, thumbprint, service, method, params, &pendingRequest{handOver: true})
	if err != nil {
		return nil, nil, nil, err
	}
	var once sync.Once
	return r.resp, r.msg, func() { once.Do(func() { close(r.release) }) }, nil
}

// call queues pr (its request built here) and waits for its result.
func (s *PollingServer) call(ctx context.Context, subscription, thumbprint, service, method string, params []any, pr *pendingRequest) (pendingResult, error) {
	sub, err := NormalizeSubscriptionID(subscription)
	if err != nil {
		return pendingResult{}, err
	}
	if thumbprint == "" {
		return pendingResult{}, fmt.Errorf("no thumbprint given for %s: a request for a polling Tentacle goes only to the certificate expected for it", sub)
	}
	key := queueKey{sub, strings.ToUpper(thumbprint)}
	if params == nil {
		params = []any{}
	}
	activity := NewGuid()
	pr.req = &RequestMessage{
		ID:         fmt.Sprintf("%s::%sAsync[%d] / %s", service, method, s.counter.Add(1), activity),
		ActivityID: activity,
		Endpoint:   NewServiceEndPoint(sub, key.thumbprint, s.Limits), // as upstream's server
		Service:    service,
		Method:     method,
		Params:     params,
	}
	if _, _, err := encodeEnvelope(pr.req, s.Limits); err != nil {
		return pendingResult{}, err
	}
	pr.taken, pr.done = make(chan struct{}), make(chan pendingResult, 1)
	select {
	case s.queue(key).ch <- pr:
	default:
		return pendingResult{}, fmt.Errorf("too many requests queued for %s", sub)
	}
	timer := time.NewTimer(s.Limits.PollingRequestQueueTimeout)
	defer timer.Stop()
	select {
	case <-pr.taken:
	case <-timer.C:
		if pr.state.CompareAndSwap(requestPending, requestAbandoned) {
			if others := s.pollingThumbprints(sub); len(others) > 0 && !slices.Contains(others, key.thumbprint) {
				return pendingResult{}, fmt.Errorf("%w (%s): %s is polled by a Tentacle with thumbprint %s, not the expected %s, so it was given nothing. Check the thumbprint, or whether another Tentacle uses this subscription id", ErrRequestNotCollected, timespan.Format(s.Limits.PollingRequestQueueTimeout), sub, strings.Join(others, ", "), key.thumbprint)
			}
			return pendingResult{}, fmt.Errorf("%w (%s), so the request timed out. Is the Tentacle polling %s running, and does it trust this server?", ErrRequestNotCollected, timespan.Format(s.Limits.PollingRequestQueueTimeout), sub)
		}
		<-pr.taken
	case <-ctx.Done():
		if pr.state.CompareAndSwap(requestPending, requestAbandoned) {
			return pendingResult{}, ctx.Err()
		}
		<-pr.taken
	}
	select {
	case r := <-pr.done:
		if r.err != nil {
			return pendingResult{}, r.err
		}
		return r, nil
	case <-ctx.Done():
		if pr.handOver {
			// Nobody will read the response's streams: let the connection go on.
			go func() {
				if r := <-pr.done; r.release != nil {
					close(r.release)
				}
			}()
		}
		return pendingResult{}, ctx.Err()
	}
}

// next dequeues a request for sub, or returns nil after wait or when stop
// is closed.
func (q *pendingQueue) next(wait time.Duration, stop <-chan struct{}) *pendingRequest {
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		select {
		case pr := <-q.ch:
			if pr.state.CompareAndSwap(requestPending, requestCollected) {
				close(pr.taken)
				return pr
			}
			// abandoned by its caller: skip it
		case <-timer.C:
			return nil
		case <-stop:
			return nil
		}
	}
}

// Serve accepts polling Tentacles on ln until Shutdown.
func (s *PollingServer) Serve(ln net.Listener) error {
	return s.serve(ln, s.Limits, s.logger(), s.handle)
}

// Shutdown stops accepting and closes every polling connection.
func (s *PollingServer) Shutdown(ctx context.Context) error {
	stopped := s.stoppedChan()
	if s.stop(true) {
		close(stopped)
	}
	return s.wait(ctx)
}

func (s *PollingServer) handle(raw net.Conn) {
	log := s.logger().With("remote", raw.RemoteAddr().String())
	c, id, peer, err := acceptHalibut(raw, s.serverTLS(s.Certificate), s.Trust, s.Limits, nil)
	if err != nil {
		s.acceptFailed(s.logger(), s.Limits, raw, err)
		return
	}
	markIdentified(raw)
	s.serveSubscriber(c, id, peer, log)
}

// serveSubscriber runs the server side of one identified polling
// connection, TCP or WebSocket.
func (s *PollingServer) serveSubscriber(c *conn, id identity, peer string, log *slog.Logger) {
	if !s.track(c) {
		c.Close()
		return
	}
	defer func() {
		s.untrack(c)
		c.Close()
	}()
	if id.kind != identitySubscr {
		s.refused(s.logger(), s.Limits, c.RemoteAddr(), fmt.Sprintf("refused a connection that did not identify as a polling subscriber (it said %s)", id.kind), peer)
		return
	}
	sub, err := NormalizeSubscriptionID(id.subscription.String())
	if err != nil {
		return
	}
	if err := c.sendText(identityLine(identityServer), s.Limits.SendTimeout); err != nil {
		return
	}
	q := s.queue(queueKey{sub, strings.ToUpper(peer)})
	q.subscribed.Add(1)
	defer q.subscribed.Add(-1)
	log = log.With("subscription", sub, "thumbprint", peer)
	stop := s.stoppedChan()
	for {
		pr := q.next(s.Limits.PollingQueueWaitTimeout, stop)
		if pr == nil {
			select {
			case <-stop:
				// The subscriber is waiting for a request, not a control word:
				// just close (END here would read as a malformed message).
				return
			default:
			}
			// Nothing to do: the null request keeps the connection alive.
			if err := c.writeMessage(nil); err != nil {
				return
			}
		} else if err := s.exchange(c, pr); err != nil {
			pr.done <- pendingResult{err: err}
			log.Warn("polling request failed", "service", pr.req.Service, "method", pr.req.Method, "err", err)
			return
		}
		timeout := s.Limits.ReceiveTimeout
		if s.Limits.UseHeartbeatTimeouts {
			timeout = s.Limits.HeartbeatReceiveTimeout
		}
		word, err := c.readControl(timeout)
		if err != nil || word == controlEnd {
			return
		}
		if word != controlNext {
			log.Warn("protocol error", "err", protocolErrorf("expected NEXT or END, got %q", word))
			return
		}
		if err := c.sendControl(controlProceed); err != nil {
			return
		}
	}
}

// exchange sends one request down a polling connection and delivers its
// response to the waiting caller.
func (s *PollingServer) exchange(c *conn, pr *pendingRequest) error {
	if err := c.writeMessage(pr.req); err != nil {
		return err
	}
	if err := c.waitForData(s.Limits.ReceiveResponseTimeout); err != nil {
		return responseWaitError(pr.req, err)
	}
	msg, err := c.readMessage()
	if err != nil {
		return err
	}
	resp, err := msg.Response()
	if err != nil {
		return err
	}
	if resp == nil || resp.ID != pr.req.ID {
		return protocolErrorf("response does not match request %q", pr.req.ID)
	}
	if pr.handOver {
		release := make(chan struct{})
		pr.done <- pendingResult{resp: resp, msg: msg, release: release}
		select {
		case <-release:
		case <-s.stoppedChan():
			return ErrListenerClosed
		}
		// The caller read what it wanted; the rest is discarded (and its
		// framing checked) so that the connection stays in step.
		return msg.ReceiveStreams(nil)
	}
	if err := msg.ReceiveStreams(pr.sink); err != nil {
		return err
	}
	pr.done <- pendingResult{resp: resp}
	return nil
}
