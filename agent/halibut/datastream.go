package halibut

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// DataStream is Halibut's out-of-band payload (reference/halibut-protocol.md §5). In the BSON
// it is only {id, length}; the bytes follow the compressed envelope as a record:
//
//	16 bytes  id, .NET Guid byte order (the same bytes as the BSON binary)
//	 8 bytes  length, int64 little-endian
//	 n bytes  payload, raw
//	 8 bytes  length again (trailer)
//
// Payloads are never held in memory by this package: the sender's Body is copied to the
// connection and the receiver gets a reader over the connection.
type DataStream struct {
	ID     Guid  `halibut:"id"`
	Length int64 `halibut:"length"`
	// Body supplies the payload when sending: exactly Length bytes are read, then EOF is
	// expected. On a received message it is nil; the receiver attaches what it spooled.
	Body io.Reader `halibut:"-"`
}

// WireTypeName implements WireTyped.
func (DataStream) WireTypeName() string { return DataStreamTypeName }

// NewDataStream returns a stream with a fresh id that sends length bytes read from body.
func NewDataStream(length int64, body io.Reader) *DataStream {
	return &DataStream{ID: NewGuid(), Length: length, Body: body}
}

// DataStreamFromBytes returns a stream that sends b.
func DataStreamFromBytes(b []byte) *DataStream {
	return NewDataStream(int64(len(b)), bytes.NewReader(b))
}

// ErrDataStream wraps every data stream framing error. After one, the connection is out of
// step and must be closed.
var ErrDataStream = errors.New("data stream")

func streamErrorf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrDataStream, fmt.Sprintf(format, args...))
}

// checkStreamsToSend refuses, before anything is written, streams that cannot be delivered.
func checkStreamsToSend(streams []*DataStream, lim Limits) error {
	if len(streams) > lim.MaxDataStreamsPerMessage {
		return streamErrorf("message has %d data streams, more than MaxDataStreamsPerMessage (%d)", len(streams), lim.MaxDataStreamsPerMessage)
	}
	for _, ds := range streams {
		if ds.Body == nil {
			return streamErrorf("stream %s has no Body to send", ds.ID)
		}
		if ds.Length > lim.MaxDataStreamLength {
			return streamErrorf("stream %s is %d bytes, more than MaxDataStreamLength (%d)", ds.ID, ds.Length, lim.MaxDataStreamLength)
		}
	}
	return nil
}

// writeStreamRecords writes one record per stream, in the order given (the order the
// streams appear in the envelope, as .NET does). A Body shorter or longer than Length is an
// error before the trailer is written, so the peer sees a broken record rather than a
// silently truncated file; the connection must then be closed.
func writeStreamRecords(w *bufio.Writer, streams []*DataStream) error {
	for _, ds := range streams {
		var head [24]byte
		id := ds.ID.DotNetBytes()
		copy(head[:16], id[:])
		binary.LittleEndian.PutUint64(head[16:], uint64(ds.Length))
		if _, err := w.Write(head[:]); err != nil {
			return err
		}
		// bufio.Writer.ReadFrom copies through its own buffer, or hands the copy to the
		// connection when that can do better (sendfile/splice on a plain TCP socket).
		n, err := w.ReadFrom(io.LimitReader(ds.Body, ds.Length))
		if err != nil {
			return fmt.Errorf("sending data stream %s: %w", ds.ID, err)
		}
		if n < ds.Length {
			return streamErrorf("stream %s declared %d bytes but its Body ended after %d", ds.ID, ds.Length, n)
		}
		var extra [1]byte
		if m, _ := io.ReadFull(ds.Body, extra[:]); m > 0 {
			return streamErrorf("stream %s declared %d bytes but its Body has more", ds.ID, ds.Length)
		}
		binary.LittleEndian.PutUint64(head[16:], uint64(ds.Length))
		if _, err := w.Write(head[16:]); err != nil {
			return err
		}
	}
	return nil
}

// announcedStreams finds the DataStream documents of a decoded envelope, in document order,
// which is the order a .NET sender writes their records.
//
// A .NET receiver knows which properties are DataStreams from its classes; this layer has no
// classes, so it recognises them by shape (a choice, see the report): a document whose
// `$type` is Halibut.DataStream, or an untyped document with exactly the two elements
// `id` (16-byte subtype-4 binary) and `length` (int64), as DataStream typed properties such
// as ScriptFile.Contents are written. No Tentacle contract has another class of that shape.
func announcedStreams(v any, lim Limits) ([]DataStream, error) {
	var found []DataStream
	var walk func(v any) error
	walk = func(v any) error {
		switch x := v.(type) {
		case Doc:
			if ds, ok, err := dataStreamShape(x); err != nil {
				return err
			} else if ok {
				for _, seen := range found {
					if seen.ID == ds.ID {
						return streamErrorf("stream %s is announced twice in one message", ds.ID)
					}
				}
				if ds.Length < 0 || ds.Length > lim.MaxDataStreamLength {
					return streamErrorf("stream %s declares length %d, outside 0..MaxDataStreamLength (%d)", ds.ID, ds.Length, lim.MaxDataStreamLength)
				}
				if len(found) == lim.MaxDataStreamsPerMessage {
					return streamErrorf("message announces more than MaxDataStreamsPerMessage (%d) data streams", lim.MaxDataStreamsPerMessage)
				}
				found = append(found, ds)
				return nil
			}
			for _, e := range x {
				if err := walk(e.Value); err != nil {
					return err
				}
			}
		case []any:
			for _, item := range x {
				if err := walk(item); err != nil {
					return err
				}
			}
		}
		return nil
	}
	err := walk(v)
	return found, err
}

func dataStreamShape(d Doc) (DataStream, bool, error) {
	typed := d.TypeName() == DataStreamTypeName
	body := d
	if typed {
		body = d[1:]
	} else if len(d) != 2 {
		return DataStream{}, false, nil
	}
	var ds DataStream
	var haveID, haveLength bool
	for _, e := range body {
		switch e.Key {
		case "id":
			g, ok := e.Value.(Guid)
			if !ok {
				if typed {
					return ds, false, streamErrorf("a Halibut.DataStream has id of %s, want a Guid", bsonKindName(e.Value))
				}
				return ds, false, nil
			}
			ds.ID, haveID = g, true
		case "length":
			n, ok := e.Value.(int64)
			if !ok {
				if typed {
					return ds, false, streamErrorf("a Halibut.DataStream has length of %s, want an int64", bsonKindName(e.Value))
				}
				return ds, false, nil
			}
			ds.Length, haveLength = n, true
		}
	}
	if haveID && haveLength {
		return ds, true, nil
	}
	if typed {
		return ds, false, streamErrorf("a Halibut.DataStream lacks its id or length")
	}
	return ds, false, nil
}

// streamRecordReader reads the records that follow an envelope, from the same reader.
type streamRecordReader struct {
	r       io.Reader
	pending map[Guid]int64 // announced and not yet received: id → length
	current *payloadReader
	err     error // sticky: once framing broke, nothing more can be read
}

func newStreamRecordReader(r io.Reader, announced []DataStream) *streamRecordReader {
	pending := make(map[Guid]int64, len(announced))
	for _, ds := range announced {
		pending[ds.ID] = ds.Length
	}
	return &streamRecordReader{r: r, pending: pending}
}

// next finishes the current record (draining what its consumer left) and reads the next
// header. It returns io.EOF once every announced stream was received.
func (s *streamRecordReader) next() (DataStream, io.Reader, error) {
	if s.err != nil {
		return DataStream{}, nil, s.err
	}
	if s.current != nil {
		if err := s.current.finish(); err != nil {
			s.err = err
			return DataStream{}, nil, err
		}
		s.current = nil
	}
	if len(s.pending) == 0 {
		return DataStream{}, nil, io.EOF
	}
	var head [24]byte
	if _, err := io.ReadFull(s.r, head[:]); err != nil {
		s.err = streamErrorf("reading a record header (%d announced streams not received): %v", len(s.pending), noEOF(err))
		return DataStream{}, nil, s.err
	}
	id, _ := GuidFromDotNetBytes(head[:16])
	length := int64(binary.LittleEndian.Uint64(head[16:]))
	announced, ok := s.pending[id]
	if !ok {
		s.err = streamErrorf("received stream %s, which the message did not announce (or sent twice)", id)
		return DataStream{}, nil, s.err
	}
	// .NET writes the announced length in the header; anything else means corruption.
	if length != announced {
		s.err = streamErrorf("stream %s header says %d bytes but the message announced %d", id, length, announced)
		return DataStream{}, nil, s.err
	}
	delete(s.pending, id)
	s.current = &payloadReader{r: s.r, id: id, length: length, left: length}
	return DataStream{ID: id, Length: length}, s.current, nil
}

// payloadReader reads one payload and checks the trailer when it ends.
type payloadReader struct {
	r      io.Reader
	id     Guid
	length int64
	left   int64
	done   bool
	err    error
}

func (p *payloadReader) Read(b []byte) (int, error) {
	if p.done || p.err != nil {
		if p.err != nil {
			return 0, p.err
		}
		return 0, io.EOF
	}
	if p.left == 0 {
		if err := p.finish(); err != nil {
			return 0, err
		}
		return 0, io.EOF
	}
	if int64(len(b)) > p.left {
		b = b[:p.left]
	}
	n, err := p.r.Read(b)
	p.left -= int64(n)
	switch {
	case err == io.EOF && p.left > 0:
		p.err = streamErrorf("stream %s ended after %d of %d bytes", p.id, p.length-p.left, p.length)
		return n, p.err
	case err != nil && err != io.EOF:
		p.err = err
		return n, err
	}
	return n, nil
}

// finish drains what the consumer left of the payload and checks the trailer.
func (p *payloadReader) finish() error {
	if p.done {
		return p.err
	}
	p.done = true
	if p.err != nil {
		return p.err
	}
	if p.left > 0 {
		n, err := io.CopyN(io.Discard, p.r, p.left)
		p.left -= n
		if err == io.EOF {
			p.err = streamErrorf("stream %s ended after %d of %d bytes", p.id, p.length-p.left, p.length)
			return p.err
		}
		if err != nil {
			p.err = err
			return p.err
		}
	}
	var trailer [8]byte
	if _, err := io.ReadFull(p.r, trailer[:]); err != nil {
		p.err = streamErrorf("stream %s: reading the length trailer: %v", p.id, noEOF(err))
	} else if got := int64(binary.LittleEndian.Uint64(trailer[:])); got != p.length {
		p.err = streamErrorf("stream %s: trailer says %d bytes, header said %d; the sender did not deliver what it declared", p.id, got, p.length)
	}
	return p.err
}

// noEOF turns a bare EOF in the middle of a frame into ErrUnexpectedEOF.
func noEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}
