package halibut

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"fmt"
	"io"
	"reflect"
	"strings"
	"testing"
	"time"
)

// Conformance with reference/halibut-protocol.md §10 (and the byte facts of §4-§5).

const repeatingPhrase = "Repeating phrase that compresses. Repeating phrase that compresses. Repeating phrase that compresses."

// §10.2: upstream asserts that the string message above serializes to 120 decompressed bytes
// (and 55 compressed bytes with .NET's zlib). Our BSON must be the same 120 bytes; the
// compressed size depends on the deflater, so for ours it is recorded, not asserted equal.
func TestVector10_2StringEnvelope(t *testing.T) {
	wantBSON := unhex(t, "78000000 02 4d65737361676500 66000000"+hex.EncodeToString([]byte(repeatingPhrase))+"00 00")
	body, streams, err := encodeEnvelope(repeatingPhrase, DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	if len(body) != 120 || !bytes.Equal(body, wantBSON) || len(streams) != 0 {
		t.Fatalf("BSON is %d bytes:\n% x\nwant 120:\n% x", len(body), body, wantBSON)
	}
	checkGolden(t, "string-envelope.bson", body)

	// The 55-byte raw deflate of the spec (zlib levels 1/6/9) reads back to that document.
	zlib55 := unhex(t, "ab60606060f24d2d2e4e4c4f6548037282520b52134b32f3d2150a328a128b53154a32124b1492f3730b8a80aa528bf514a8a082810100")
	if len(zlib55) != 55 {
		t.Fatalf("spec vector is %d bytes", len(zlib55))
	}
	in, err := ReadMessage(bytes.NewReader(zlib55), DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	if in.Message != repeatingPhrase {
		t.Fatalf("message = %q", in.Message)
	}
	if got := mustBSON(t, in.Envelope); !bytes.Equal(got, wantBSON) {
		t.Fatal("re-encoding the decoded vector changed the BSON")
	}

	// A body this small is sent in one stored block (storedBodyMax): 5 bytes of block header,
	// then the BSON as is.
	wire := writeMessage(t, repeatingPhrase)
	if len(wire) != 5+len(wantBSON) || wire[0] != 0x01 || !bytes.Equal(wire[5:], wantBSON) {
		t.Errorf("the §10.2 message is %d bytes on the wire, want one stored block of the %d-byte BSON: % x", len(wire), len(wantBSON), wire)
	}
	in, err = ReadMessage(bytes.NewReader(wire), DefaultLimits())
	if err != nil || in.Message != repeatingPhrase {
		t.Fatalf("our own bytes: %v %v", in, err)
	}
	// A larger body is compressed, and still ends with its last byte.
	long := strings.Repeat(repeatingPhrase, 2*storedBodyMax/len(repeatingPhrase))
	wire = writeMessage(t, long)
	t.Logf("a %d-character message compresses to %d bytes", len(long), len(wire))
	if len(wire) > len(long)/10 {
		t.Errorf("compressed size %d for %d repetitive bytes: compression is not working", len(wire), len(long))
	}
	if in, err = ReadMessage(bytes.NewReader(wire), DefaultLimits()); err != nil || in.Message != long {
		t.Fatalf("our own compressed bytes: %v", err)
	}
}

// §10.5: the null request envelope is 14 bytes, and the zlib vector reads back to it.
func TestVector10_5NullRequest(t *testing.T) {
	want := unhex(t, "0e000000 0a 4d65737361676500 00")
	body, _, err := encodeEnvelope(nil, DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(body, want) {
		t.Fatalf("null request BSON = % x, want % x", body, want)
	}
	checkGolden(t, "null-request.bson", body)
	in, err := ReadMessage(bytes.NewReader(unhex(t, "e3636060e0f24d2d2e4e4c4f65600000")), DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	if !in.IsNull() {
		t.Fatalf("message = %#v, want null", in.Message)
	}
}

// §10.1: a .NET-produced response may carry fields we do not know and explicit nulls; both
// are accepted. (The upstream vector itself is not in the spec; this is its described shape.)
func TestVector10_1UnknownFieldsAndNulls(t *testing.T) {
	body := mustBSON(t, Doc{{"Message", Doc{
		{"$type", ResponseMessageTypeName},
		{"id", "abc"},
		{"error", Doc{{"message", "failed"}, {"details", nil}, {"HalibutErrorType", nil}, {"ConnectionState", int32(2)}, {"SomethingNew", Doc{{"x", int64(1)}}}}},
		{"result", nil},
		{"extra", "ignored"},
	}}, {"AlsoIgnored", true}})
	in, err := ReadMessage(bytes.NewReader(deflateRaw(t, body)), DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	resp, err := in.Response()
	if err != nil {
		t.Fatal(err)
	}
	if resp.ID != "abc" || resp.Error == nil || resp.Error.Message != "failed" || resp.Error.Details != nil || resp.Result != nil {
		t.Fatalf("response = %+v / %+v", resp, resp.Error)
	}
}

// §10.3: JSON shapes of legacy DTOs pinned by upstream (CanSerializeAndDeserializeJsonWithLegacyNameSpace).
// The BSON carries the same shape; our view spells .NET longs as {"$numberLong": …}.
type legacyTicket struct {
	TaskID string `halibut:"TaskId"`
}

type legacyCancelScriptCommand struct {
	Ticket          legacyTicket
	LastLogSequence int64
}

func (legacyCancelScriptCommand) WireTypeName() string {
	return "Octopus.Shared.Contracts.CancelScriptCommand, Octopus.Shared"
}

type legacyStartScriptCommand struct {
	ScriptBody                  string
	Isolation                   int32
	Scripts                     map[string]string `halibut:",nonnull"`
	Files                       []scriptFile      `halibut:",nonnull"`
	Arguments                   []string          `halibut:",nonnull"`
	TaskID                      *string           `halibut:"TaskId"`
	ScriptIsolationMutexTimeout time.Duration
	IsolationMutexName          *string
}

func (legacyStartScriptCommand) WireTypeName() string {
	return "Octopus.Shared.Contracts.StartScriptCommand, Octopus.Shared"
}

func TestVector10_3LegacyShapes(t *testing.T) {
	tests := []struct {
		value any
		want  string
	}{
		{legacyCancelScriptCommand{Ticket: legacyTicket{TaskID: "F12"}, LastLogSequence: 12},
			`{"$type":"Octopus.Shared.Contracts.CancelScriptCommand, Octopus.Shared","Ticket":{"TaskId":"F12"},"LastLogSequence":{"$numberLong":"12"}}`},
		{legacyStartScriptCommand{ScriptBody: "echo", Isolation: 1, Scripts: map[string]string{"Bash": "bob"}, Arguments: []string{"a", "b"}, ScriptIsolationMutexTimeout: time.Minute},
			`{"$type":"Octopus.Shared.Contracts.StartScriptCommand, Octopus.Shared","ScriptBody":"echo","Isolation":1,"Scripts":{"Bash":"bob"},"Files":[],"Arguments":["a","b"],"TaskId":null,"ScriptIsolationMutexTimeout":"00:01:00","IsolationMutexName":null}`},
	}
	for _, tt := range tests {
		// Put the DTO in an object slot (a params element), as a request does.
		body, _, err := encodeEnvelope(&RequestMessage{Params: []any{tt.value}}, DefaultLimits())
		if err != nil {
			t.Fatal(err)
		}
		doc, err := ParseDoc(body, DefaultLimits())
		if err != nil {
			t.Fatal(err)
		}
		params, _ := doc[0].Value.(Doc).Get("params")
		js, err := params.([]any)[0].(Doc).MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.NewReplacer(": ", ":", ", \"", ",\"").Replace(string(js)); got != tt.want {
			t.Errorf("\n got %s\nwant %s", got, tt.want)
		}
	}
}

// A fixture of the wire bytes, for other packages' tests (and the diag CLI). Compressed bytes
// depend on Go's deflater, so the test compares what they decode to with the JSON golden.
func TestWireFixtureDecodesToGolden(t *testing.T) {
	if *update {
		checkGolden(t, "start-script-v2-request.bin", writeMessage(t, typicalStartScriptRequest(t, []byte(`{"Octopus.Action.Name":"Hello"}`))))
	}
	// -deflated.bin is the same message compressed (as writers before storedBodyMax, and
	// .NET's, send it): both must read back to the same JSON.
	for _, name := range []string{"start-script-v2-request.bin", "start-script-v2-request-deflated.bin"} {
		var view bytes.Buffer
		if err := MessageToJSON(&view, bufio.NewReader(bytes.NewReader(readGolden(t, name))), DefaultLimits()); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !bytes.Equal(view.Bytes(), readGolden(t, "start-script-v2-request.json")) {
			t.Fatalf("%s does not decode to start-script-v2-request.json:\n%s", name, view.Bytes())
		}
	}
}

// §4.2 value encodings, element by element (type byte + payload).
func TestDialectElementEncodings(t *testing.T) {
	g := mustGuid(t, "9a4b47b7-7463-4740-842e-eb1da0ade39b")
	type enum int32
	tests := []struct {
		name string
		v    any
		want string // element bytes after the key "v"
	}{
		{"string", "hi", "02 7600 03000000 686900"},
		{"int32 / .NET int", int32(7), "10 7600 07000000"},
		{"enum as int32", enum(1), "10 7600 01000000"},
		{"int64 / .NET long", int64(7), "12 7600 0700000000000000"},
		{"bool", true, "08 7600 01"},
		{"double", 2.0, "01 7600 0000000000000040"},
		{"Guid subtype 4, .NET order", g, "05 7600 10000000 04 b7474b9a63744047842eeb1da0ade39b"},
		{"DateTime as UTC ms", time.UnixMilli(1000).In(time.FixedZone("x", 3600)), "09 7600 e803000000000000"},
		{"TimeSpan as c text", 5 * time.Second, "02 7600 09000000 30303a30303a303500"},
		{"byte[] subtype 0", []byte{1, 2}, "05 7600 02000000 00 0102"},
		{"null", (*string)(nil), "0a 7600"},
		{"list", []string{"a"}, "04 7600 0e000000 02 3000 02000000 6100 00"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// A struct whose field V has the value's own type: a typed property, no $type.
			typ := reflect.StructOf([]reflect.StructField{{Name: "V", Type: reflect.TypeOf(tt.v)}})
			holder := reflect.New(typ).Elem()
			holder.Field(0).Set(reflect.ValueOf(tt.v))
			b, err := Marshal(holder.Interface())
			if err != nil {
				t.Fatal(err)
			}
			// Skip length (4) and strip the outer terminator; the key is "V" (0x56).
			got := hex.EncodeToString(b[4 : len(b)-1])
			want := strings.ReplaceAll(strings.Replace(tt.want, "7600", "5600", 1), " ", "")
			if got != want {
				t.Fatalf("got  %s\nwant %s", got, want)
			}
		})
	}
}

func ExampleWriteMessage() {
	var conn bytes.Buffer // a TLS connection in real use
	req := &RequestMessage{
		ID:         "ICapabilitiesServiceV2::GetCapabilitiesAsync[1] / 00000000-0000-0000-0000-000000000001",
		ActivityID: Guid{15: 1},
		Endpoint:   NewServiceEndPoint("https://tentacle:10933/", "ABCDEF", DefaultLimits()),
		Service:    "ICapabilitiesServiceV2",
		Method:     "GetCapabilities",
		Params:     []any{},
	}
	if err := WriteMessage(&conn, req, DefaultLimits()); err != nil {
		panic(err)
	}
	in, err := ReadMessage(bufio.NewReader(&conn), DefaultLimits())
	if err != nil {
		panic(err)
	}
	got, _ := in.Request()
	fmt.Println(got.Service, got.Method, len(got.Params))
	// Output: ICapabilitiesServiceV2 GetCapabilities 0
}

func ExampleIncomingMessage_ReceiveStreams() {
	var conn bytes.Buffer
	_ = WriteMessage(&conn, &ResponseMessage{ID: "dl", Result: DataStreamFromBytes([]byte("file contents"))}, DefaultLimits())

	in, _ := ReadMessage(bufio.NewReader(&conn), DefaultLimits())
	_ = in.ReceiveStreams(func(ds DataStream, payload io.Reader) error {
		b, err := io.ReadAll(payload) // a real receiver spools to a temporary file
		fmt.Printf("%d bytes: %s\n", ds.Length, b)
		return err
	})
	// Output: 13 bytes: file contents
}
