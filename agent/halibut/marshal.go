package halibut

import (
	"github.com/tentacle-go/tentacle/agent/timespan"

	"encoding/binary"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// WireTyped is implemented by Go types that stand for a .NET class. When such a value sits in
// an `object` slot (a Go interface: the envelope's Message, RequestMessage.Params elements,
// ResponseMessage.Result) Marshal writes `"$type": WireTypeName()` as its first property, as
// Newtonsoft's TypeNameHandling.Auto does. In typed slots no `$type` is written.
//
// The name is the .NET "Simple" assembly-qualified form: "<Namespace>.<Type>, <Assembly>".
type WireTyped interface {
	WireTypeName() string
}

// Struct tags. Marshal and Unmarshal map an exported struct field to a property named after
// the field, or after its `halibut:"Name"` tag. Options after a comma:
//
//	halibut:"-"              skip the field
//	halibut:"Name,nonnull"   write a nil slice or map as an empty array/document, not null
//	                         (for .NET collections that are never null, e.g. params)
//
// Fields are written in declaration order. Go types map to the dialect as follows:
//
//	string                 string; *string for a .NET string that may be null
//	int32 (and named int32 enums), int8, int16, uint8, uint16      int32
//	int64, uint32, uint64 (≤ MaxInt64)                              int64
//	int, uint              refused: .NET widths are fixed, say int32 or int64
//	float32, float64       double
//	bool                   boolean
//	Guid                   binary subtype 4, .NET byte order
//	time.Duration          TimeSpan text, "c" format
//	time.Time, DateTime    UTC datetime (milliseconds)
//	[]byte                 binary subtype 0
//	Binary                 binary as given
//	slices, arrays         array (nil slice → null unless nonnull)
//	map[string]T           document, keys sorted (nil → null unless nonnull)
//	struct, Doc            document
//	pointer, interface     null when nil, else the value
//	*DataStream            {id, length} and the stream is queued to follow the envelope
const tagName = "halibut"

// Marshal encodes v, which must be a struct, a map, a Doc or a pointer to one of these, as one
// BSON document. Data streams inside v are encoded as {id, length} only; use WriteMessage to
// send a message with its streams.
func Marshal(v any) ([]byte, error) {
	e := encoder{maxDepth: DefaultLimits().MaxNestingDepth}
	if err := e.root(reflect.ValueOf(v)); err != nil {
		return nil, err
	}
	return e.buf, nil
}

// AppendBSON appends the encoding of d to dst.
func (d Doc) AppendBSON(dst []byte) ([]byte, error) {
	e := encoder{buf: dst, maxDepth: DefaultLimits().MaxNestingDepth}
	if err := e.document(reflect.ValueOf(d), slotRaw); err != nil {
		return nil, err
	}
	return e.buf, nil
}

// slot says what the .NET side declares where a value goes; it decides `$type`.
type slot uint8

const (
	slotTyped  slot = iota // a property of a concrete type: no $type
	slotObject             // .NET object: WireTyped structs get $type, collections are refused
	slotRaw                // inside a Doc or its arrays: written literally, never adds $type
)

type encoder struct {
	buf      []byte
	depth    int
	maxDepth int
	streams  []*DataStream // in encounter order, which is the order their records are written
}

var (
	typeGuid       = reflect.TypeFor[Guid]()
	typeDuration   = reflect.TypeFor[time.Duration]()
	typeTime       = reflect.TypeFor[time.Time]()
	typeDateTime   = reflect.TypeFor[DateTime]()
	typeBinary     = reflect.TypeFor[Binary]()
	typeDoc        = reflect.TypeFor[Doc]()
	typeDataStream = reflect.TypeFor[DataStream]()
	typeWireTyped  = reflect.TypeFor[WireTyped]()
)

func (e *encoder) root(v reflect.Value) error {
	for v.IsValid() && (v.Kind() == reflect.Pointer || v.Kind() == reflect.Interface) {
		if v.IsNil() {
			return fmt.Errorf("cannot marshal a nil %s as a BSON document", v.Type())
		}
		v = v.Elem()
	}
	if !v.IsValid() {
		return fmt.Errorf("cannot marshal nil as a BSON document")
	}
	switch {
	case v.Type() == typeDoc, v.Kind() == reflect.Struct, v.Kind() == reflect.Map:
		return e.document(v, slotTyped)
	}
	return fmt.Errorf("cannot marshal %s as a BSON document: want a struct, map or Doc", v.Type())
}

// document writes v (struct, map[string]T or Doc) as a BSON document. In slotObject a
// WireTyped struct gets its `$type` first.
func (e *encoder) document(v reflect.Value, s slot) error {
	e.depth++
	defer func() { e.depth-- }()
	if e.depth > e.maxDepth {
		return fmt.Errorf("nested deeper than %d documents/arrays (a cycle?)", e.maxDepth)
	}
	var start int
	e.buf, start = beginDocument(e.buf)
	switch {
	case v.Type() == typeDoc:
		doc := v.Interface().(Doc)
		// A literal document of DataStream shape is announced to the reader like a real one,
		// so it must be accounted for (WriteMessage then refuses it: it has no payload).
		if ds, ok, _ := dataStreamShape(doc); ok {
			e.streams = append(e.streams, &DataStream{ID: ds.ID, Length: ds.Length})
		}
		for _, el := range doc {
			if err := e.element(el.Key, reflect.ValueOf(el.Value), slotRaw); err != nil {
				return atPath(el.Key, err)
			}
		}
	case v.Kind() == reflect.Map:
		if v.Type().Key().Kind() != reflect.String {
			return fmt.Errorf("map key type %s cannot be a BSON element name; use a string kind", v.Type().Key())
		}
		keys := v.MapKeys()
		slices.SortFunc(keys, func(a, b reflect.Value) int { return strings.Compare(a.String(), b.String()) })
		for _, k := range keys {
			if err := e.element(k.String(), v.MapIndex(k), slotTyped); err != nil {
				return atPath(k.String(), err)
			}
		}
	case v.Kind() == reflect.Struct:
		if s == slotObject {
			name, ok := wireTypeName(v)
			if !ok {
				return fmt.Errorf("%s sits in an object slot and needs a .NET type name: implement WireTyped", v.Type())
			}
			var err error
			if e.buf, err = appendElementHeader(e.buf, bsonString, typeKey); err != nil {
				return err
			}
			e.buf = appendString(e.buf, name)
		}
		fields := cachedFields(v.Type())
		if len(fields) == 2 && fields[0].name == "id" && fields[1].name == "length" {
			// Readers recognise data streams by this shape (see announcedStreams).
			return fmt.Errorf("%s has the shape of a Halibut.DataStream ({id, length}) and would be read as one; use *DataStream", v.Type())
		}
		for _, f := range fields {
			if f.err != nil {
				return f.err
			}
			fv := v.Field(f.index)
			if f.nonNull && fv.IsNil() {
				if f.typ.Kind() == reflect.Map {
					fv = reflect.MakeMap(f.typ)
				} else {
					fv = reflect.MakeSlice(f.typ, 0, 0)
				}
			}
			if err := e.element(f.name, fv, slotTyped); err != nil {
				return atPath(f.name, err)
			}
		}
	default:
		return fmt.Errorf("%s is not a document", v.Type())
	}
	var err error
	e.buf, err = endDocument(e.buf, start)
	return err
}

func (e *encoder) header(kind byte, key string) error {
	var err error
	e.buf, err = appendElementHeader(e.buf, kind, key)
	return err
}

// element writes one element; s is what .NET declares there.
func (e *encoder) element(key string, v reflect.Value, s slot) error {
	for v.Kind() == reflect.Interface {
		if v.IsNil() {
			return e.header(bsonNull, key)
		}
		v = v.Elem()
		if s != slotRaw {
			s = slotObject // a Go interface is where .NET declares object
		}
	}
	if !v.IsValid() {
		return e.header(bsonNull, key)
	}
	if v.Kind() == reflect.Pointer {
		if v.IsNil() {
			return e.header(bsonNull, key)
		}
		if v.Type().Elem() == typeDataStream {
			return e.dataStream(key, v.Interface().(*DataStream), s)
		}
		return e.element(key, v.Elem(), s)
	}
	switch v.Type() {
	case typeGuid:
		if err := e.header(bsonBinary, key); err != nil {
			return err
		}
		e.buf = appendGuid(e.buf, v.Interface().(Guid))
		return nil
	case typeDuration:
		if err := e.header(bsonString, key); err != nil {
			return err
		}
		e.buf = appendString(e.buf, timespan.Format(time.Duration(v.Int())))
		return nil
	case typeTime:
		if err := e.header(bsonDateTime, key); err != nil {
			return err
		}
		e.buf = binary.LittleEndian.AppendUint64(e.buf, uint64(NewDateTime(v.Interface().(time.Time))))
		return nil
	case typeDateTime:
		if err := e.header(bsonDateTime, key); err != nil {
			return err
		}
		e.buf = binary.LittleEndian.AppendUint64(e.buf, uint64(v.Int()))
		return nil
	case typeBinary:
		b := v.Interface().(Binary)
		if err := e.header(bsonBinary, key); err != nil {
			return err
		}
		e.buf = appendBinary(e.buf, b.Subtype, b.Data)
		return nil
	case typeDoc:
		if v.IsNil() {
			return e.header(bsonNull, key)
		}
		if err := e.header(bsonDocument, key); err != nil {
			return err
		}
		return e.document(v, s)
	case typeDataStream:
		ds := v.Interface().(DataStream)
		return e.dataStream(key, &ds, s)
	}

	switch v.Kind() {
	case reflect.String:
		if err := e.header(bsonString, key); err != nil {
			return err
		}
		e.buf = appendString(e.buf, v.String())
	case reflect.Bool:
		if err := e.header(bsonBool, key); err != nil {
			return err
		}
		if v.Bool() {
			e.buf = append(e.buf, 1)
		} else {
			e.buf = append(e.buf, 0)
		}
	case reflect.Int8, reflect.Int16, reflect.Int32:
		if err := e.header(bsonInt32, key); err != nil {
			return err
		}
		e.buf = binary.LittleEndian.AppendUint32(e.buf, uint32(int32(v.Int())))
	case reflect.Uint8, reflect.Uint16:
		if err := e.header(bsonInt32, key); err != nil {
			return err
		}
		e.buf = binary.LittleEndian.AppendUint32(e.buf, uint32(v.Uint()))
	case reflect.Int64:
		if err := e.header(bsonInt64, key); err != nil {
			return err
		}
		e.buf = binary.LittleEndian.AppendUint64(e.buf, uint64(v.Int()))
	case reflect.Uint32, reflect.Uint64:
		if v.Uint() > math.MaxInt64 {
			return fmt.Errorf("%d does not fit a .NET long", v.Uint())
		}
		if err := e.header(bsonInt64, key); err != nil {
			return err
		}
		e.buf = binary.LittleEndian.AppendUint64(e.buf, v.Uint())
	case reflect.Int, reflect.Uint, reflect.Uintptr:
		return fmt.Errorf("Go %s has no fixed .NET width; declare it int32 (.NET int) or int64 (.NET long)", v.Type())
	case reflect.Float32, reflect.Float64:
		if err := e.header(bsonDouble, key); err != nil {
			return err
		}
		e.buf = binary.LittleEndian.AppendUint64(e.buf, math.Float64bits(v.Float()))
	case reflect.Slice:
		if v.IsNil() {
			return e.header(bsonNull, key)
		}
		if v.Type().Elem().Kind() == reflect.Uint8 {
			if err := e.header(bsonBinary, key); err != nil {
				return err
			}
			e.buf = appendBinary(e.buf, BinaryGeneric, v.Bytes())
			return nil
		}
		return e.array(key, v, s)
	case reflect.Array:
		return e.array(key, v, s)
	case reflect.Map, reflect.Struct:
		if v.Kind() == reflect.Map && v.IsNil() {
			return e.header(bsonNull, key)
		}
		if s == slotObject && v.Kind() == reflect.Map {
			return fmt.Errorf("a dictionary in an object slot would need a generic .NET type name; wrap it in a WireTyped struct")
		}
		if err := e.header(bsonDocument, key); err != nil {
			return err
		}
		return e.document(v, s)
	default:
		return fmt.Errorf("Go type %s has no BSON mapping in the Halibut dialect", v.Type())
	}
	return nil
}

func (e *encoder) array(key string, v reflect.Value, s slot) error {
	if s == slotObject {
		return fmt.Errorf("an array in an object slot would need a .NET type name ($type/$values); wrap it in a WireTyped struct")
	}
	if err := e.header(bsonArray, key); err != nil {
		return err
	}
	e.depth++
	defer func() { e.depth-- }()
	if e.depth > e.maxDepth {
		return fmt.Errorf("nested deeper than %d documents/arrays (a cycle?)", e.maxDepth)
	}
	var start int
	e.buf, start = beginDocument(e.buf)
	for i := range v.Len() {
		k := strconv.Itoa(i) // no allocation below 100, which covers nearly every array here
		itemSlot := slotTyped
		if s == slotRaw {
			itemSlot = slotRaw
		}
		if err := e.element(k, v.Index(i), itemSlot); err != nil {
			return atPath("["+k+"]", err)
		}
	}
	var err error
	e.buf, err = endDocument(e.buf, start)
	return err
}

// dataStream writes a DataStream as {[$type,] id, length} and queues it for WriteMessage.
func (e *encoder) dataStream(key string, ds *DataStream, s slot) error {
	if err := e.registerStream(ds); err != nil {
		return err
	}
	if err := e.header(bsonDocument, key); err != nil {
		return err
	}
	var start int
	e.buf, start = beginDocument(e.buf)
	if s == slotObject {
		e.buf, _ = appendElementHeader(e.buf, bsonString, typeKey)
		e.buf = appendString(e.buf, DataStreamTypeName)
	}
	e.buf, _ = appendElementHeader(e.buf, bsonBinary, "id")
	e.buf = appendGuid(e.buf, ds.ID)
	e.buf, _ = appendElementHeader(e.buf, bsonInt64, "length")
	e.buf = binary.LittleEndian.AppendUint64(e.buf, uint64(ds.Length))
	var err error
	e.buf, err = endDocument(e.buf, start)
	return err
}

// registerStream queues ds for its record after the envelope, in encounter order.
func (e *encoder) registerStream(ds *DataStream) error {
	if ds.Length < 0 {
		return fmt.Errorf("data stream %s has negative length %d", ds.ID, ds.Length)
	}
	for _, seen := range e.streams {
		if seen.ID == ds.ID {
			return fmt.Errorf("data stream %s appears twice in one message; give each stream its own id", ds.ID)
		}
	}
	e.streams = append(e.streams, ds)
	return nil
}

func wireTypeName(v reflect.Value) (string, bool) {
	if v.Type().Implements(typeWireTyped) {
		return v.Interface().(WireTyped).WireTypeName(), true
	}
	if reflect.PointerTo(v.Type()).Implements(typeWireTyped) {
		p := reflect.New(v.Type())
		p.Elem().Set(v)
		return p.Interface().(WireTyped).WireTypeName(), true
	}
	return "", false
}

// fieldInfo describes one serialized struct field.
type fieldInfo struct {
	index   int
	name    string
	typ     reflect.Type
	nonNull bool
	err     error // a field that cannot be mapped; reported when the struct is used
}

var fieldCache sync.Map // reflect.Type → []fieldInfo

func cachedFields(t reflect.Type) []fieldInfo {
	if f, ok := fieldCache.Load(t); ok {
		return f.([]fieldInfo)
	}
	var fields []fieldInfo
	for i := range t.NumField() {
		sf := t.Field(i)
		if !sf.IsExported() {
			continue
		}
		tag := sf.Tag.Get(tagName)
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if name == "" {
			name = sf.Name
		}
		f := fieldInfo{index: i, name: name, typ: sf.Type}
		for opt := range strings.SplitSeq(opts, ",") {
			switch opt {
			case "":
			case "nonnull":
				if k := sf.Type.Kind(); k != reflect.Slice && k != reflect.Map {
					f.err = fmt.Errorf("field %s.%s: option nonnull applies to slices and maps only", t, sf.Name)
				}
				f.nonNull = true
			default:
				f.err = fmt.Errorf("field %s.%s: unknown %s tag option %q", t, sf.Name, tagName, opt)
			}
		}
		fields = append(fields, f)
	}
	fieldCache.Store(t, fields)
	return fields
}
