package halibut

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
)

// Guid is a .NET System.Guid. The array holds the bytes in the order of the textual form
// ("9a4b47b7-7463-…" → 9a 4b 47 b7 74 63 …), which is not the order .NET puts on the wire:
// Guid.ToByteArray() stores the first three groups little-endian. Use DotNetBytes and
// GuidFromDotNetBytes at the wire boundary only.
type Guid [16]byte

// NewGuid returns a random (version 4) Guid, like .NET Guid.NewGuid().
func NewGuid() Guid {
	var g Guid
	_, _ = rand.Read(g[:]) // crypto/rand.Read never returns an error (it aborts the process instead)
	g[6] = g[6]&0x0f | 0x40
	g[8] = g[8]&0x3f | 0x80
	return g
}

// ParseGuid parses the .NET "D" form (8-4-4-4-12 hex digits, any case), optionally wrapped
// in braces ("B" form), or the 32-digit "N" form.
func ParseGuid(s string) (Guid, error) {
	var g Guid
	text := s
	if len(text) == 38 && text[0] == '{' && text[37] == '}' {
		text = text[1:37]
	}
	var digits []byte
	switch len(text) {
	case 36:
		if text[8] != '-' || text[13] != '-' || text[18] != '-' || text[23] != '-' {
			return g, fmt.Errorf("invalid Guid %q: want the form xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx", s)
		}
		digits = make([]byte, 0, 32)
		digits = append(digits, text[0:8]...)
		digits = append(digits, text[9:13]...)
		digits = append(digits, text[14:18]...)
		digits = append(digits, text[19:23]...)
		digits = append(digits, text[24:36]...)
	case 32:
		digits = []byte(text)
	default:
		return g, fmt.Errorf("invalid Guid %q: want 32 hex digits, optionally grouped 8-4-4-4-12", s)
	}
	if _, err := hex.Decode(g[:], digits); err != nil {
		return Guid{}, fmt.Errorf("invalid Guid %q: %v", s, err)
	}
	return g, nil
}

// String renders the lower-case .NET "D" form, as Guid.ToString() does.
func (g Guid) String() string {
	var b [36]byte
	hex.Encode(b[0:8], g[0:4])
	b[8] = '-'
	hex.Encode(b[9:13], g[4:6])
	b[13] = '-'
	hex.Encode(b[14:18], g[6:8])
	b[18] = '-'
	hex.Encode(b[19:23], g[8:10])
	b[23] = '-'
	hex.Encode(b[24:36], g[10:16])
	return string(b[:])
}

// IsZero reports whether g is Guid.Empty.
func (g Guid) IsZero() bool { return g == Guid{} }

// DotNetBytes returns the 16 bytes of .NET Guid.ToByteArray(): the 32-bit and the two 16-bit
// leading groups little-endian, the last 8 bytes as written.
func (g Guid) DotNetBytes() [16]byte {
	return [16]byte{
		g[3], g[2], g[1], g[0],
		g[5], g[4],
		g[7], g[6],
		g[8], g[9], g[10], g[11], g[12], g[13], g[14], g[15],
	}
}

// GuidFromDotNetBytes is the inverse of DotNetBytes: it reads the 16 bytes .NET's
// new Guid(byte[]) takes.
func GuidFromDotNetBytes(b []byte) (Guid, error) {
	if len(b) != 16 {
		return Guid{}, fmt.Errorf("a Guid needs 16 bytes, got %d", len(b))
	}
	return Guid{
		b[3], b[2], b[1], b[0],
		b[5], b[4],
		b[7], b[6],
		b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15],
	}, nil
}
