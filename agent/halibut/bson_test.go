package halibut

import (
	"bytes"
	"encoding/binary"
	"errors"
	"strings"
	"testing"

	mongobson "go.mongodb.org/mongo-driver/v2/bson"
)

// A document with every element type of the dialect, and its bytes assembled by hand from
// the BSON spec and §4.2.
func TestDocEncodingIsByteExact(t *testing.T) {
	doc := Doc{
		{"$type", "T, A"},
		{"i", int32(-2)},
		{"l", int64(1) << 40},
		{"g", mustGuid(t, "9a4b47b7-7463-4740-842e-eb1da0ade39b")},
		{"n", nil},
		{"b", true},
		{"d", DateTime(1000)},
		{"f", 1.5},
		{"x", Binary{Subtype: 0, Data: []byte{0xAB}}},
		{"a", []any{"z"}},
		{"o", Doc{}},
	}
	want := unhex(t, `
		7e000000
		02 247479706500 05000000 542c204100
		10 6900 feffffff
		12 6c00 0000000000010000
		05 6700 10000000 04 b7474b9a63744047842eeb1da0ade39b
		0a 6e00
		08 6200 01
		09 6400 e803000000000000
		01 6600 000000000000f83f
		05 7800 01000000 00 ab
		04 6100 0e000000 02 3000 02000000 7a00 00
		03 6f00 05000000 00
		00`)
	got, err := doc.AppendBSON(nil)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("encoding\n got % x\nwant % x", got, want)
	}
	back, err := ParseDoc(got, DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	again, _ := back.AppendBSON(nil)
	if !bytes.Equal(again, want) {
		t.Fatalf("decode/encode changed the bytes\n got % x\nwant % x", again, want)
	}
}

// mongo-driver is an independent BSON implementation: what we write must be valid BSON to it,
// with the same order, types and values.
func TestMongoDriverReadsWhatWeWrite(t *testing.T) {
	var buf bytes.Buffer
	req := typicalStartScriptRequest(t, []byte("{}"))
	body, _, err := encodeEnvelope(req, DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	buf.Write(body)
	raw := mongobson.Raw(buf.Bytes())
	if err := raw.Validate(); err != nil {
		t.Fatalf("mongo-driver rejects our BSON: %v", err)
	}
	msg := raw.Lookup("Message").Document()
	elems, err := msg.Elements()
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, e := range elems {
		keys = append(keys, e.Key())
	}
	if got := strings.Join(keys, ","); got != "$type,id,activityId,endpoint,service,method,params" {
		t.Fatalf("RequestMessage keys in order: %s", got)
	}
	subtype, data := msg.Lookup("activityId").Binary()
	if subtype != 4 || !bytes.Equal(data, unhex(t, "ba284e1ba12fd211883f0016d3cca427")) {
		t.Fatalf("activityId = subtype %d % x", subtype, data)
	}
	param := msg.Lookup("params", "0").Document()
	if got := param.Lookup("$type").StringValue(); !strings.HasPrefix(got, "Octopus.Tentacle.Contracts.ScriptServiceV2.StartScriptCommandV2,") {
		t.Fatalf("param $type = %q", got)
	}
	if got := param.Lookup("ScriptIsolationMutexTimeout").StringValue(); got != "24.20:31:23.6470000" {
		t.Fatalf("TimeSpan = %q", got)
	}
	if got := param.Lookup("Isolation").Type; got != mongobson.TypeInt32 {
		t.Fatalf("Isolation type = %v, want int32", got)
	}
	contents := param.Lookup("Files", "0").Document()
	if _, err := contents.LookupErr("Contents", "$type"); err == nil {
		t.Fatal("a typed DataStream property must not carry $type")
	}
	if got := contents.Lookup("Contents", "length").Type; got != mongobson.TypeInt64 {
		t.Fatalf("DataStream length type = %v, want int64", got)
	}
	if got := msg.Lookup("endpoint", "RemoteThumbprint").StringValue(); got != "3D5C8B2E9F1A7C6D4B3E2F1A0B9C8D7E6F5A4B3C" {
		t.Fatalf("thumbprint = %q", got)
	}
	if got := msg.Lookup("endpoint", "Proxy").Type; got != mongobson.TypeNull {
		t.Fatalf("Proxy type = %v, want an explicit null", got)
	}
}

func TestParseDocRejectsMalformedInput(t *testing.T) {
	valid, _ := Doc{{"a", "b"}}.AppendBSON(nil)
	withLen := func(b []byte) []byte { // fix the outer length after editing
		binary.LittleEndian.PutUint32(b, uint32(len(b)))
		return b
	}
	tests := []struct {
		name string
		in   []byte
	}{
		{"empty", nil},
		{"shorter than a document", []byte{5, 0, 0}},
		{"length larger than input", unhex(t, "0600000000")},
		{"length smaller than input", unhex(t, "050000000000")},
		{"negative length", unhex(t, "ffffffff00")},
		{"missing terminator", unhex(t, "0500000001")},
		{"key without NUL", withLen(unhex(t, "00000000 0a 6161 00"))},
		{"unknown element type", withLen(unhex(t, "00000000 07 6100 000000000000000000000000 00"))},
		{"string length zero", withLen(unhex(t, "00000000 02 6100 00000000 00"))},
		{"string length past end", withLen(unhex(t, "00000000 02 6100 ff000000 6200 00"))},
		{"string without NUL", withLen(unhex(t, "00000000 02 6100 02000000 6262 00"))},
		{"negative string length", withLen(unhex(t, "00000000 02 6100 ffffffff 00"))},
		{"truncated int32", withLen(unhex(t, "00000000 10 6100 0102 00"))},
		{"truncated int64", withLen(unhex(t, "00000000 12 6100 01020304 00"))},
		{"truncated double", withLen(unhex(t, "00000000 01 6100 0102 00"))},
		{"truncated datetime", withLen(unhex(t, "00000000 09 6100 01 00"))},
		{"bad boolean", withLen(unhex(t, "00000000 08 6100 02 00"))},
		{"binary length past end", withLen(unhex(t, "00000000 05 6100 10000000 04 0102 00"))},
		{"negative binary length", withLen(unhex(t, "00000000 05 6100 ffffffff 00 00"))},
		{"embedded doc too long", withLen(unhex(t, "00000000 03 6100 ff000000 00 00"))},
		{"embedded doc too short", withLen(unhex(t, "00000000 03 6100 04000000 00 00"))},
		{"embedded doc unterminated", withLen(unhex(t, "00000000 03 6100 06000000 0a 00"))},
		{"array element garbage", withLen(unhex(t, "00000000 04 6100 08000000 ee 3000 00 00"))},
		{"trailing garbage inside", append(valid[:len(valid)-1:len(valid)-1], 0xff, 0)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc, err := ParseDoc(tt.in, DefaultLimits())
			if err == nil {
				t.Fatalf("ParseDoc(% x) = %v, want an error", tt.in, doc)
			}
			if !errors.Is(err, ErrMalformedBSON) {
				t.Fatalf("error %v does not wrap ErrMalformedBSON", err)
			}
		})
	}
}

func nestedDoc(depth int) Doc {
	d := Doc{}
	for range depth - 1 {
		d = Doc{{"x", d}}
	}
	return d
}

func TestParseDocNestingLimit(t *testing.T) {
	lim := DefaultLimits()
	lim.MaxNestingDepth = 10
	ok, _ := nestedDoc(10).AppendBSON(nil)
	if _, err := ParseDoc(ok, lim); err != nil {
		t.Fatalf("depth 10 with MaxNestingDepth 10: %v", err)
	}
	tooDeep, _ := nestedDoc(11).AppendBSON(nil)
	if _, err := ParseDoc(tooDeep, lim); err == nil || !strings.Contains(err.Error(), "nested deeper than 10") {
		t.Fatalf("depth 11 with MaxNestingDepth 10: %v", err)
	}
	// Arrays count too.
	arr, _ := Doc{{"a", []any{[]any{[]any{}}}}}.AppendBSON(nil)
	lim.MaxNestingDepth = 3
	if _, err := ParseDoc(arr, lim); err == nil {
		t.Fatal("arrays nested past the limit were accepted")
	}
}

func TestParseDocElementLimit(t *testing.T) {
	lim := DefaultLimits()
	lim.MaxMessageElements = 3
	three, _ := Doc{{"a", nil}, {"b", Doc{{"c", nil}}}}.AppendBSON(nil)
	if _, err := ParseDoc(three, lim); err != nil {
		t.Fatalf("3 elements: %v", err)
	}
	four, _ := Doc{{"a", nil}, {"b", []any{nil, nil}}}.AppendBSON(nil)
	if _, err := ParseDoc(four, lim); err == nil {
		t.Fatal("4 elements accepted with MaxMessageElements 3")
	}
}

// .NET cannot hold invalid UTF-8 in a string; its decoder substitutes U+FFFD, and so do we.
func TestInvalidUTF8BecomesReplacementCharacter(t *testing.T) {
	in := unhex(t, "00000000 02 61ff00 03000000 62ff00 00")
	binary.LittleEndian.PutUint32(in, uint32(len(in)))
	doc, err := ParseDoc(in, DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	if doc[0].Key != "a\uFFFD" || doc[0].Value != "b\uFFFD" {
		t.Fatalf("got %q = %q", doc[0].Key, doc[0].Value)
	}
	out, _ := Doc{{"k", "x\xffy"}}.AppendBSON(nil)
	back, _ := ParseDoc(out, DefaultLimits())
	if back[0].Value != "x\uFFFDy" {
		t.Fatalf("encoder wrote %q", back[0].Value)
	}
}

func TestEncoderRefusesNULInKey(t *testing.T) {
	if _, err := (Doc{{"a\x00b", nil}}).AppendBSON(nil); err == nil {
		t.Fatal("a key with NUL was encoded")
	}
}

func TestBinaryKinds(t *testing.T) {
	// Subtype 4 with 16 bytes is a Guid; other subtypes or sizes stay Binary (exact round trip).
	for _, b := range []Binary{{Subtype: 3, Data: make([]byte, 16)}, {Subtype: 4, Data: make([]byte, 15)}, {Subtype: 0, Data: []byte{}}, {Subtype: 0x80, Data: []byte{1, 2}}} {
		enc, err := Doc{{"b", b}}.AppendBSON(nil)
		if err != nil {
			t.Fatal(err)
		}
		doc, err := ParseDoc(enc, DefaultLimits())
		if err != nil {
			t.Fatal(err)
		}
		got, ok := doc[0].Value.(Binary)
		if !ok || got.Subtype != b.Subtype || !bytes.Equal(got.Data, b.Data) {
			t.Errorf("binary %v came back as %#v", b, doc[0].Value)
		}
	}
}

func TestDocLookupAndTypeName(t *testing.T) {
	d := Doc{{"$type", "X, Y"}, {"Message", int32(1)}, {"message", int32(2)}}
	if v, _ := d.Lookup("Message"); v != int32(1) {
		t.Errorf("exact match must win, got %v", v)
	}
	if v, ok := d.Lookup("MESSAGE"); !ok || v != int32(1) {
		t.Errorf("case-insensitive fallback, got %v %v", v, ok)
	}
	if d.TypeName() != "X, Y" {
		t.Errorf("TypeName = %q", d.TypeName())
	}
	if (Doc{{"a", nil}, {"$type", "X"}}).TypeName() != "" {
		t.Error("a $type that is not first must not count (Newtonsoft ignores it)")
	}
}

func TestDateTimeConversion(t *testing.T) {
	tests := []struct {
		dt   DateTime
		text string
	}{
		{0, "1970-01-01T00:00:00Z"},
		{1764000000123, "2025-11-24T16:00:00.123Z"},
		{-62135596800000, "0001-01-01T00:00:00Z"},
	}
	for _, tt := range tests {
		if got := tt.dt.Time().Format("2006-01-02T15:04:05.999Z07:00"); got != tt.text {
			t.Errorf("%d → %s, want %s", tt.dt, got, tt.text)
		}
		if back := NewDateTime(tt.dt.Time()); back != tt.dt {
			t.Errorf("NewDateTime round trip of %d = %d", tt.dt, back)
		}
	}
	// Sub-millisecond precision is truncated toward zero, as .NET's tick division does.
	before := DateTime(0).Time().Add(-1500 * 1000) // -1.5 ms
	if got := NewDateTime(before); got != -1 {
		t.Errorf("NewDateTime(-1.5ms) = %d, want -1", got)
	}
	if got := NewDateTime(DateTime(0).Time().Add(1500 * 1000)); got != 1 {
		t.Errorf("NewDateTime(+1.5ms) = %d, want 1", got)
	}
}
