package halibut

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"
)

// The JSON view shows one message to an operator and can turn an edited view back into the
// exact bytes (backing `tentacle diag decode-message` / `encode-message`). It is MongoDB
// Extended JSON v2 for the types plain JSON cannot tell apart, plus one addition for Guids:
//
//	BSON string, boolean, null       JSON string, boolean, null
//	BSON int32                       a plain JSON number: 5
//	BSON int64                       {"$numberLong": "5"}
//	BSON double                      {"$numberDouble": "1.5"} ("NaN", "Infinity", "-Infinity")
//	BSON datetime                    {"$date": "2026-01-02T03:04:05.678Z"}, or
//	                                 {"$date": {"$numberLong": "…"}} outside years 1-9999
//	BSON binary subtype 4, 16 bytes  {"$guid": "9a4b47b7-7463-4740-842e-eb1da0ade39b"}, the .NET
//	                                 Guid text (Extended JSON's $uuid would imply RFC byte order)
//	other BSON binary                {"$binary": {"base64": "…", "subType": "00"}}
//	BSON document, array             JSON object (key order kept, `$type` included), array
//
// A document whose only key is one of those `$` names is written {"$document": {…}} so it
// cannot be mistaken for a value.
//
// A message view is {"envelope": {…root document…}, "dataStreams": [{"id", "length",
// "base64"}, …]}, streams in wire order.

// Doc implements json.Marshaler with the JSON view (compact).
func (d Doc) MarshalJSON() ([]byte, error) {
	var w jsonWriter
	if err := w.value(d, "", false); err != nil {
		return nil, err
	}
	return w.buf, nil
}

// UnmarshalJSON implements json.Unmarshaler for the JSON view, keeping key order.
func (d *Doc) UnmarshalJSON(b []byte) error {
	v, err := parseJSONView(bytes.NewReader(b))
	if err != nil {
		return err
	}
	doc, ok := v.(Doc)
	if !ok {
		return fmt.Errorf("JSON view: want an object for a document, got %s", bsonKindName(v))
	}
	*d = doc
	return nil
}

// MessageToJSON reads one message (envelope and data streams) from r and writes its indented
// JSON view to w. Payloads are streamed through base64, never held whole in memory.
func MessageToJSON(w io.Writer, r io.Reader, lim Limits) error {
	msg, err := ReadMessage(r, lim)
	if err != nil {
		return err
	}
	bw := bufio.NewWriter(w)
	var jw jsonWriter
	jw.buf = append(jw.buf, "{\n  \"envelope\": "...)
	if err := jw.value(msg.Envelope, "  ", true); err != nil {
		return err
	}
	jw.buf = append(jw.buf, ",\n  \"dataStreams\": ["...)
	if _, err := bw.Write(jw.buf); err != nil {
		return err
	}
	for i := 0; ; i++ {
		ds, payload, err := msg.NextStream()
		if err == io.EOF {
			if i > 0 {
				bw.WriteString("\n  ")
			}
			break
		}
		if err != nil {
			return err
		}
		if i > 0 {
			bw.WriteString(",")
		}
		fmt.Fprintf(bw, "\n    {\n      \"id\": %q,\n      \"length\": %d,\n      \"base64\": \"", ds.ID.String(), ds.Length)
		enc := base64.NewEncoder(base64.StdEncoding, bw)
		if _, err := io.CopyBuffer(enc, payload, make([]byte, lim.DataStreamBufferSize)); err != nil {
			return err
		}
		if err := enc.Close(); err != nil {
			return err
		}
		bw.WriteString("\"\n    }")
	}
	bw.WriteString("]\n}\n")
	return bw.Flush()
}

// MessageFromJSON reads a message's JSON view from r and writes the message bytes to w,
// exactly as WriteMessage would have. The data streams listed must be exactly those the
// envelope announces, with matching lengths. Payloads are decoded in memory (this is a
// diagnostic path; a view holding gigabytes of base64 is not expected).
func MessageFromJSON(w io.Writer, r io.Reader, lim Limits) error {
	top, err := parseJSONTree(r)
	if err != nil {
		return err
	}
	obj, ok := top.(jsonObject)
	if !ok {
		return errors.New(`JSON view: want an object {"envelope": …, "dataStreams": […]}`)
	}
	var envelope Doc
	var streamItems []any
	haveEnvelope := false
	for _, m := range obj {
		switch m.key {
		case "envelope":
			v, err := fromJSONTree(m.value, false)
			if err != nil {
				return fmt.Errorf("JSON view: envelope: %w", err)
			}
			if envelope, ok = v.(Doc); !ok {
				return errors.New("JSON view: envelope must be an object")
			}
			haveEnvelope = true
		case "dataStreams":
			if streamItems, ok = m.value.([]any); !ok && m.value != nil {
				return errors.New("JSON view: dataStreams must be an array")
			}
		default:
			return fmt.Errorf("JSON view: unknown top-level key %q (want envelope and dataStreams)", m.key)
		}
	}
	if !haveEnvelope {
		return errors.New("JSON view: no envelope")
	}
	body, err := envelope.AppendBSON(nil)
	if err != nil {
		return fmt.Errorf("JSON view: envelope: %w", err)
	}
	if len(body) > lim.MaxMessageBytes {
		return fmt.Errorf("%w: envelope is %d bytes, MaxMessageBytes is %d", ErrMessageTooLarge, len(body), lim.MaxMessageBytes)
	}
	// Parse what we built, so the output obeys the same limits a reader applies.
	reparsed, err := ParseDoc(body, lim)
	if err != nil {
		return fmt.Errorf("JSON view: envelope: %w", err)
	}
	incoming, err := newIncoming(reparsed, nil, lim)
	if err != nil {
		return fmt.Errorf("JSON view: %w", err)
	}
	announced := make(map[Guid]int64, len(incoming.Streams))
	for _, ds := range incoming.Streams {
		announced[ds.ID] = ds.Length
	}
	var streams []*DataStream
	for i, item := range streamItems {
		ds, err := streamFromJSON(item)
		if err != nil {
			return fmt.Errorf("JSON view: dataStreams[%d]: %w", i, err)
		}
		length, ok := announced[ds.ID]
		if !ok {
			return fmt.Errorf("JSON view: dataStreams[%d]: stream %s is not announced by the envelope (or listed twice)", i, ds.ID)
		}
		if length != ds.Length {
			return fmt.Errorf("JSON view: dataStreams[%d]: stream %s has length %d but the envelope announces %d", i, ds.ID, ds.Length, length)
		}
		delete(announced, ds.ID)
		streams = append(streams, ds)
	}
	for id := range announced {
		return fmt.Errorf("JSON view: the envelope announces stream %s but dataStreams has no payload for it", id)
	}
	return writeEncodedMessage(w, body, streams, lim)
}

func streamFromJSON(item any) (*DataStream, error) {
	obj, ok := item.(jsonObject)
	if !ok {
		return nil, errors.New(`want an object {"id", "length", "base64"}`)
	}
	ds := &DataStream{}
	var data []byte
	seen := map[string]bool{}
	for _, m := range obj {
		seen[m.key] = true
		switch m.key {
		case "id":
			s, ok := m.value.(string)
			if !ok {
				return nil, errors.New("id must be a Guid string")
			}
			g, err := ParseGuid(s)
			if err != nil {
				return nil, err
			}
			ds.ID = g
		case "length":
			n, ok := m.value.(json.Number)
			if !ok {
				return nil, errors.New("length must be a number")
			}
			l, err := strconv.ParseInt(string(n), 10, 64)
			if err != nil || l < 0 {
				return nil, fmt.Errorf("length %s is not a non-negative int64", n)
			}
			ds.Length = l
		case "base64":
			s, ok := m.value.(string)
			if !ok {
				return nil, errors.New("base64 must be a string")
			}
			var err error
			if data, err = base64.StdEncoding.DecodeString(s); err != nil {
				return nil, fmt.Errorf("base64: %v", err)
			}
		default:
			return nil, fmt.Errorf("unknown key %q (want id, length, base64)", m.key)
		}
	}
	if !seen["id"] || !seen["length"] || !seen["base64"] {
		return nil, errors.New("id, length and base64 are all required")
	}
	if int64(len(data)) != ds.Length {
		return nil, fmt.Errorf("base64 payload is %d bytes, length says %d", len(data), ds.Length)
	}
	ds.Body = bytes.NewReader(data)
	return ds, nil
}

// --- writing ---

var jsonWrapperKeys = []string{"$numberLong", "$numberDouble", "$date", "$guid", "$binary", "$document"}

type jsonWriter struct{ buf []byte }

// value appends v. indent is the current line prefix; pretty selects the indented layout.
func (w *jsonWriter) value(v any, indent string, pretty bool) error {
	switch x := v.(type) {
	case nil:
		w.buf = append(w.buf, "null"...)
	case string:
		w.buf = appendJSONString(w.buf, x)
	case bool:
		w.buf = strconv.AppendBool(w.buf, x)
	case int32:
		w.buf = strconv.AppendInt(w.buf, int64(x), 10)
	case int64:
		w.wrapper("$numberLong", strconv.FormatInt(x, 10))
	case float64:
		var s string
		switch {
		case math.IsNaN(x):
			s = "NaN"
		case math.IsInf(x, 1):
			s = "Infinity"
		case math.IsInf(x, -1):
			s = "-Infinity"
		default:
			s = strconv.FormatFloat(x, 'g', -1, 64)
		}
		w.wrapper("$numberDouble", s)
	case DateTime:
		if t := x.Time(); t.Year() >= 1 && t.Year() <= 9999 {
			w.wrapper("$date", t.Format("2006-01-02T15:04:05.000Z07:00"))
		} else {
			w.buf = append(w.buf, `{"$date": {"$numberLong": "`...)
			w.buf = strconv.AppendInt(w.buf, int64(x), 10)
			w.buf = append(w.buf, `"}}`...)
		}
	case Guid:
		w.wrapper("$guid", x.String())
	case Binary:
		w.buf = append(w.buf, `{"$binary": {"base64": "`...)
		w.buf = base64.StdEncoding.AppendEncode(w.buf, x.Data)
		w.buf = append(w.buf, `", "subType": "`...)
		w.buf = fmt.Appendf(w.buf, "%02x", x.Subtype)
		w.buf = append(w.buf, `"}}`...)
	case Doc:
		if x == nil {
			w.buf = append(w.buf, "null"...) // as in BSON: a nil Doc is null
			return nil
		}
		if len(x) == 1 && slices.Contains(jsonWrapperKeys, x[0].Key) {
			w.buf = append(w.buf, `{"$document": `...)
			if err := w.object(x, indent, pretty); err != nil {
				return err
			}
			w.buf = append(w.buf, '}')
			return nil
		}
		return w.object(x, indent, pretty)
	case []any:
		if len(x) == 0 {
			w.buf = append(w.buf, "[]"...)
			return nil
		}
		w.buf = append(w.buf, '[')
		inner := indent + "  "
		for i, item := range x {
			if i > 0 {
				w.buf = append(w.buf, ',')
			}
			if pretty {
				w.buf = append(w.buf, '\n')
				w.buf = append(w.buf, inner...)
			}
			if err := w.value(item, inner, pretty); err != nil {
				return err
			}
		}
		if pretty {
			w.buf = append(w.buf, '\n')
			w.buf = append(w.buf, indent...)
		}
		w.buf = append(w.buf, ']')
	default:
		return fmt.Errorf("JSON view: %T is not a BSON document value", v)
	}
	return nil
}

func (w *jsonWriter) object(d Doc, indent string, pretty bool) error {
	if len(d) == 0 {
		w.buf = append(w.buf, "{}"...)
		return nil
	}
	w.buf = append(w.buf, '{')
	inner := indent + "  "
	for i, e := range d {
		if i > 0 {
			w.buf = append(w.buf, ',')
		}
		if pretty {
			w.buf = append(w.buf, '\n')
			w.buf = append(w.buf, inner...)
		}
		w.buf = appendJSONString(w.buf, e.Key)
		w.buf = append(w.buf, ':')
		if pretty {
			w.buf = append(w.buf, ' ')
		}
		if err := w.value(e.Value, inner, pretty); err != nil {
			return err
		}
	}
	if pretty {
		w.buf = append(w.buf, '\n')
		w.buf = append(w.buf, indent...)
	}
	w.buf = append(w.buf, '}')
	return nil
}

func (w *jsonWriter) wrapper(key, text string) {
	w.buf = append(w.buf, `{"`...)
	w.buf = append(w.buf, key...)
	w.buf = append(w.buf, `": `...)
	w.buf = appendJSONString(w.buf, text)
	w.buf = append(w.buf, '}')
}

// appendJSONString quotes s for JSON without HTML escaping (operators read this);
// invalid UTF-8 becomes U+FFFD.
func appendJSONString(b []byte, s string) []byte {
	const hexDigits = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c == '\n':
				b = append(b, '\\', 'n')
			case c == '\r':
				b = append(b, '\\', 'r')
			case c == '\t':
				b = append(b, '\\', 't')
			case c < 0x20 || c == 0x7f:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, `\ufffd`...)
		} else {
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}

// --- reading ---

// jsonObject keeps the members of a JSON object in order, duplicates included.
type jsonObject []jsonMember

type jsonMember struct {
	key   string
	value any
}

// parseJSONView parses one JSON view value into Doc values.
func parseJSONView(r io.Reader) (any, error) {
	tree, err := parseJSONTree(r)
	if err != nil {
		return nil, err
	}
	return fromJSONTree(tree, false)
}

// parseJSONTree reads one JSON value, keeping object member order; numbers stay text.
func parseJSONTree(r io.Reader) (any, error) {
	dec := json.NewDecoder(r)
	dec.UseNumber()
	v, err := readJSONValue(dec)
	if err != nil {
		return nil, fmt.Errorf("JSON view: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("JSON view: trailing data after the JSON value")
	}
	return v, nil
}

func readJSONValue(dec *json.Decoder) (any, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '{':
			var obj jsonObject
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return nil, err
				}
				key, _ := kt.(string)
				v, err := readJSONValue(dec)
				if err != nil {
					return nil, err
				}
				obj = append(obj, jsonMember{key: key, value: v})
			}
			if _, err := dec.Token(); err != nil { // '}'
				return nil, err
			}
			if obj == nil {
				obj = jsonObject{}
			}
			return obj, nil
		case '[':
			arr := []any{}
			for dec.More() {
				v, err := readJSONValue(dec)
				if err != nil {
					return nil, err
				}
				arr = append(arr, v)
			}
			if _, err := dec.Token(); err != nil { // ']'
				return nil, err
			}
			return arr, nil
		}
		return nil, fmt.Errorf("unexpected %v", t)
	default:
		return tok, nil // string, json.Number, bool, nil
	}
}

// fromJSONTree converts a parsed JSON tree to Doc values. raw suppresses the wrapper
// interpretation for the object directly inside {"$document": …}.
func fromJSONTree(v any, raw bool) (any, error) {
	switch x := v.(type) {
	case nil, string, bool:
		return x, nil
	case json.Number:
		n, err := strconv.ParseInt(string(x), 10, 32)
		if err != nil {
			return nil, fmt.Errorf(`plain number %s is not an int32; write {"$numberLong": "…"} or {"$numberDouble": "…"}`, x)
		}
		return int32(n), nil
	case []any:
		out := make([]any, len(x))
		for i, item := range x {
			c, err := fromJSONTree(item, false)
			if err != nil {
				return nil, atPath(fmt.Sprintf("[%d]", i), err)
			}
			out[i] = c
		}
		return out, nil
	case jsonObject:
		if !raw && len(x) == 1 && slices.Contains(jsonWrapperKeys, x[0].key) {
			v, err := fromJSONWrapper(x[0].key, x[0].value)
			return v, atPath(x[0].key, err)
		}
		d := make(Doc, 0, len(x))
		for _, m := range x {
			c, err := fromJSONTree(m.value, false)
			if err != nil {
				return nil, atPath(m.key, err)
			}
			d = append(d, Elem{Key: m.key, Value: c})
		}
		return d, nil
	}
	return nil, fmt.Errorf("unexpected JSON value %T", v)
}

func fromJSONWrapper(key string, v any) (any, error) {
	text, isText := v.(string)
	switch key {
	case "$numberLong":
		if !isText {
			return nil, errors.New("want the int64 as a string")
		}
		return strconv.ParseInt(text, 10, 64)
	case "$numberDouble":
		if !isText {
			return nil, errors.New("want the double as a string")
		}
		switch text {
		case "NaN":
			return math.NaN(), nil
		case "Infinity":
			return math.Inf(1), nil
		case "-Infinity":
			return math.Inf(-1), nil
		}
		return strconv.ParseFloat(text, 64)
	case "$date":
		if isText {
			t, err := time.Parse(time.RFC3339Nano, text)
			if err != nil {
				return nil, err
			}
			return NewDateTime(t), nil
		}
		if obj, ok := v.(jsonObject); ok && len(obj) == 1 && obj[0].key == "$numberLong" {
			s, ok := obj[0].value.(string)
			if !ok {
				return nil, errors.New(`want {"$numberLong": "<milliseconds>"}`)
			}
			n, err := strconv.ParseInt(s, 10, 64)
			return DateTime(n), err
		}
		return nil, errors.New(`want an RFC 3339 text or {"$numberLong": "<milliseconds>"}`)
	case "$guid":
		if !isText {
			return nil, errors.New("want the Guid as a string")
		}
		return ParseGuid(text)
	case "$binary":
		obj, ok := v.(jsonObject)
		if !ok {
			return nil, errors.New(`want {"base64": "…", "subType": "00"}`)
		}
		var b Binary
		var haveData, haveSubtype bool
		for _, m := range obj {
			s, ok := m.value.(string)
			if !ok {
				return nil, fmt.Errorf("%s must be a string", m.key)
			}
			switch m.key {
			case "base64":
				data, err := base64.StdEncoding.DecodeString(s)
				if err != nil {
					return nil, err
				}
				b.Data, haveData = data, true
			case "subType":
				n, err := strconv.ParseUint(s, 16, 8)
				if err != nil {
					return nil, fmt.Errorf("subType %q is not one hex byte", s)
				}
				b.Subtype, haveSubtype = byte(n), true
			default:
				return nil, fmt.Errorf("unknown key %q", m.key)
			}
		}
		if !haveData || !haveSubtype {
			return nil, errors.New("base64 and subType are both required")
		}
		if b.Subtype == BinaryUUID && len(b.Data) == 16 {
			return GuidFromDotNetBytes(b.Data) // the same BSON as {"$guid": …}
		}
		return b, nil
	case "$document":
		if _, ok := v.(jsonObject); !ok {
			return nil, errors.New("want an object")
		}
		return fromJSONTree(v, true)
	}
	return nil, fmt.Errorf("unknown wrapper %q", key)
}
