package halibut

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// conn is one Halibut connection. Every layer (preamble, control lines,
// DEFLATE envelopes, data streams) reads through the one bufio.Reader, so no
// decoder ever loses bytes another needs.
//
// Deadlines are per operation, not per phase: every Read or Write of the
// underlying connection pushes its deadline out by the current timeout, so a
// large data stream that keeps moving never times out, while a peer that
// stops sending does.
type conn struct {
	net.Conn
	r   *bufio.Reader
	lim Limits

	readTimeout  atomic.Int64 // time.Duration
	writeTimeout atomic.Int64
}

func newConn(c net.Conn, lim Limits) *conn {
	hc := &conn{Conn: c, lim: lim}
	hc.readTimeout.Store(int64(lim.ReceiveTimeout))
	hc.writeTimeout.Store(int64(lim.SendTimeout))
	hc.r = bufio.NewReaderSize(deadlineReader{hc}, 32*1024)
	return hc
}

// writeBuffers lends write buffers to connections for one message or control
// line at a time. A connection spends nearly all its life idle (a polling
// endpoint holds thousands), and a buffer of its own cost WriteBufferSize (64
// KiB) each, on both sides, for nothing.
var writeBuffers sync.Pool // *bufio.Writer

// writer borrows a write buffer; release gives it back after its Flush.
func (c *conn) writer() *bufio.Writer {
	size := max(c.lim.WriteBufferSize, 4096)
	if w, ok := writeBuffers.Get().(*bufio.Writer); ok && w.Size() == size {
		w.Reset(deadlineWriter{c})
		return w
	}
	return bufio.NewWriterSize(deadlineWriter{c}, size)
}

func release(w *bufio.Writer) {
	w.Reset(nil) // holds no connection while pooled; a failed write's bytes are dropped
	writeBuffers.Put(w)
}

type deadlineReader struct{ c *conn }

func (d deadlineReader) Read(p []byte) (int, error) {
	if t := time.Duration(d.c.readTimeout.Load()); t > 0 {
		_ = d.c.Conn.SetReadDeadline(time.Now().Add(t))
	}
	return d.c.Conn.Read(p)
}

type deadlineWriter struct{ c *conn }

func (d deadlineWriter) Write(p []byte) (int, error) {
	if t := time.Duration(d.c.writeTimeout.Load()); t > 0 {
		_ = d.c.Conn.SetWriteDeadline(time.Now().Add(t))
	}
	return d.c.Conn.Write(p)
}

// setReadTimeout changes the idle bound of subsequent reads.
func (c *conn) setReadTimeout(d time.Duration) { c.readTimeout.Store(int64(d)) }

// setWriteTimeout changes the idle bound of subsequent writes.
func (c *conn) setWriteTimeout(d time.Duration) { c.writeTimeout.Store(int64(d)) }

// sendText writes control text and flushes it, bounded by timeout.
func (c *conn) sendText(s string, timeout time.Duration) error {
	c.setWriteTimeout(timeout)
	w := c.writer()
	defer release(w)
	if _, err := w.WriteString(s); err != nil {
		return err
	}
	return w.Flush()
}

// sendControl writes NEXT, PROCEED or END.
func (c *conn) sendControl(word string) error {
	return c.sendText(word+"\r\n", c.lim.HeartbeatSendTimeout)
}

// readControl reads the next control word, bounded by timeout.
func (c *conn) readControl(timeout time.Duration) (string, error) {
	c.setReadTimeout(timeout)
	return readControlWord(c.r, c.lim.MaxControlLineBytes)
}

// waitForData blocks until the first byte of the next message arrives, or
// timeout passes; then reads go back to the normal receive bound.
func (c *conn) waitForData(timeout time.Duration) error {
	c.setReadTimeout(timeout)
	_, err := c.r.Peek(1)
	c.setReadTimeout(c.lim.ReceiveTimeout)
	return err
}

// unsendableError is a message refused before any byte was written: the
// connection is still in step and can carry an error response instead.
type unsendableError struct{ err error }

func (u *unsendableError) Error() string { return u.err.Error() }
func (u *unsendableError) Unwrap() error { return u.err }

// writeMessage sends one message (envelope and streams) and flushes it.
func (c *conn) writeMessage(message any) error {
	body, streams, err := encodeEnvelope(message, c.lim)
	if err == nil {
		err = checkStreamsToSend(streams, c.lim)
	}
	if err != nil {
		return &unsendableError{err}
	}
	c.setWriteTimeout(c.lim.SendTimeout)
	w := c.writer()
	defer release(w)
	if err := writeEncodedMessage(w, body, streams, c.lim); err != nil {
		return err
	}
	return w.Flush()
}

// readMessage reads one envelope; its streams are still on c.r.
func (c *conn) readMessage() (*IncomingMessage, error) {
	c.setReadTimeout(c.lim.ReceiveTimeout)
	return ReadMessage(c.r, c.lim)
}

// closeWithEnd says END (best effort, briefly) and closes, as upstream does
// when it discards a connection.
func (c *conn) closeWithEnd() {
	c.setWriteTimeout(time.Second)
	_ = c.sendControl(controlEnd)
	_ = c.Close()
}

// ErrPeerHungUp is a peer that closed or reset the connection while one of
// its requests was being executed, i.e. it abandoned the request. An Octopus
// Server does this to a polling connection when it cancels the request in
// flight (a cancelled deployment step).
var ErrPeerHungUp = errors.New("the peer closed the connection while its request was being executed")

// watchForHangUp reads the connection while a request is executed, when the
// protocol has the peer send nothing: an end of stream or a reset then
// means it abandoned the request, and hungUp is called with ErrPeerHungUp,
// at once rather than when the response cannot be written. Bytes that do
// arrive stay buffered for the next read. The returned stop ends the watch;
// the caller must call it before reading c again.
func (c *conn) watchForHangUp(hungUp context.CancelCauseFunc) (stop func()) {
	// Set here, not in the goroutine, so that stop's deadline comes after it.
	c.setReadTimeout(0)
	_ = c.Conn.SetReadDeadline(time.Time{})
	var stopping atomic.Bool
	done := make(chan struct{})
	go func() {
		defer close(done)
		if _, err := c.r.Peek(1); err != nil && !stopping.Load() {
			hungUp(fmt.Errorf("%w (%v)", ErrPeerHungUp, err))
		}
	}()
	return func() {
		stopping.Store(true)
		// A read interrupted by its deadline leaves TLS and the buffered
		// reader usable (a timeout is a temporary error to both).
		_ = c.Conn.SetReadDeadline(time.Unix(1, 0))
		<-done
		c.setReadTimeout(c.lim.ReceiveTimeout)
	}
}
