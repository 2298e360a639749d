package halibut

import (
	"bufio"
	"compress/flate"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"reflect"
	"sync"
	"time"

	"golang.org/x/sync/semaphore"
)

// One message on the wire (reference/halibut-protocol.md §4.1) is a raw DEFLATE stream (RFC
// 1951: no zlib or gzip header, no length prefix) holding exactly one BSON document, the
// envelope {"Message": <value>}, followed by one record per data stream it announces (§5).

// Errors a peer can cause. All are wrapped with details; test with errors.Is. After any of
// them the connection is out of step and must be closed.
var (
	// ErrMessageTooLarge: the envelope exceeds MaxMessageBytes, MaxCompressedMessageBytes or
	// MaxMessageElements.
	ErrMessageTooLarge = errors.New("Halibut message too large")
	// ErrMalformedMessage: the compressed envelope is corrupt or not one BSON document.
	ErrMalformedMessage = errors.New("malformed Halibut message")
	// ErrDecodingBusy: messages being decoded on other connections held the MaxDecodingBytes
	// budget for longer than ReceiveTimeout.
	ErrDecodingBusy = errors.New("too many Halibut messages are being decoded at once")
)

// envelopeKey is the one property of the envelope (PascalCase on the wire).
const envelopeKey = "Message"

// WriteMessage writes one message: the envelope around message, then a record for every
// *DataStream found in it, in envelope order, each Body copied without buffering.
//
// message is nil (the null request a polling server sends as keep-alive), *RequestMessage,
// *ResponseMessage, a Doc written as is, or any value Marshal accepts; as the envelope slot
// is .NET `object`, a struct there gets its `$type` (it must be WireTyped).
//
// Everything that can be checked is checked before the first byte is written. An error
// after that (I/O, or a Body shorter or longer than its Length) leaves the connection out of
// step: close it.
func WriteMessage(w io.Writer, message any, lim Limits) error {
	body, streams, err := encodeEnvelope(message, lim)
	if err != nil {
		return err
	}
	return writeEncodedMessage(w, body, streams, lim)
}

// encodeEnvelope returns the BSON of {"Message": message} and the streams it announces.
func encodeEnvelope(message any, lim Limits) ([]byte, []*DataStream, error) {
	e := encoder{maxDepth: lim.MaxNestingDepth, buf: make([]byte, 0, 512)}
	var start int
	e.buf, start = beginDocument(e.buf)
	e.depth = 1
	// Taking the address of the interface keeps its static type: the slot is `object`.
	if err := e.element(envelopeKey, reflect.ValueOf(&message).Elem(), slotObject); err != nil {
		return nil, nil, fmt.Errorf("encoding Halibut message: %w", atPath(envelopeKey, err))
	}
	var err error
	if e.buf, err = endDocument(e.buf, start); err != nil {
		return nil, nil, err
	}
	if len(e.buf) > lim.MaxMessageBytes {
		return nil, nil, fmt.Errorf("%w: envelope is %d bytes, MaxMessageBytes is %d; send large content as a DataStream", ErrMessageTooLarge, len(e.buf), lim.MaxMessageBytes)
	}
	return e.buf, e.streams, nil
}

func writeEncodedMessage(w io.Writer, body []byte, streams []*DataStream, lim Limits) error {
	if err := checkStreamsToSend(streams, lim); err != nil {
		return err
	}
	// A caller's own bufio.Writer (a connection's) is used as is: bufio would
	// return it from NewWriterSize, and pooling it would hand the
	// connection's writer to another goroutine.
	bw, ok := w.(*bufio.Writer)
	if !ok {
		bw = getBufferedWriter(w, lim.WriteBufferSize)
		defer putBufferedWriter(bw)
	}
	if err := writeDeflated(bw, body); err != nil {
		return fmt.Errorf("writing Halibut message: %w", err)
	}
	if err := writeStreamRecords(bw, streams); err != nil {
		return err
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("writing Halibut message: %w", err)
	}
	return nil
}

var bufferedWriters sync.Pool // *bufio.Writer of some WriteBufferSize

func getBufferedWriter(w io.Writer, size int) *bufio.Writer {
	if bw, ok := bufferedWriters.Get().(*bufio.Writer); ok && bw.Size() == size {
		bw.Reset(w)
		return bw
	}
	return bufio.NewWriterSize(w, size)
}

func putBufferedWriter(bw *bufio.Writer) {
	bw.Reset(nil) // drop the connection
	bufferedWriters.Put(bw)
}

// writeDeflated writes body as one raw DEFLATE stream whose very last byte is the last byte
// of body.
//
// Go's flate.Writer.Close ends every stream with a separate empty final block, i.e. a few
// bytes after the last data byte. A .NET reader of a message over 64 KiB does not read its
// DeflateStream to the end: it stops once the BSON document is complete and rewinds only the
// input the inflater had already fetched. Trailing bytes that had not arrived yet would then
// be read as the next frame. So the stream is built as: everything but the last byte,
// compressed and sync-flushed (byte-aligned, non-final), then a final stored block holding the
// last byte. Once the inflater has produced the document's last byte it has consumed the whole
// stream. This is valid RFC 1951 that any inflater reads; it costs ten bytes.
//
// A body of up to storedBodyMax bytes goes in one stored (uncompressed) final block instead.
func writeDeflated(w io.Writer, body []byte) error {
	if len(body) <= storedBodyMax {
		n := len(body)
		// BFINAL=1 BTYPE=00, LEN, NLEN (RFC 1951 §3.2.4), the body.
		if _, err := w.Write([]byte{0x01, byte(n), byte(n >> 8), ^byte(n), ^byte(n >> 8)}); err != nil {
			return err
		}
		_, err := w.Write(body)
		return err
	}
	fw := getFlateWriter(w)
	defer flateWriters.Put(fw)
	if _, err := fw.Write(body[:len(body)-1]); err != nil {
		return err
	}
	if err := fw.Flush(); err != nil {
		return err
	}
	// BFINAL=1 BTYPE=00 (stored), LEN=1, NLEN=^1, the byte.
	_, err := w.Write([]byte{0x01, 0x01, 0x00, 0xfe, 0xff, body[len(body)-1]})
	return err
}

// storedBodyMax is the largest message body sent without compression. Compressing a small
// body saves at most a few hundred bytes, while a compressor (~600 KiB of tables) costs a
// process that sends few messages, such as every `tentacle remote` command, ~0.5 ms to set
// up: more than its TLS handshake. Any inflater reads stored blocks.
const storedBodyMax = 4 << 10

var flateWriters sync.Pool // *flate.Writer; each is ~600 KiB, worth reusing

func getFlateWriter(w io.Writer) *flate.Writer {
	if fw, ok := flateWriters.Get().(*flate.Writer); ok {
		fw.Reset(w)
		return fw
	}
	// .NET's DeflateStream uses zlib's default level too; the bytes need not match theirs,
	// only the decompressed BSON does.
	fw, _ := flate.NewWriter(w, flate.DefaultCompression) // only fails for a bad level
	return fw
}

// IncomingMessage is a message whose envelope has been read. Its data stream records follow
// on the connection: the caller must take them all, with NextStream until io.EOF or with
// ReceiveStreams, before reading anything else from the connection.
type IncomingMessage struct {
	// Envelope is the whole root document.
	Envelope Doc
	// Message is the envelope's Message value: nil for a null request, a Doc for a request or
	// response (see Request and Response), or a primitive.
	Message any
	// Streams are the announced data streams (ID and Length), in envelope order.
	Streams []DataStream

	records *streamRecordReader
}

// ReadMessage reads one envelope from r and returns it with the announced streams still on
// r. It returns io.EOF, unwrapped, if r ends before the first byte of a message (the peer
// closed the connection between messages).
//
// r should implement io.ByteReader (a *bufio.Reader shared with the control-line reader):
// the decompressor then reads exactly the envelope's bytes and nothing beyond it. Any other
// reader is read one byte at a time during the envelope, which is exact but slow.
//
// Decoding is bounded by lim: MaxCompressedMessageBytes of input, MaxMessageBytes of BSON
// (a deflate bomb stops there), MaxNestingDepth, MaxMessageElements, MaxDataStreamLength and
// MaxDataStreamsPerMessage; and all decodes in the process share MaxDecodingBytes of memory
// (see decodeReservation). Deadlines are the caller's (set them on the connection).
func ReadMessage(r io.Reader, lim Limits) (*IncomingMessage, error) {
	br := asByteReader(r)
	res := &decodeReservation{budget: decodeBudgetFor(lim.MaxDecodingBytes), capacity: lim.MaxDecodingBytes, wait: lim.ReceiveTimeout}
	defer res.release()
	body, err := readEnvelopeBSON(br, lim, res)
	if err != nil {
		return nil, err
	}
	elements, sizes, err := checkDoc(body, lim)
	if err != nil {
		if errors.Is(err, ErrMessageTooLarge) {
			return nil, fmt.Errorf("envelope: %w", err)
		}
		return nil, fmt.Errorf("%w: envelope: %w", ErrMalformedMessage, err)
	}
	res.shrinkTo(decodeCost(len(body), elements))
	doc, err := buildDoc(body, lim, sizes)
	if err != nil {
		return nil, fmt.Errorf("%w: envelope: %w", ErrMalformedMessage, err)
	}
	return newIncoming(doc, br, lim)
}

// minElementBytes is the smallest BSON element: a type byte and an empty name (a null).
const minElementBytes = 2

// decodeBudgets holds one budget per MaxDecodingBytes value, so every connection with the
// same limits (normally all of a process's) draws on the same one.
var decodeBudgets sync.Map // int64 -> *semaphore.Weighted

func decodeBudgetFor(total int64) *semaphore.Weighted {
	if b, ok := decodeBudgets.Load(total); ok {
		return b.(*semaphore.Weighted)
	}
	b, _ := decodeBudgets.LoadOrStore(total, semaphore.NewWeighted(max(total, 0)))
	return b.(*semaphore.Weighted)
}

// decodeReservation is one decode's share of the MaxDecodingBytes budget. It reserves the
// most the declared size could cost before inflating anything (every byte an element,
// up to MaxMessageElements), shrinks to the real cost once the elements are counted, and
// is released when the message is decoded. Reserving the whole amount at once means no
// decode ever holds part of the budget while waiting for more, so decodes cannot deadlock;
// one costing more than the whole budget is clamped to it and so runs alone.
type decodeReservation struct {
	budget   *semaphore.Weighted
	capacity int64
	wait     time.Duration
	held     int64
}

func (r *decodeReservation) reserve(size int, lim Limits) error {
	if r == nil || r.budget == nil {
		return nil
	}
	n := min(decodeCost(size, min(lim.MaxMessageElements, size/minElementBytes)), r.capacity)
	if n <= 0 {
		return nil
	}
	if !r.budget.TryAcquire(n) {
		ctx, cancel := context.WithTimeout(context.Background(), r.wait)
		defer cancel()
		if err := r.budget.Acquire(ctx, n); err != nil {
			return fmt.Errorf("%w: waited %v for %d bytes of the MaxDecodingBytes budget (%d) to decode a %d-byte envelope; other connections are decoding large messages",
				ErrDecodingBusy, r.wait, n, r.capacity, size)
		}
	}
	r.held = n
	return nil
}

func (r *decodeReservation) shrinkTo(cost int64) {
	if r == nil || r.held <= cost {
		return
	}
	r.budget.Release(r.held - cost)
	r.held = cost
}

func (r *decodeReservation) release() {
	if r != nil && r.held > 0 {
		r.budget.Release(r.held)
		r.held = 0
	}
}

func newIncoming(doc Doc, r io.Reader, lim Limits) (*IncomingMessage, error) {
	message, ok := doc.Lookup(envelopeKey)
	if !ok {
		return nil, fmt.Errorf("%w: envelope has no %q property", ErrMalformedMessage, envelopeKey)
	}
	streams, err := announcedStreams(message, lim)
	if err != nil {
		return nil, err
	}
	return &IncomingMessage{Envelope: doc, Message: message, Streams: streams, records: newStreamRecordReader(r, streams)}, nil
}

// readEnvelopeBSON inflates one envelope and returns its BSON bytes, reserving its decode
// cost in res (nil: no budget) once the declared size is known.
func readEnvelopeBSON(br byteReader, lim Limits, res *decodeReservation) ([]byte, error) {
	budget := &compressedBudget{r: br, left: lim.MaxCompressedMessageBytes}
	fr := getFlateReader(budget)
	defer flateReaders.Put(fr)

	var head [4]byte
	if _, err := io.ReadFull(fr, head[:]); err != nil {
		if budget.used == 0 && (err == io.EOF || err == io.ErrUnexpectedEOF) {
			return nil, io.EOF
		}
		return nil, inflateError("reading the envelope length", err)
	}
	size := int64(int32(binary.LittleEndian.Uint32(head[:])))
	if size < minDocumentSize {
		return nil, fmt.Errorf("%w: envelope declares %d bytes, less than an empty document", ErrMalformedMessage, size)
	}
	if size > int64(lim.MaxMessageBytes) {
		return nil, fmt.Errorf("%w: envelope declares %d bytes, MaxMessageBytes is %d", ErrMessageTooLarge, size, lim.MaxMessageBytes)
	}
	if err := res.reserve(int(size), lim); err != nil {
		return nil, err
	}
	// Grow with what actually arrives rather than trusting the declared size up front, by
	// doubling up to exactly that size: at most twice the envelope allocated in all.
	buf := make([]byte, 4, min(size, 64<<10))
	copy(buf, head[:])
	for int64(len(buf)) < size {
		if len(buf) == cap(buf) {
			grown := make([]byte, len(buf), min(2*int64(cap(buf)), size))
			copy(grown, buf)
			buf = grown
		}
		n, err := fr.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err != nil && int64(len(buf)) < size {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return nil, inflateError(fmt.Sprintf("envelope ended after %d of %d bytes", len(buf), size), err)
		}
	}
	// Drain the deflate stream to its final block so the next reader starts right after it;
	// it must hold nothing more.
	var extra [1]byte
	n, err := io.ReadFull(fr, extra[:])
	if n > 0 {
		return nil, fmt.Errorf("%w: the deflate stream holds more than the %d-byte envelope document", ErrMalformedMessage, size)
	}
	if err != io.EOF {
		return nil, inflateError("reading the end of the deflate stream", err)
	}
	return buf, nil
}

func inflateError(what string, err error) error {
	var corrupt flate.CorruptInputError
	switch {
	case errors.Is(err, ErrMessageTooLarge):
		return fmt.Errorf("%s: %w", what, err)
	case errors.As(err, &corrupt):
		return fmt.Errorf("%w: %s: corrupt deflate data: %v", ErrMalformedMessage, what, err)
	case err == io.EOF || err == io.ErrUnexpectedEOF:
		return fmt.Errorf("%w: %s: connection ended mid-message: %w", ErrMalformedMessage, what, io.ErrUnexpectedEOF)
	}
	return fmt.Errorf("%s: %w", what, err)
}

// byteReader is what compress/flate needs to read no further than the deflate stream.
type byteReader interface {
	io.Reader
	io.ByteReader
}

func asByteReader(r io.Reader) byteReader {
	if br, ok := r.(byteReader); ok {
		return br
	}
	return &oneByteAtATime{r: r}
}

// oneByteAtATime gives any reader a ReadByte that never reads ahead.
type oneByteAtATime struct {
	r io.Reader
	b [1]byte
}

func (o *oneByteAtATime) Read(p []byte) (int, error) { return o.r.Read(p) }

func (o *oneByteAtATime) ReadByte() (byte, error) {
	if _, err := io.ReadFull(o.r, o.b[:]); err != nil {
		return 0, err
	}
	return o.b[0], nil
}

// compressedBudget counts and bounds the compressed bytes one envelope may consume, so a
// stream of empty deflate blocks cannot keep the reader busy forever.
type compressedBudget struct {
	r    byteReader
	left int64
	used int64
}

func (c *compressedBudget) exhausted() error {
	return fmt.Errorf("%w: compressed envelope exceeds MaxCompressedMessageBytes (%d)", ErrMessageTooLarge, c.used)
}

func (c *compressedBudget) ReadByte() (byte, error) {
	if c.left <= 0 {
		return 0, c.exhausted()
	}
	b, err := c.r.ReadByte()
	if err == nil {
		c.left--
		c.used++
	}
	return b, err
}

func (c *compressedBudget) Read(p []byte) (int, error) {
	if c.left <= 0 {
		return 0, c.exhausted()
	}
	if int64(len(p)) > c.left {
		p = p[:c.left]
	}
	n, err := c.r.Read(p)
	c.left -= int64(n)
	c.used += int64(n)
	return n, err
}

var flateReaders sync.Pool // io.ReadCloser from flate.NewReader, reused through flate.Resetter

func getFlateReader(r byteReader) io.ReadCloser {
	if fr, ok := flateReaders.Get().(io.ReadCloser); ok {
		if err := fr.(flate.Resetter).Reset(r, nil); err == nil {
			return fr
		}
	}
	return flate.NewReader(r)
}

// NextStream returns the next data stream record: the stream (ID, Length) and a reader of
// exactly Length payload bytes, whose end also checks the length trailer. Whatever the caller
// leaves unread is discarded by the next call. After the last stream it returns io.EOF.
// Records may arrive in any order; each announced stream arrives exactly once.
func (m *IncomingMessage) NextStream() (DataStream, io.Reader, error) {
	return m.records.next()
}

// ReceiveStreams hands every record to sink, in arrival order (a .NET receiver spools each
// to a temporary file before invoking the service; do likewise if the payload must outlive
// the call). Bytes sink leaves unread are discarded. A nil sink discards everything.
func (m *IncomingMessage) ReceiveStreams(sink func(ds DataStream, payload io.Reader) error) error {
	for {
		ds, payload, err := m.records.next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if sink != nil {
			if err := sink(ds, payload); err != nil {
				return fmt.Errorf("receiving data stream %s: %w", ds.ID, err)
			}
		}
	}
}

// IsNull reports whether this is a null message (a polling keep-alive).
func (m *IncomingMessage) IsNull() bool { return m.Message == nil }

// Request binds the message as a RequestMessage; it returns nil, nil for a null request.
// A `$type`, when present, must name RequestMessage. Params elements stay raw (Doc or
// primitive) for the dispatcher to bind.
func (m *IncomingMessage) Request() (*RequestMessage, error) {
	var req *RequestMessage
	if err := m.bindMessage(RequestMessageTypeName, &req); err != nil {
		return nil, err
	}
	return req, nil
}

// Response binds the message as a ResponseMessage; nil, nil for a null message. A `$type`,
// when present, must name ResponseMessage. Result stays raw (Doc or primitive).
func (m *IncomingMessage) Response() (*ResponseMessage, error) {
	var resp *ResponseMessage
	if err := m.bindMessage(ResponseMessageTypeName, &resp); err != nil {
		return nil, err
	}
	return resp, nil
}

func (m *IncomingMessage) bindMessage(wantType string, ptr any) error {
	if m.Message == nil {
		return nil
	}
	doc, ok := m.Message.(Doc)
	if !ok {
		return fmt.Errorf("%w: envelope carries %s, want a %s document", ErrMalformedMessage, bsonKindName(m.Message), wantType)
	}
	if t := doc.TypeName(); t != "" && t != wantType {
		return fmt.Errorf("%w: envelope carries $type %q, want %q", ErrMalformedMessage, t, wantType)
	}
	if err := UnmarshalValue(doc, ptr); err != nil {
		return fmt.Errorf("%w: %w", ErrMalformedMessage, atPath(envelopeKey, err))
	}
	return nil
}
