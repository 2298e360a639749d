package halibut

import (
	"bufio"
	"bytes"
	"compress/flate"
	"encoding/binary"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"
)

func writeMessage(t testing.TB, message any) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := WriteMessage(&buf, message, DefaultLimits()); err != nil {
		t.Fatalf("WriteMessage: %v", err)
	}
	return buf.Bytes()
}

// deflateRaw compresses b the plain way (Go's Close, final empty block), as a foreign
// writer might.
func deflateRaw(t testing.TB, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	fw, _ := flate.NewWriter(&buf, flate.BestSpeed)
	fw.Write(b)
	fw.Close()
	return buf.Bytes()
}

func TestRequestRoundTrip(t *testing.T) {
	req := typicalStartScriptRequest(t, []byte(`{"Octopus.Action.Name":"Hello"}`))
	wire := writeMessage(t, req)

	in, err := ReadMessage(bufio.NewReader(bytes.NewReader(wire)), DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	if len(in.Streams) != 1 || in.Streams[0].ID != mustGuid(t, "9a4b47b7-7463-4740-842e-eb1da0ade39b") || in.Streams[0].Length != 31 {
		t.Fatalf("announced streams = %+v", in.Streams)
	}
	got, err := in.Request()
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != req.ID || got.ActivityID != req.ActivityID || got.Service != "IScriptServiceV2" || got.Method != "StartScript" {
		t.Fatalf("request header fields = %+v", got)
	}
	if !reflect.DeepEqual(got.Endpoint, req.Endpoint) {
		t.Fatalf("endpoint = %+v, want %+v", got.Endpoint, req.Endpoint)
	}
	param, ok := got.Params[0].(Doc)
	if !ok || param.TypeName() != (startScriptCommandV2{}).WireTypeName() {
		t.Fatalf("params[0] = %#v", got.Params[0])
	}
	var cmd startScriptCommandV2
	if err := UnmarshalValue(param, &cmd); err != nil {
		t.Fatal(err)
	}
	if cmd.ScriptBody != req.Params[0].(startScriptCommandV2).ScriptBody || cmd.Files[0].Contents.Length != 31 {
		t.Fatalf("bound command = %+v", cmd)
	}
	var payloads []string
	err = in.ReceiveStreams(func(ds DataStream, r io.Reader) error {
		b, err := io.ReadAll(r)
		payloads = append(payloads, ds.ID.String()+"="+string(b))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"9a4b47b7-7463-4740-842e-eb1da0ade39b=" + `{"Octopus.Action.Name":"Hello"}`}; !reflect.DeepEqual(payloads, want) {
		t.Fatalf("payloads = %q", payloads)
	}
}

func TestResponseRoundTrip(t *testing.T) {
	details := "System.Reflection.TargetInvocationException: Exception has been thrown by the target of an invocation."
	errType := "Halibut.Exceptions.ServiceNotFoundHalibutClientException"
	tests := []struct {
		name string
		resp *ResponseMessage
	}{
		{"result", typicalStatusResponse(3)},
		{"void", &ResponseMessage{ID: "x"}},
		{"primitive result", &ResponseMessage{ID: "x", Result: "text"}},
		{"error", &ResponseMessage{ID: "x", Error: &ServerError{Message: "Service not found: IFoo", Details: &details, HalibutErrorType: &errType}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in, err := ReadMessage(bytes.NewReader(writeMessage(t, tt.resp)), DefaultLimits())
			if err != nil {
				t.Fatal(err)
			}
			got, err := in.Response()
			if err != nil {
				t.Fatal(err)
			}
			if got.ID != tt.resp.ID || !reflect.DeepEqual(got.Error, tt.resp.Error) {
				t.Fatalf("got %+v, want %+v", got, tt.resp)
			}
			switch want := tt.resp.Result.(type) {
			case nil:
				if got.Result != nil {
					t.Fatalf("result = %#v, want null", got.Result)
				}
			case string:
				if got.Result != want {
					t.Fatalf("result = %#v", got.Result)
				}
			case scriptStatusResponseV2:
				var status scriptStatusResponseV2
				if got.Result.(Doc).TypeName() != want.WireTypeName() {
					t.Fatalf("result $type = %q", got.Result.(Doc).TypeName())
				}
				if err := UnmarshalValue(got.Result, &status); err != nil || !reflect.DeepEqual(status, want) {
					t.Fatalf("status = %+v, %v; want %+v", status, err, want)
				}
			}
		})
	}
}

// The envelope of an error response, element by element, as .NET writes it (§4.6).
func TestErrorResponseShape(t *testing.T) {
	in, err := ReadMessage(bytes.NewReader(writeMessage(t, &ResponseMessage{ID: "r1", Error: &ServerError{Message: "boom"}})), DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	want := Doc{{"Message", Doc{
		{"$type", ResponseMessageTypeName},
		{"id", "r1"},
		{"error", Doc{{"message", "boom"}, {"details", nil}, {"HalibutErrorType", nil}}},
		{"result", nil},
	}}}
	if !reflect.DeepEqual(in.Envelope, want) {
		t.Fatalf("envelope = %#v", in.Envelope)
	}
}

func TestNullRequest(t *testing.T) {
	in, err := ReadMessage(bytes.NewReader(writeMessage(t, nil)), DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	req, err := in.Request()
	if !in.IsNull() || req != nil || err != nil {
		t.Fatalf("null request: IsNull=%v req=%v err=%v", in.IsNull(), req, err)
	}
	if _, _, err := in.NextStream(); err != io.EOF {
		t.Fatalf("NextStream on a message without streams = %v, want io.EOF", err)
	}
}

func TestMessageTypeMismatch(t *testing.T) {
	in, err := ReadMessage(bytes.NewReader(writeMessage(t, &ResponseMessage{ID: "x"})), DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := in.Request(); err == nil || !strings.Contains(err.Error(), `want "Halibut.Transport.Protocol.RequestMessage, Halibut"`) {
		t.Fatalf("Request() on a response = %v", err)
	}
	in, _ = ReadMessage(bytes.NewReader(writeMessage(t, "text")), DefaultLimits())
	if _, err := in.Response(); !errors.Is(err, ErrMalformedMessage) {
		t.Fatalf("Response() on a string = %v", err)
	}
	// Halibut ≥ 4.4 reads a typed envelope, so a missing $type is fine.
	body, _ := Doc{{"Message", Doc{{"id", "x"}, {"result", int32(1)}}}}.AppendBSON(nil)
	in, err = ReadMessage(bytes.NewReader(deflateRaw(t, body)), DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	if resp, err := in.Response(); err != nil || resp.ID != "x" || resp.Result != int32(1) {
		t.Fatalf("untyped response = %+v, %v", resp, err)
	}
}

// The reader must leave the connection positioned right after the message, whatever the
// writer's deflate framing, so control lines and the next message read correctly.
func TestReadMessageDoesNotReadAhead(t *testing.T) {
	body, _ := Doc{{"Message", nil}}.AppendBSON(nil)
	framings := map[string][]byte{
		"ours":             writeMessage(t, nil),
		"go flate Close":   deflateRaw(t, body),
		"zlib (spec 10.5)": unhex(t, "e3636060e0f24d2d2e4e4c4f65600000"),
	}
	for name, wire := range framings {
		t.Run(name, func(t *testing.T) {
			conn := append(append([]byte{}, wire...), "NEXT\r\n"...)
			for _, r := range []io.Reader{bufio.NewReader(bytes.NewReader(conn)), iotest.OneByteReader(bytes.NewReader(conn))} {
				if _, err := ReadMessage(r, DefaultLimits()); err != nil {
					t.Fatal(err)
				}
				rest, _ := io.ReadAll(r)
				if string(rest) != "NEXT\r\n" {
					t.Fatalf("after the message the reader holds %q, want NEXT\\r\\n", rest)
				}
			}
		})
	}
}

// Our deflate framing ends with the envelope's last byte, so an inflater that has produced
// the whole document has consumed the whole stream (see writeDeflated).
func TestDeflateEndsWithLastDocumentByte(t *testing.T) {
	for _, msg := range []any{nil, typicalStatusResponse(2000)} {
		wire := writeMessage(t, msg)
		budget := &compressedBudget{r: bytes.NewReader(wire), left: 1 << 30}
		fr := flate.NewReader(budget)
		var head [4]byte
		io.ReadFull(fr, head[:])
		n := int64(binary.LittleEndian.Uint32(head[:]))
		io.CopyN(io.Discard, fr, n-4)
		if budget.used != int64(len(wire)) {
			t.Fatalf("inflater consumed %d of %d bytes when the document was complete", budget.used, len(wire))
		}
	}
}

func TestReadMessageCleanEOF(t *testing.T) {
	if _, err := ReadMessage(bytes.NewReader(nil), DefaultLimits()); err != io.EOF {
		t.Fatalf("empty connection: %v, want io.EOF", err)
	}
}

func TestReadMessageRefusesBadInput(t *testing.T) {
	lim := DefaultLimits()
	lim.MaxMessageBytes = 1 << 20
	lim.MaxCompressedMessageBytes = 1 << 16

	valid := writeMessage(t, typicalStatusResponse(5))
	bigDoc := func(size int) []byte { // {"Message": "<size-ish bytes>"}
		d, _ := Doc{{"Message", strings.Repeat("a", size)}}.AppendBSON(nil)
		return d
	}
	// A deflate bomb: a few KiB that inflate to a 100 MiB document of zeros, with its length
	// header declaring the full size.
	bomb := func() []byte {
		var buf bytes.Buffer
		fw, _ := flate.NewWriter(&buf, flate.BestCompression)
		head := binary.LittleEndian.AppendUint32(nil, 100<<20)
		fw.Write(head)
		zeros := make([]byte, 1<<20)
		for range 100 {
			fw.Write(zeros)
		}
		fw.Close()
		return buf.Bytes()
	}()
	// Endless empty stored blocks: input that never produces output.
	emptyBlocks := bytes.Repeat([]byte{0x00, 0x00, 0x00, 0xff, 0xff}, 20000)
	// A document shorter than the deflate content.
	trailing := deflateRaw(t, append(bigDoc(10), 0xAA))

	tests := []struct {
		name string
		wire []byte
		want error
	}{
		{"truncated", valid[:len(valid)/2], ErrMalformedMessage},
		{"one byte", valid[:1], ErrMalformedMessage},
		{"corrupt deflate", []byte{0xff, 0xff, 0xff, 0xff}, ErrMalformedMessage},
		{"decompressed too large", deflateRaw(t, bigDoc(2<<20)), ErrMessageTooLarge},
		{"deflate bomb", bomb, ErrMessageTooLarge},
		{"empty blocks forever", emptyBlocks, ErrMessageTooLarge},
		{"data after the document", trailing, ErrMalformedMessage},
		{"declared size too small", deflateRaw(t, []byte{1, 0, 0, 0}), ErrMalformedMessage},
		{"not BSON", deflateRaw(t, []byte{9, 0, 0, 0, 0xee, 'a', 0, 0, 0}), ErrMalformedMessage},
		{"no Message", deflateRaw(t, mustBSON(t, Doc{{"Other", nil}})), ErrMalformedMessage},
		{"bad DataStream", deflateRaw(t, mustBSON(t, Doc{{"Message", Doc{{"$type", DataStreamTypeName}, {"id", "x"}, {"length", int64(1)}}}})), ErrDataStream},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ReadMessage(bufio.NewReader(bytes.NewReader(tt.wire)), lim)
			if !errors.Is(err, tt.want) {
				t.Fatalf("ReadMessage = %v, want %v", err, tt.want)
			}
		})
	}
}

func mustBSON(t testing.TB, d Doc) []byte {
	t.Helper()
	b, err := d.AppendBSON(nil)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestWriteMessageRefusesBeforeWriting(t *testing.T) {
	lim := DefaultLimits()
	lim.MaxMessageBytes = 100
	tests := []struct {
		name string
		msg  any
		lim  Limits
		want string
	}{
		{"too large", &RequestMessage{ID: strings.Repeat("x", 200)}, lim, "MaxMessageBytes"},
		{"stream without body", &ResponseMessage{Result: &DataStream{ID: NewGuid(), Length: 1}}, DefaultLimits(), "no Body"},
		{"untyped struct", untypedThing{}, DefaultLimits(), "needs a .NET type name"},
		{"duplicate stream", &RequestMessage{Params: func() []any { ds := DataStreamFromBytes(nil); return []any{ds, ds} }()}, DefaultLimits(), "appears twice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			err := WriteMessage(&buf, tt.msg, tt.lim)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("WriteMessage = %v, want an error containing %q", err, tt.want)
			}
			if buf.Len() != 0 {
				t.Fatalf("%d bytes were written before the error", buf.Len())
			}
		})
	}
}

func TestRequestParamsNeverNull(t *testing.T) {
	in, err := ReadMessage(bytes.NewReader(writeMessage(t, &RequestMessage{Service: "ICapabilitiesServiceV2", Method: "GetCapabilities"})), DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	params, _ := in.Message.(Doc).Get("params")
	if !reflect.DeepEqual(params, []any{}) {
		t.Fatalf("params = %#v, want [] (a .NET service dereferences it)", params)
	}
}

// A caller's bufio.Writer (a connection's) must be written through and never pooled, or a
// later message could go to this connection from another goroutine.
func TestWriteMessageKeepsCallersBufferedWriter(t *testing.T) {
	var conn, other bytes.Buffer
	bw := bufio.NewWriterSize(&conn, DefaultLimits().WriteBufferSize)
	for range 3 {
		if err := WriteMessage(bw, nil, DefaultLimits()); err != nil {
			t.Fatal(err)
		}
	}
	for range 10 {
		if got := getBufferedWriter(&other, DefaultLimits().WriteBufferSize); got == bw {
			t.Fatal("the caller's bufio.Writer went into the pool")
		}
	}
	if conn.Len() != 3*len(writeMessage(t, nil)) {
		t.Fatalf("connection got %d bytes", conn.Len())
	}
}
