package halibut

import (
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
	"time"
)

type typedThing struct {
	Name  string
	Count int32
}

func (typedThing) WireTypeName() string { return "Acme.Thing, Acme" }

type untypedThing struct{ Name string }

type holder struct {
	Typed      typedThing // a concrete property: no $type
	Object     any        // .NET object: $type
	Pointer    *typedThing
	Skipped    string `halibut:"-"`
	Renamed    string `halibut:"renamed"`
	Nullable   *string
	List       []string
	NonNull    []string          `halibut:",nonnull"`
	Dict       map[string]string `halibut:",nonnull"`
	unexported string
}

// docOf marshals v and parses it back, to inspect the document shape.
func docOf(t *testing.T, v any) Doc {
	t.Helper()
	b, err := Marshal(v)
	if err != nil {
		t.Fatalf("Marshal: %v", err)
	}
	d, err := ParseDoc(b, DefaultLimits())
	if err != nil {
		t.Fatalf("ParseDoc: %v", err)
	}
	return d
}

func keys(d Doc) string {
	var k []string
	for _, e := range d {
		k = append(k, e.Key)
	}
	return strings.Join(k, ",")
}

func TestMarshalShape(t *testing.T) {
	d := docOf(t, holder{
		Typed:   typedThing{Name: "a", Count: 1},
		Object:  typedThing{Name: "b"},
		Renamed: "r",
		Skipped: "never",
	})
	if got := keys(d); got != "Typed,Object,Pointer,renamed,Nullable,List,NonNull,Dict" {
		t.Fatalf("keys in declaration order: %s", got)
	}
	typed, _ := d.Get("Typed")
	if keys(typed.(Doc)) != "Name,Count" {
		t.Errorf("typed property must not carry $type: %v", typed)
	}
	obj, _ := d.Get("Object")
	if obj.(Doc).TypeName() != "Acme.Thing, Acme" || keys(obj.(Doc)) != "$type,Name,Count" {
		t.Errorf("object slot must carry $type first: %v", obj)
	}
	for _, k := range []string{"Pointer", "Nullable", "List"} {
		if v, ok := d.Get(k); !ok || v != nil {
			t.Errorf("%s = %v, %v; want an explicit null", k, v, ok)
		}
	}
	if v, _ := d.Get("NonNull"); !reflect.DeepEqual(v, []any{}) {
		t.Errorf("nonnull nil slice = %#v, want []", v)
	}
	if v, _ := d.Get("Dict"); len(v.(Doc)) != 0 {
		t.Errorf("nonnull nil map = %#v, want {}", v)
	}
}

func TestMarshalScalarTypes(t *testing.T) {
	type enum int32
	type scalars struct {
		I8   int8
		I16  int16
		I32  int32
		E    enum
		U8   uint8
		U16  uint16
		I64  int64
		U32  uint32
		U64  uint64
		F32  float32
		F64  float64
		B    bool
		S    string
		G    Guid
		D    time.Duration
		T    time.Time
		DT   DateTime
		Raw  []byte
		Bin  Binary
		Arr  [2]string
		Dict map[string]int32
	}
	d := docOf(t, scalars{I8: -1, E: 2, U64: 7, F32: 0.5, D: time.Minute, T: fixedTime, Raw: []byte{1}, Dict: map[string]int32{"b": 2, "a": 1}})
	want := map[string]any{
		"I8": int32(-1), "I16": int32(0), "I32": int32(0), "E": int32(2), "U8": int32(0), "U16": int32(0),
		"I64": int64(0), "U32": int64(0), "U64": int64(7), "F32": 0.5, "F64": 0.0, "B": false, "S": "",
		"G": Guid{}, "D": "00:01:00", "T": NewDateTime(fixedTime), "DT": DateTime(0),
		"Raw": Binary{Subtype: 0, Data: []byte{1}}, "Bin": Binary{Subtype: 0, Data: []byte{}},
		"Arr": []any{"", ""},
	}
	for k, w := range want {
		got, ok := d.Get(k)
		if !ok || !reflect.DeepEqual(got, w) {
			t.Errorf("%s = %#v, want %#v", k, got, w)
		}
	}
	dict, _ := d.Get("Dict")
	if keys(dict.(Doc)) != "a,b" {
		t.Errorf("map keys must be sorted for a stable encoding: %v", dict)
	}
}

func TestMarshalRefusals(t *testing.T) {
	type withInt struct{ N int }
	type withChan struct{ C chan int }
	type badTag struct {
		N int32 `halibut:",nonnull"`
	}
	type unknownOpt struct {
		N int32 `halibut:",omitempty"`
	}
	cyclic := Doc{}
	for range 100 {
		cyclic = Doc{{"x", cyclic}}
	}
	tests := []struct {
		name string
		v    any
		want string
	}{
		{"Go int", withInt{}, "no fixed .NET width"},
		{"channel", withChan{}, "no BSON mapping"},
		{"nonnull on a scalar", badTag{}, "nonnull applies to slices and maps"},
		{"unknown option", unknownOpt{}, `unknown halibut tag option "omitempty"`},
		{"untyped struct in object slot", holder{Object: untypedThing{}}, "needs a .NET type name"},
		{"slice in object slot", holder{Object: []string{}}, "array in an object slot"},
		{"map in object slot", holder{Object: map[string]string{}}, "dictionary in an object slot"},
		{"too deep", cyclic, "nested deeper than"},
		{"not a document", "text", "want a struct, map or Doc"},
		{"nil", nil, "cannot marshal nil"},
		{"uint64 overflow", struct{ U uint64 }{U: 1 << 63}, "does not fit a .NET long"},
		{"map with int keys", map[int32]string{1: "x"}, "cannot be a BSON element name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Marshal(tt.v)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Marshal = %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

func TestMarshalErrorSaysWhere(t *testing.T) {
	type inner struct{ N int }
	type outer struct{ Items []inner }
	_, err := Marshal(outer{Items: []inner{{}, {}}})
	if err == nil || !strings.HasPrefix(err.Error(), "Items[0].N: ") {
		t.Fatalf("error = %v, want it to start with the path Items[0].N", err)
	}
}

func TestUnmarshalLeniency(t *testing.T) {
	type target struct {
		Name     string
		Count    int32
		Big      int64
		Ratio    float64
		ID       Guid
		Wait     time.Duration
		When     time.Time
		Optional *string
		Any      any
		Items    []int32
		Dict     map[string]string
		Nested   *typedThing
	}
	g := mustGuid(t, "9a4b47b7-7463-4740-842e-eb1da0ade39b")
	src := Doc{
		{"$type", "Whatever, Ignored"},
		{"name", "case-insensitive"}, // Newtonsoft matches names case-insensitively
		{"Count", int64(7)},          // int64 into int32 when it fits
		{"Big", int32(9)},            // int32 into int64
		{"Ratio", int32(2)},          // int into double
		{"ID", Binary{Subtype: 3, Data: func() []byte { b := g.DotNetBytes(); return b[:] }()}},
		{"Wait", "00:00:05"},
		{"When", NewDateTime(fixedTime)},
		{"Optional", nil},
		{"Any", Doc{{"k", "v"}}},
		{"Items", []any{int32(1), int64(2), 3.0}},
		{"Dict", Doc{{"Bash", "echo"}}},
		{"Nested", Doc{{"Name", "n"}}},
		{"Unknown", "ignored"},
	}
	var got target
	if err := UnmarshalValue(src, &got); err != nil {
		t.Fatal(err)
	}
	want := target{
		Name: "case-insensitive", Count: 7, Big: 9, Ratio: 2, ID: g, Wait: 5 * time.Second, When: fixedTime,
		Any: Doc{{"k", "v"}}, Items: []int32{1, 2, 3}, Dict: map[string]string{"Bash": "echo"}, Nested: &typedThing{Name: "n"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got  %+v\nwant %+v", got, want)
	}
	// Guid from text, null into value types.
	var g2 struct {
		ID Guid
		N  int32
		S  string
	}
	if err := UnmarshalValue(Doc{{"ID", g.String()}, {"N", nil}, {"S", nil}}, &g2); err != nil || g2.ID != g {
		t.Fatalf("Guid from text: %v %v", g2, err)
	}
}

func TestUnmarshalErrors(t *testing.T) {
	type target struct {
		Small int8
		Count int32
		Name  string
		List  []int32
		Flag  bool
	}
	tests := []struct {
		name string
		src  Doc
		want string
	}{
		{"overflow", Doc{{"Small", int32(300)}}, "Small: 300 does not fit int8"},
		{"string into int", Doc{{"Count", "7"}}, "Count: got a string, want an integer"},
		{"fraction into int", Doc{{"Count", 1.5}}, "Count: double 1.5 is not an integer"},
		{"int into string", Doc{{"Name", int32(1)}}, "Name: got an int32, want a string"},
		{"bad element", Doc{{"List", []any{int32(1), "x"}}}, "List[1]: got a string, want an integer"},
		{"doc into bool", Doc{{"Flag", Doc{}}}, "Flag: got a document, want a boolean"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got target
			err := UnmarshalValue(tt.src, &got)
			if err == nil || err.Error() != tt.want {
				t.Fatalf("error = %v, want %q", err, tt.want)
			}
		})
	}
	if err := UnmarshalValue(Doc{}, target{}); err == nil {
		t.Error("a non-pointer target was accepted")
	}
	var iface interface{ M() }
	if err := UnmarshalValue(Doc{}, &iface); err == nil {
		t.Error("a non-empty interface was bound")
	}
	var pe *pathError
	if err := UnmarshalValue(Doc{{"Count", "x"}}, &target{}); !errors.As(err, &pe) {
		t.Error("binding errors should carry their path")
	}
}

func TestMarshalUnmarshalRoundTrip(t *testing.T) {
	want := typicalStartScriptRequest(t, []byte("x")).Params[0].(startScriptCommandV2)
	b, err := Marshal(want)
	if err != nil {
		t.Fatal(err)
	}
	var got startScriptCommandV2
	if err := Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	want.Files[0].Contents.Body = nil // not part of the document
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got  %+v\nwant %+v", got, want)
	}
}

// Readers recognise data streams by shape, so the writer must never produce that shape for
// anything but a stream it will send.
func TestDataStreamShapeIsReserved(t *testing.T) {
	type lookalike struct {
		ID     Guid  `halibut:"id"`
		Length int64 `halibut:"length"`
	}
	if _, err := Marshal(struct{ L lookalike }{}); err == nil || !strings.Contains(err.Error(), "shape of a Halibut.DataStream") {
		t.Fatalf("Marshal = %v", err)
	}
	literal := Doc{{"id", NewGuid()}, {"length", int64(3)}}
	err := WriteMessage(io.Discard, &ResponseMessage{Result: literal}, DefaultLimits())
	if err == nil || !strings.Contains(err.Error(), "no Body") {
		t.Fatalf("WriteMessage of a literal stream document = %v", err)
	}
	// Doc.AppendBSON has no streams to send and just writes the document.
	if _, err := (Doc{{"x", literal}}).AppendBSON(nil); err != nil {
		t.Fatal(err)
	}
}
