package halibut

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

// The example of §5.2 (from Halibut's docs): a 59-byte stream with id
// 9a4b47b7-7463-4740-842e-eb1da0ade39b follows the envelope as
// <16-byte id><59 as int64 LE><59 bytes><59 as int64 LE>.
func TestStreamRecordBytes(t *testing.T) {
	payload := []byte(strings.Repeat("x", 59))
	ds := &DataStream{ID: mustGuid(t, "9a4b47b7-7463-4740-842e-eb1da0ade39b"), Length: 59, Body: bytes.NewReader(payload)}
	wire := writeMessage(t, &RequestMessage{ID: "IFileTransferService::UploadFile[1]", Service: "IFileTransferService", Method: "UploadFile", Params: []any{"Files\\pkg.nupkg", ds}})

	envelope, err := readEnvelopeBSON(asByteReader(bytes.NewReader(wire)), DefaultLimits(), nil)
	if err != nil {
		t.Fatal(err)
	}
	// Find where the compressed envelope ends by reading it from a counting reader.
	r := bufio.NewReader(bytes.NewReader(wire))
	in, err := ReadMessage(r, DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	record, _ := io.ReadAll(r)
	want := unhex(t, `b7474b9a63744047842eeb1da0ade39b 3b00000000000000`)
	want = append(want, payload...)
	want = append(want, unhex(t, "3b00000000000000")...)
	if !bytes.Equal(record, want) {
		t.Fatalf("record after the envelope\n got % x\nwant % x", record, want)
	}
	// In the envelope the stream is {"$type": "Halibut.DataStream, Halibut", id, length}.
	doc, _ := ParseDoc(envelope, DefaultLimits())
	params, _ := doc[0].Value.(Doc).Get("params")
	wantParam := Doc{{"$type", DataStreamTypeName}, {"id", ds.ID}, {"length", int64(59)}}
	if got := params.([]any)[1].(Doc); keys(got) != keys(wantParam) || got[1].Value != ds.ID || got[2].Value != int64(59) {
		t.Fatalf("DataStream document = %#v", got)
	}
	if len(in.Streams) != 1 {
		t.Fatalf("announced = %+v", in.Streams)
	}
}

// Several streams, typed and untyped positions, consumed partially, fully, or not at all.
func TestMultipleStreams(t *testing.T) {
	bodies := []string{"first", "", strings.Repeat("third ", 50000)}
	var streams []*DataStream
	for _, b := range bodies {
		streams = append(streams, DataStreamFromBytes([]byte(b)))
	}
	cmd := startScriptCommandV2{Files: []scriptFile{{Name: "a", Contents: streams[0]}, {Name: "b", Contents: streams[1]}, {Name: "nil"}}}
	wire := writeMessage(t, &RequestMessage{Params: []any{cmd, streams[2]}})

	for _, reader := range []func() io.Reader{
		func() io.Reader { return bufio.NewReader(bytes.NewReader(wire)) },
		func() io.Reader { return iotest.HalfReader(bytes.NewReader(wire)) },
	} {
		in, err := ReadMessage(reader(), DefaultLimits())
		if err != nil {
			t.Fatal(err)
		}
		if len(in.Streams) != 3 {
			t.Fatalf("announced %d streams, want 3 (typed properties carry no $type)", len(in.Streams))
		}
		for i, ds := range in.Streams {
			if ds.ID != streams[i].ID || ds.Length != int64(len(bodies[i])) {
				t.Fatalf("stream %d = %+v", i, ds)
			}
		}
		// Read 2 bytes of the first, nothing of the second, all of the third.
		ds, r, err := in.NextStream()
		if err != nil || ds.ID != streams[0].ID {
			t.Fatal(ds, err)
		}
		two := make([]byte, 2)
		io.ReadFull(r, two)
		if string(two) != "fi" {
			t.Fatalf("first bytes = %q", two)
		}
		if _, _, err := in.NextStream(); err != nil {
			t.Fatal(err)
		}
		_, r, err = in.NextStream()
		if err != nil {
			t.Fatal(err)
		}
		all, err := io.ReadAll(r)
		if err != nil || string(all) != bodies[2] {
			t.Fatalf("third payload: %d bytes, %v", len(all), err)
		}
		if _, _, err := in.NextStream(); err != io.EOF {
			t.Fatalf("after the last stream: %v, want io.EOF", err)
		}
	}
}

// corruptRecord writes a one-stream message and lets edit damage the record bytes.
func corruptRecord(t *testing.T, edit func(record []byte) []byte) error {
	t.Helper()
	ds := DataStreamFromBytes([]byte("payload"))
	wire := writeMessage(t, &ResponseMessage{Result: ds})
	recordLen := 16 + 8 + 7 + 8
	envelope, record := wire[:len(wire)-recordLen], append([]byte{}, wire[len(wire)-recordLen:]...)
	conn := append(append([]byte{}, envelope...), edit(record)...)
	in, err := ReadMessage(bufio.NewReader(bytes.NewReader(conn)), DefaultLimits())
	if err != nil {
		return err
	}
	return in.ReceiveStreams(func(ds DataStream, r io.Reader) error {
		_, err := io.Copy(io.Discard, r)
		return err
	})
}

func TestStreamRecordErrors(t *testing.T) {
	tests := []struct {
		name string
		edit func([]byte) []byte
		want string
	}{
		{"unannounced id", func(b []byte) []byte { b[0] ^= 0xff; return b }, "did not announce"},
		{"header length differs", func(b []byte) []byte { b[16] = 6; return b }, "header says 6 bytes but the message announced 7"},
		{"trailer differs", func(b []byte) []byte { b[len(b)-8] = 8; return b }, "trailer says 8 bytes, header said 7"},
		{"payload cut", func(b []byte) []byte { return b[:24+3] }, "ended after 3 of 7 bytes"},
		{"trailer cut", func(b []byte) []byte { return b[:len(b)-2] }, "reading the length trailer"},
		{"header cut", func(b []byte) []byte { return b[:10] }, "reading a record header"},
		{"no record", func(b []byte) []byte { return nil }, "reading a record header"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := corruptRecord(t, tt.edit)
			if !errors.Is(err, ErrDataStream) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error = %v, want ErrDataStream containing %q", err, tt.want)
			}
		})
	}
}

// Once framing broke, every later call reports it instead of reading garbage.
func TestStreamErrorIsSticky(t *testing.T) {
	ds := DataStreamFromBytes([]byte("abc"))
	wire := writeMessage(t, &ResponseMessage{Result: ds})
	in, err := ReadMessage(bytes.NewReader(wire[:len(wire)-5]), DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	_, r, err := in.NextStream()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadAll(r); err == nil {
		t.Fatal("reading a cut payload succeeded")
	}
	_, _, err1 := in.NextStream()
	_, _, err2 := in.NextStream()
	if err1 == nil || err1 != err2 {
		t.Fatalf("errors after a broken record: %v, %v", err1, err2)
	}
}

func TestAnnouncedStreamLimits(t *testing.T) {
	lim := DefaultLimits()
	lim.MaxDataStreamLength = 10
	lim.MaxDataStreamsPerMessage = 2
	mk := func(n int, length int64) []byte {
		var params []any
		for range n {
			params = append(params, Doc{{"$type", DataStreamTypeName}, {"id", NewGuid()}, {"length", length}})
		}
		return deflateRaw(t, mustBSON(t, Doc{{"Message", Doc{{"params", params}}}}))
	}
	tests := []struct {
		name string
		wire []byte
		want string
	}{
		{"too long", mk(1, 11), "outside 0..MaxDataStreamLength"},
		{"negative", mk(1, -1), "outside 0..MaxDataStreamLength"},
		{"too many", mk(3, 1), "more than MaxDataStreamsPerMessage"},
		{"twice", deflateRaw(t, mustBSON(t, Doc{{"Message", []any{
			Doc{{"id", Guid{1}}, {"length", int64(1)}}, Doc{{"id", Guid{1}}, {"length", int64(1)}}}}})), "announced twice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ReadMessage(bytes.NewReader(tt.wire), lim)
			if !errors.Is(err, ErrDataStream) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error = %v, want %q", err, tt.want)
			}
		})
	}
	// Documents that merely look similar are not streams.
	for _, d := range []Doc{
		{{"id", "text"}, {"length", int64(1)}},
		{{"id", NewGuid()}, {"length", int32(1)}},
		{{"id", NewGuid()}, {"length", int64(1)}, {"more", nil}},
		{{"$type", "Other, X"}, {"id", NewGuid()}, {"length", int64(1)}},
	} {
		in, err := ReadMessage(bytes.NewReader(deflateRaw(t, mustBSON(t, Doc{{"Message", d}}))), DefaultLimits())
		if err != nil || len(in.Streams) != 0 {
			t.Errorf("%v: streams %v, err %v; want none", d, in.Streams, err)
		}
	}
}

func TestSendingBodyOfWrongLength(t *testing.T) {
	tests := []struct {
		name string
		ds   *DataStream
		want string
	}{
		{"short", &DataStream{ID: NewGuid(), Length: 5, Body: strings.NewReader("abc")}, "ended after 3"},
		{"long", &DataStream{ID: NewGuid(), Length: 2, Body: strings.NewReader("abc")}, "has more"},
		{"over limit", &DataStream{ID: NewGuid(), Length: DefaultLimits().MaxDataStreamLength + 1, Body: strings.NewReader("")}, "MaxDataStreamLength"},
		{"negative", &DataStream{ID: NewGuid(), Length: -1, Body: strings.NewReader("")}, "negative length"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			err := WriteMessage(&buf, &ResponseMessage{Result: tt.ds}, DefaultLimits())
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("WriteMessage = %v, want %q", err, tt.want)
			}
		})
	}
}

// A large stream goes through without the package buffering it: the body is produced on the
// fly and the receiver counts bytes.
func TestLargeStreamIsStreamed(t *testing.T) {
	const size = 64 << 20
	pr, pw := io.Pipe()
	go func() {
		ds := NewDataStream(size, io.LimitReader(zeroReader{}, size))
		pw.CloseWithError(WriteMessage(pw, &ResponseMessage{ID: "dl", Result: ds}, DefaultLimits()))
	}()
	in, err := ReadMessage(bufio.NewReader(pr), DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	var got int64
	err = in.ReceiveStreams(func(ds DataStream, r io.Reader) error {
		n, err := io.Copy(io.Discard, r)
		got = n
		return err
	})
	if err != nil || got != size {
		t.Fatalf("received %d bytes, %v", got, err)
	}
}

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

func TestSinkErrorStops(t *testing.T) {
	in, _ := ReadMessage(bytes.NewReader(writeMessage(t, &ResponseMessage{Result: DataStreamFromBytes([]byte("x"))})), DefaultLimits())
	boom := errors.New("disk full")
	if err := in.ReceiveStreams(func(DataStream, io.Reader) error { return boom }); !errors.Is(err, boom) {
		t.Fatalf("ReceiveStreams = %v", err)
	}
	in, _ = ReadMessage(bytes.NewReader(writeMessage(t, &ResponseMessage{Result: DataStreamFromBytes([]byte("x"))})), DefaultLimits())
	if err := in.ReceiveStreams(nil); err != nil {
		t.Fatalf("discarding: %v", err)
	}
}
