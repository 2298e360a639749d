package halibut

import (
	"github.com/tentacle-go/tentacle/agent/timespan"

	"fmt"
	"math"
	"reflect"
	"strings"
	"time"
)

// Unmarshal parses one BSON document (with DefaultLimits) and binds it to the struct, map or
// Doc that ptr points to. See UnmarshalValue for the binding rules.
func Unmarshal(b []byte, ptr any) error {
	doc, err := ParseDoc(b, DefaultLimits())
	if err != nil {
		return err
	}
	return UnmarshalValue(doc, ptr)
}

// UnmarshalValue binds a decoded value (a Doc, []any or primitive as ParseDoc produces) to
// what ptr points to. It is lenient where Newtonsoft is, so any .NET peer's output binds:
//
//   - property names match exactly first, then case-insensitively; unknown ones are ignored;
//     a repeated name binds its last value;
//   - `$type` is metadata and never binds (checking it is the dispatcher's job: see
//     Doc.TypeName);
//   - int32 and int64 convert to any Go integer or float type when the value fits, and an
//     integral double converts to an integer;
//   - a Guid binds from a 16-byte binary of any subtype (.NET byte order) or from its text;
//   - time.Time binds from a datetime or RFC 3339 text; time.Duration from TimeSpan text;
//   - null binds as the zero value (nil for pointers, slices, maps and interfaces);
//   - an interface field (.NET object) receives the raw decoded value.
//
// Enum names sent as strings (Newtonsoft accepts them) are not supported: .NET writes enums
// as numbers.
func UnmarshalValue(value any, ptr any) error {
	rv := reflect.ValueOf(ptr)
	if rv.Kind() != reflect.Pointer || rv.IsNil() {
		return fmt.Errorf("UnmarshalValue needs a non-nil pointer, got %T", ptr)
	}
	return bind(value, rv.Elem())
}

func bind(src any, dst reflect.Value) error {
	if dst.Kind() == reflect.Interface {
		if src == nil {
			dst.SetZero()
			return nil
		}
		if dst.NumMethod() != 0 {
			return fmt.Errorf("cannot bind a BSON value to the non-empty interface %s", dst.Type())
		}
		dst.Set(reflect.ValueOf(src))
		return nil
	}
	if src == nil {
		dst.SetZero()
		return nil
	}
	if dst.Kind() == reflect.Pointer {
		p := reflect.New(dst.Type().Elem())
		if err := bind(src, p.Elem()); err != nil {
			return err
		}
		dst.Set(p)
		return nil
	}

	switch dst.Type() {
	case typeGuid:
		g, err := guidFrom(src)
		if err != nil {
			return err
		}
		dst.Set(reflect.ValueOf(g))
		return nil
	case typeDuration:
		s, ok := src.(string)
		if !ok {
			return mismatch(src, "a TimeSpan string")
		}
		d, err := timespan.Parse(s)
		if err != nil {
			return err
		}
		dst.SetInt(int64(d))
		return nil
	case typeTime:
		switch v := src.(type) {
		case DateTime:
			dst.Set(reflect.ValueOf(v.Time()))
			return nil
		case string:
			t, err := time.Parse(time.RFC3339Nano, v)
			if err != nil {
				return fmt.Errorf("invalid date %q: %v", v, err)
			}
			dst.Set(reflect.ValueOf(t))
			return nil
		}
		return mismatch(src, "a datetime")
	case typeDateTime:
		v, ok := src.(DateTime)
		if !ok {
			return mismatch(src, "a datetime")
		}
		dst.SetInt(int64(v))
		return nil
	case typeBinary:
		switch v := src.(type) {
		case Binary:
			dst.Set(reflect.ValueOf(Binary{Subtype: v.Subtype, Data: append([]byte(nil), v.Data...)}))
			return nil
		case Guid:
			b := v.DotNetBytes()
			dst.Set(reflect.ValueOf(Binary{Subtype: BinaryUUID, Data: b[:]}))
			return nil
		}
		return mismatch(src, "a binary")
	case typeDoc:
		d, ok := src.(Doc)
		if !ok {
			return mismatch(src, "a document")
		}
		dst.Set(reflect.ValueOf(d))
		return nil
	}

	switch dst.Kind() {
	case reflect.String:
		s, ok := src.(string)
		if !ok {
			return mismatch(src, "a string")
		}
		dst.SetString(s)
	case reflect.Bool:
		b, ok := src.(bool)
		if !ok {
			return mismatch(src, "a boolean")
		}
		dst.SetBool(b)
	case reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64, reflect.Int:
		n, err := integerFrom(src)
		if err != nil {
			return err
		}
		if dst.OverflowInt(n) {
			return fmt.Errorf("%d does not fit %s", n, dst.Type())
		}
		dst.SetInt(n)
	case reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uint:
		n, err := integerFrom(src)
		if err != nil {
			return err
		}
		if n < 0 || dst.OverflowUint(uint64(n)) {
			return fmt.Errorf("%d does not fit %s", n, dst.Type())
		}
		dst.SetUint(uint64(n))
	case reflect.Float32, reflect.Float64:
		switch v := src.(type) {
		case float64:
			dst.SetFloat(v)
		case int32:
			dst.SetFloat(float64(v))
		case int64:
			dst.SetFloat(float64(v))
		default:
			return mismatch(src, "a number")
		}
	case reflect.Slice:
		if dst.Type().Elem().Kind() == reflect.Uint8 {
			switch v := src.(type) {
			case Binary:
				dst.SetBytes(append([]byte(nil), v.Data...))
				return nil
			case Guid:
				b := v.DotNetBytes()
				dst.SetBytes(b[:])
				return nil
			}
			return mismatch(src, "a binary")
		}
		arr, ok := src.([]any)
		if !ok {
			return mismatch(src, "an array")
		}
		out := reflect.MakeSlice(dst.Type(), len(arr), len(arr))
		for i, item := range arr {
			if err := bind(item, out.Index(i)); err != nil {
				return atPath(fmt.Sprintf("[%d]", i), err)
			}
		}
		dst.Set(out)
	case reflect.Array:
		arr, ok := src.([]any)
		if !ok {
			return mismatch(src, "an array")
		}
		if len(arr) != dst.Len() {
			return fmt.Errorf("array of %d elements does not fit %s", len(arr), dst.Type())
		}
		for i, item := range arr {
			if err := bind(item, dst.Index(i)); err != nil {
				return atPath(fmt.Sprintf("[%d]", i), err)
			}
		}
	case reflect.Map:
		d, ok := src.(Doc)
		if !ok {
			return mismatch(src, "a document")
		}
		if dst.Type().Key().Kind() != reflect.String {
			return fmt.Errorf("cannot bind a document to %s: map keys must be a string kind", dst.Type())
		}
		m := reflect.MakeMapWithSize(dst.Type(), len(d))
		for _, e := range d {
			if e.Key == typeKey {
				continue
			}
			v := reflect.New(dst.Type().Elem()).Elem()
			if err := bind(e.Value, v); err != nil {
				return atPath(e.Key, err)
			}
			m.SetMapIndex(reflect.ValueOf(e.Key).Convert(dst.Type().Key()), v)
		}
		dst.Set(m)
	case reflect.Struct:
		d, ok := src.(Doc)
		if !ok {
			return mismatch(src, "a document")
		}
		fields := cachedFields(dst.Type())
		for _, e := range d {
			if e.Key == typeKey {
				continue
			}
			f := matchField(fields, e.Key)
			if f == nil {
				continue // Newtonsoft ignores unknown properties
			}
			if f.err != nil {
				return f.err
			}
			if err := bind(e.Value, dst.Field(f.index)); err != nil {
				return atPath(e.Key, err)
			}
		}
	default:
		return fmt.Errorf("cannot bind a BSON value to Go type %s", dst.Type())
	}
	return nil
}

func matchField(fields []fieldInfo, key string) *fieldInfo {
	for i := range fields {
		if fields[i].name == key {
			return &fields[i]
		}
	}
	for i := range fields {
		if strings.EqualFold(fields[i].name, key) {
			return &fields[i]
		}
	}
	return nil
}

func integerFrom(src any) (int64, error) {
	switch v := src.(type) {
	case int32:
		return int64(v), nil
	case int64:
		return v, nil
	case float64:
		if v == math.Trunc(v) && v >= math.MinInt64 && v < math.MaxInt64 {
			return int64(v), nil
		}
		return 0, fmt.Errorf("double %v is not an integer", v)
	}
	return 0, mismatch(src, "an integer")
}

func guidFrom(src any) (Guid, error) {
	switch v := src.(type) {
	case Guid:
		return v, nil
	case Binary:
		if len(v.Data) == 16 {
			return GuidFromDotNetBytes(v.Data)
		}
		return Guid{}, fmt.Errorf("binary of %d bytes is not a Guid (16 bytes)", len(v.Data))
	case string:
		return ParseGuid(v)
	}
	return Guid{}, mismatch(src, "a Guid")
}

func mismatch(src any, want string) error {
	return fmt.Errorf("got %s, want %s", bsonKindName(src), want)
}

// bsonKindName names the BSON type of a decoded value for error messages.
func bsonKindName(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "a string"
	case int32:
		return "an int32"
	case int64:
		return "an int64"
	case float64:
		return "a double"
	case bool:
		return "a boolean"
	case DateTime:
		return "a datetime"
	case Guid:
		return "a Guid"
	case Binary:
		return "a binary"
	case Doc:
		return "a document"
	case []any:
		return "an array"
	}
	return fmt.Sprintf("Go %T", v)
}
