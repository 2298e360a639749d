package halibut

import (
	"bytes"
	"testing"
)

// §5.2: the Guid 9a4b47b7-7463-4740-842e-eb1da0ade39b travels as b7 47 4b 9a 63 74 40 47 84 2e eb 1d a0 ad e3 9b.
func TestGuidDotNetByteOrder(t *testing.T) {
	g := mustGuid(t, "9a4b47b7-7463-4740-842e-eb1da0ade39b")
	want := unhex(t, "b7 47 4b 9a 63 74 40 47 84 2e eb 1d a0 ad e3 9b")
	got := g.DotNetBytes()
	if !bytes.Equal(got[:], want) {
		t.Fatalf("DotNetBytes = % x, want % x", got, want)
	}
	back, err := GuidFromDotNetBytes(want)
	if err != nil || back != g {
		t.Fatalf("GuidFromDotNetBytes = %v, %v; want %v", back, err, g)
	}
	if g.String() != "9a4b47b7-7463-4740-842e-eb1da0ade39b" {
		t.Fatalf("String = %s", g)
	}
}

func TestParseGuid(t *testing.T) {
	const canonical = "9a4b47b7-7463-4740-842e-eb1da0ade39b"
	tests := []struct {
		in      string
		wantErr bool
	}{
		{canonical, false},
		{"9A4B47B7-7463-4740-842E-EB1DA0ADE39B", false},
		{"{9a4b47b7-7463-4740-842e-eb1da0ade39b}", false},
		{"9a4b47b774634740842eeb1da0ade39b", false},
		{"", true},
		{"9a4b47b7-7463-4740-842e-eb1da0ade39", true},
		{"9a4b47b7x7463-4740-842e-eb1da0ade39b", true},
		{"za4b47b7-7463-4740-842e-eb1da0ade39b", true},
		{"{9a4b47b7-7463-4740-842e-eb1da0ade39b", true},
	}
	for _, tt := range tests {
		g, err := ParseGuid(tt.in)
		if tt.wantErr {
			if err == nil {
				t.Errorf("ParseGuid(%q) = %v, want an error", tt.in, g)
			}
			continue
		}
		if err != nil || g.String() != canonical {
			t.Errorf("ParseGuid(%q) = %v, %v", tt.in, g, err)
		}
	}
	if _, err := GuidFromDotNetBytes(make([]byte, 15)); err == nil {
		t.Error("GuidFromDotNetBytes accepted 15 bytes")
	}
}

func TestNewGuidIsVersion4(t *testing.T) {
	a, b := NewGuid(), NewGuid()
	if a == b {
		t.Fatal("two NewGuid calls returned the same value")
	}
	if a[6]>>4 != 4 || a[8]>>6 != 2 {
		t.Fatalf("%v is not an RFC 4122 version-4 Guid", a)
	}
	if a.IsZero() || !(Guid{}).IsZero() {
		t.Fatal("IsZero is wrong")
	}
}
