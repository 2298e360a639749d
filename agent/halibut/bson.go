package halibut

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"
	"unicode/utf8"
)

// Why our own BSON code rather than mongo-driver/v2/bson: mongo-driver can emit ordered
// documents (bson.D) and subtype-4 binaries, so it could produce the bytes. But the decoder
// must be hardened against hostile input (nesting depth, element count, allocation bounded
// by what actually arrived), Guids need .NET byte order, TimeSpans the "c" text form,
// `$type` must come first only in `object` slots (TypeNameHandling.Auto), Go `int` must be
// refused because .NET widths are fixed, and the operator JSON view needs a value model of
// its own. Each of those would be a custom codec around mongo-driver; the dialect is small
// enough (ten element types) that one file of our own is simpler to audit. mongo-driver is
// still used in the tests as an independent BSON parser for what we write.

// BSON element types produced by Newtonsoft.Json.Bson when serializing Halibut messages
// (reference/halibut-protocol.md §4.2). Others are refused on decode.
const (
	bsonDouble   byte = 0x01
	bsonString   byte = 0x02
	bsonDocument byte = 0x03
	bsonArray    byte = 0x04
	bsonBinary   byte = 0x05
	bsonBool     byte = 0x08
	bsonDateTime byte = 0x09
	bsonNull     byte = 0x0A
	bsonInt32    byte = 0x10
	bsonInt64    byte = 0x12
)

// Binary subtypes that matter here.
const (
	// BinaryGeneric is what Newtonsoft writes for byte[].
	BinaryGeneric byte = 0x00
	// BinaryUUIDLegacy is accepted when reading into a Guid (any 16-byte binary is).
	BinaryUUIDLegacy byte = 0x03
	// BinaryUUID is what Newtonsoft writes for a Guid, bytes in .NET order.
	BinaryUUID byte = 0x04
)

// minDocumentSize is the size of an empty BSON document: int32 length + terminating 0x00.
const minDocumentSize = 5

// Doc is a BSON document that keeps its elements in order, which the dialect needs:
// Newtonsoft only honours `$type` as the first property, and .NET writes properties in
// declaration order. Duplicate keys survive a decode/encode round trip.
//
// Values held in a Doc (what ParseDoc produces and AppendBSON accepts):
//
//	nil        BSON null
//	string     BSON string (always valid UTF-8 after ParseDoc)
//	int32      BSON int32 (.NET int and enums)
//	int64      BSON int64 (.NET long)
//	float64    BSON double
//	bool       BSON boolean
//	DateTime   BSON UTC datetime
//	Guid       BSON binary subtype 4 with 16 bytes
//	Binary     any other BSON binary
//	Doc        embedded document
//	[]any      array
//
// Marshal accepts more Go types (structs, pointers, time.Duration …) and turns them into
// these.
type Doc []Elem

// Elem is one key/value pair of a Doc.
type Elem struct {
	Key   string
	Value any
}

// Binary is a BSON binary value other than a 16-byte subtype-4 Guid.
type Binary struct {
	Subtype byte
	Data    []byte
}

// DateTime is a BSON UTC datetime: milliseconds since the Unix epoch. Newtonsoft writes both
// DateTime and DateTimeOffset this way (the offset is lost). Kept as the raw count so a
// decode/encode round trip is exact for every int64; use Time to convert.
type DateTime int64

// Time returns the instant in UTC.
func (d DateTime) Time() time.Time { return time.UnixMilli(int64(d)).UTC() }

// NewDateTime converts t to BSON precision (milliseconds, truncated toward zero like .NET's
// tick division).
func NewDateTime(t time.Time) DateTime {
	sec, nsec := t.Unix(), int64(t.Nanosecond())
	ms := sec*1000 + nsec/1e6
	if sec < 0 && nsec%1e6 != 0 {
		ms++ // .NET divides ticks toward zero; Go's (sec, nsec) split floors.
	}
	return DateTime(ms)
}

// Get returns the value of the first element named key (exact match).
func (d Doc) Get(key string) (any, bool) {
	for _, e := range d {
		if e.Key == key {
			return e.Value, true
		}
	}
	return nil, false
}

// Lookup returns the value of the element named key, falling back to a case-insensitive
// match as Newtonsoft does when binding properties.
func (d Doc) Lookup(key string) (any, bool) {
	if v, ok := d.Get(key); ok {
		return v, true
	}
	for _, e := range d {
		if strings.EqualFold(e.Key, key) {
			return e.Value, true
		}
	}
	return nil, false
}

// TypeName returns the `$type` of the document, "" if it has none. Like Newtonsoft, only a
// `$type` in first position counts.
func (d Doc) TypeName() string {
	if len(d) > 0 && d[0].Key == typeKey {
		if s, ok := d[0].Value.(string); ok {
			return s
		}
	}
	return ""
}

// typeKey is Newtonsoft's type metadata property.
const typeKey = "$type"

// ErrMalformedBSON wraps every decoding error, so callers can tell "the peer sent garbage"
// from I/O errors.
var ErrMalformedBSON = errors.New("malformed BSON")

type bsonError struct {
	offset int
	msg    string
}

func (e *bsonError) Error() string {
	return fmt.Sprintf("%v at byte %d: %s", ErrMalformedBSON, e.offset, e.msg)
}
func (e *bsonError) Unwrap() error { return ErrMalformedBSON }

// ParseDoc decodes one BSON document that must span b exactly. It enforces
// lim.MaxNestingDepth and lim.MaxMessageElements, refuses element types Newtonsoft does not
// write for Halibut, replaces invalid UTF-8 with U+FFFD (what .NET's UTF-8 decoder does),
// and never panics on any input.
//
// It reads b twice: first to check everything and count each document's elements without
// building anything, so an over-limit or malformed document costs no allocation; then to
// build, each document allocated at its exact size (growing by append would allocate about
// five times the final size along the way). The memory it allocates is at most
// decodedCost(len(b), elements).
func ParseDoc(b []byte, lim Limits) (Doc, error) {
	_, sizes, err := checkDoc(b, lim)
	if err != nil {
		return nil, err
	}
	return buildDoc(b, lim, sizes)
}

// decodedElementBytes bounds what ParseDoc allocates per element besides the bytes of
// strings and binaries: the Elem, an array's slot, the boxed value and the document's count
// (measured: 93 bytes for an empty document in an array, the worst case;
// TestParseDocAllocatesWithinDecodeCost holds it to this).
const decodedElementBytes = 96

// decodeCost bounds the memory decoding a size-byte envelope of the given elements takes:
// the inflated bytes, the strings and binaries copied out of them, and the elements.
func decodeCost(size, elements int) int64 {
	return 2*int64(size) + int64(elements)*decodedElementBytes
}

// checkDoc is ParseDoc's first pass: it returns the number of elements and the element
// count of every document in the order they start.
func checkDoc(b []byte, lim Limits) (elements int, docSizes []int32, err error) {
	p := parser{b: b, maxDepth: lim.MaxNestingDepth, elementsLeft: lim.MaxMessageElements, maxElements: lim.MaxMessageElements, checking: true}
	if len(b) < minDocumentSize {
		return 0, nil, p.fail(0, "need at least %d bytes for a document, have %d", minDocumentSize, len(b))
	}
	if declared := int32(binary.LittleEndian.Uint32(b)); int(declared) != len(b) {
		return 0, nil, p.fail(0, "document declares %d bytes but %d were given", declared, len(b))
	}
	if _, _, err := p.document(0, len(b), 1); err != nil {
		return 0, nil, err
	}
	return lim.MaxMessageElements - p.elementsLeft, p.docSizes, nil
}

// buildDoc is ParseDoc's second pass over a document checkDoc accepted.
func buildDoc(b []byte, lim Limits, docSizes []int32) (Doc, error) {
	p := parser{b: b, maxDepth: lim.MaxNestingDepth, elementsLeft: lim.MaxMessageElements, maxElements: lim.MaxMessageElements, docSizes: docSizes}
	doc, _, err := p.document(0, len(b), 1)
	return doc, err
}

type parser struct {
	b            []byte
	maxDepth     int
	elementsLeft int
	maxElements  int
	// checking: the first pass, which validates and counts into docSizes but builds nothing.
	checking bool
	docSizes []int32 // elements of each document, in the order the documents start
	nextDoc  int     // the next entry of docSizes the building pass uses
}

func (p *parser) fail(offset int, format string, args ...any) error {
	return &bsonError{offset: offset, msg: fmt.Sprintf(format, args...)}
}

// document parses the document starting at off, which must end at or before limit. It
// returns the document (nil while checking) and the offset just after it.
func (p *parser) document(off, limit, depth int) (Doc, int, error) {
	if depth > p.maxDepth {
		return nil, 0, p.fail(off, "documents and arrays nested deeper than %d", p.maxDepth)
	}
	if limit-off < minDocumentSize {
		return nil, 0, p.fail(off, "truncated document")
	}
	size := int(int32(binary.LittleEndian.Uint32(p.b[off:])))
	if size < minDocumentSize || size > limit-off {
		return nil, 0, p.fail(off, "document length %d does not fit in the %d bytes available", size, limit-off)
	}
	end := off + size - 1 // offset of the terminating 0x00
	if p.b[end] != 0 {
		return nil, 0, p.fail(end, "document is not terminated by 0x00")
	}
	var doc Doc
	slot := len(p.docSizes)
	if p.checking {
		p.docSizes = append(p.docSizes, 0)
	} else {
		doc = make(Doc, 0, p.docSizes[p.nextDoc]) // non-nil even when empty: a nil Doc encodes as null
		p.nextDoc++
	}
	count := int32(0)
	i := off + 4
	for i < end {
		if p.elementsLeft <= 0 {
			return nil, 0, &elementLimitError{offset: i, max: p.maxElements}
		}
		p.elementsLeft--
		count++
		kind := p.b[i]
		i++
		keyEnd := i
		for keyEnd < end && p.b[keyEnd] != 0 {
			keyEnd++
		}
		if keyEnd >= end {
			return nil, 0, p.fail(i, "element name runs past the end of its document")
		}
		keyBytes := p.b[i:keyEnd]
		i = keyEnd + 1
		if p.checking {
			next, err := p.skipValue(kind, keyBytes, i, end, depth)
			if err != nil {
				return nil, 0, err
			}
			i = next
			continue
		}
		key := validUTF8(keyBytes)
		value, next, err := p.value(kind, key, i, end, depth)
		if err != nil {
			return nil, 0, err
		}
		doc = append(doc, Elem{Key: key, Value: value})
		i = next
	}
	if p.checking {
		p.docSizes[slot] = count
	}
	return doc, end + 1, nil
}

// skipValue checks the value of an element without building it and returns the offset
// after it. It checks what value does, so the building pass cannot fail.
func (p *parser) skipValue(kind byte, key []byte, off, limit, depth int) (int, error) {
	if kind == bsonDocument || kind == bsonArray {
		_, next, err := p.document(off, limit, depth+1)
		return next, err
	}
	// Everything else is a leaf: value checks it and builds at most one small value.
	_, next, err := p.leaf(kind, string(key), off, limit)
	return next, err
}

// value parses the value of an element of the given kind at off; limit is the offset of the
// enclosing document's terminator.
func (p *parser) value(kind byte, key string, off, limit, depth int) (any, int, error) {
	switch kind {
	case bsonDocument:
		return p.document(off, limit, depth+1)
	case bsonArray:
		doc, next, err := p.document(off, limit, depth+1)
		if err != nil {
			return nil, 0, err
		}
		// Like Newtonsoft, ignore the array's keys ("0", "1", …) and keep the order.
		arr := make([]any, len(doc))
		for j, e := range doc {
			arr[j] = e.Value
		}
		return arr, next, nil
	}
	return p.leaf(kind, key, off, limit)
}

// leaf parses a value that is neither a document nor an array. While checking it builds
// nothing.
func (p *parser) leaf(kind byte, key string, off, limit int) (any, int, error) {
	need := func(n int) error {
		if limit-off < n {
			return p.fail(off, "value of %q is truncated", key)
		}
		return nil
	}
	switch kind {
	case bsonDouble:
		if err := need(8); err != nil {
			return nil, 0, err
		}
		if p.checking {
			return nil, off + 8, nil
		}
		return math.Float64frombits(binary.LittleEndian.Uint64(p.b[off:])), off + 8, nil
	case bsonString:
		if err := need(4); err != nil {
			return nil, 0, err
		}
		n := int(int32(binary.LittleEndian.Uint32(p.b[off:])))
		if n < 1 || n > limit-off-4 {
			return nil, 0, p.fail(off, "string length %d of %q does not fit", n, key)
		}
		end := off + 4 + n - 1
		if p.b[end] != 0 {
			return nil, 0, p.fail(end, "string %q is not terminated by 0x00", key)
		}
		if p.checking {
			return nil, end + 1, nil
		}
		return validUTF8(p.b[off+4 : end]), end + 1, nil
	case bsonBinary:
		if err := need(5); err != nil {
			return nil, 0, err
		}
		n := int(int32(binary.LittleEndian.Uint32(p.b[off:])))
		if n < 0 || n > limit-off-5 {
			return nil, 0, p.fail(off, "binary length %d of %q does not fit", n, key)
		}
		if p.checking {
			return nil, off + 5 + n, nil
		}
		subtype := p.b[off+4]
		data := p.b[off+5 : off+5+n]
		if subtype == BinaryUUID && n == 16 {
			g, _ := GuidFromDotNetBytes(data)
			return g, off + 5 + n, nil
		}
		return Binary{Subtype: subtype, Data: bytes.Clone(data)}, off + 5 + n, nil
	case bsonBool:
		if err := need(1); err != nil {
			return nil, 0, err
		}
		switch p.b[off] {
		case 0:
			return false, off + 1, nil
		case 1:
			return true, off + 1, nil
		}
		return nil, 0, p.fail(off, "boolean %q is 0x%02x, not 0x00 or 0x01", key, p.b[off])
	case bsonDateTime:
		if err := need(8); err != nil {
			return nil, 0, err
		}
		if p.checking {
			return nil, off + 8, nil
		}
		return DateTime(int64(binary.LittleEndian.Uint64(p.b[off:]))), off + 8, nil
	case bsonNull:
		return nil, off, nil
	case bsonInt32:
		if err := need(4); err != nil {
			return nil, 0, err
		}
		if p.checking {
			return nil, off + 4, nil
		}
		return int32(binary.LittleEndian.Uint32(p.b[off:])), off + 4, nil
	case bsonInt64:
		if err := need(8); err != nil {
			return nil, 0, err
		}
		if p.checking {
			return nil, off + 8, nil
		}
		return int64(binary.LittleEndian.Uint64(p.b[off:])), off + 8, nil
	}
	return nil, 0, p.fail(off-len(key)-2, "element %q has BSON type 0x%02x, which Newtonsoft never writes for Halibut", key, kind)
}

// elementLimitError: a document has more elements than MaxMessageElements allows.
type elementLimitError struct {
	offset, max int
}

func (e *elementLimitError) Error() string {
	return fmt.Sprintf("%v: more than MaxMessageElements (%d) BSON elements, at byte %d", ErrMessageTooLarge, e.max, e.offset)
}
func (e *elementLimitError) Unwrap() error { return ErrMessageTooLarge }

// validUTF8 copies b into a string, replacing each invalid byte sequence with U+FFFD as
// .NET's UTF-8 decoder does.
func validUTF8(b []byte) string {
	if utf8.Valid(b) {
		return string(b)
	}
	return strings.ToValidUTF8(string(b), "\uFFFD")
}

// --- low-level writers shared by Marshal ---

// beginDocument appends a placeholder length and returns the offset to patch.
func beginDocument(buf []byte) ([]byte, int) {
	return append(buf, 0, 0, 0, 0), len(buf)
}

// endDocument appends the terminator and patches the length.
func endDocument(buf []byte, start int) ([]byte, error) {
	buf = append(buf, 0)
	size := len(buf) - start
	if size > math.MaxInt32 {
		return nil, fmt.Errorf("BSON document of %d bytes exceeds the format's 2 GiB limit", size)
	}
	binary.LittleEndian.PutUint32(buf[start:], uint32(size))
	return buf, nil
}

// appendElementHeader appends the type byte and the element name.
func appendElementHeader(buf []byte, kind byte, key string) ([]byte, error) {
	if strings.IndexByte(key, 0) >= 0 {
		return nil, fmt.Errorf("element name %q contains a NUL byte, which BSON cannot carry", key)
	}
	buf = append(buf, kind)
	buf = appendUTF8(buf, key)
	return append(buf, 0), nil
}

// appendString appends a BSON string value.
func appendString(buf []byte, s string) []byte {
	start := len(buf)
	buf = append(buf, 0, 0, 0, 0)
	buf = appendUTF8(buf, s)
	buf = append(buf, 0)
	binary.LittleEndian.PutUint32(buf[start:], uint32(len(buf)-start-4))
	return buf
}

// appendUTF8 appends s, replacing invalid UTF-8 with U+FFFD: a .NET string cannot hold
// invalid UTF-8, so this is what a .NET peer would have sent for the same text.
func appendUTF8(buf []byte, s string) []byte {
	if utf8.ValidString(s) {
		return append(buf, s...)
	}
	return append(buf, strings.ToValidUTF8(s, "\uFFFD")...)
}

func appendBinary(buf []byte, subtype byte, data []byte) []byte {
	buf = binary.LittleEndian.AppendUint32(buf, uint32(len(data)))
	buf = append(buf, subtype)
	return append(buf, data...)
}

func appendGuid(buf []byte, g Guid) []byte {
	b := g.DotNetBytes()
	return appendBinary(buf, BinaryUUID, b[:])
}
