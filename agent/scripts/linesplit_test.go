package scripts

import (
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

func splitAll(t *testing.T, r io.Reader, max int) []string {
	t.Helper()
	sp := newLineSplitter(r, max)
	var out []string
	for {
		line, err := sp.next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, string(line))
	}
}

func TestLineSplitter(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
	}{
		{"", nil},
		{"a", []string{"a"}},
		{"a\n", []string{"a"}},
		{"a\nb", []string{"a", "b"}},
		{"a\r\nb\r\n", []string{"a", "b"}},
		{"a\rb\rc", []string{"a", "b", "c"}},
		{"\n\n", []string{"", ""}},
		{"\r\r\n\n", []string{"", "", ""}},
		{"x\r", []string{"x"}},
		{"ünï\ncødé", []string{"ünï", "cødé"}},
	} {
		got := splitAll(t, strings.NewReader(tc.in), 1024)
		if strings.Join(got, "|") != strings.Join(tc.want, "|") || len(got) != len(tc.want) {
			t.Errorf("%q: got %q, want %q", tc.in, got, tc.want)
		}
		// The same with one byte per read: a CRLF split across reads is still one break.
		got = splitAll(t, iotest.OneByteReader(strings.NewReader(tc.in)), 1024)
		if strings.Join(got, "|") != strings.Join(tc.want, "|") || len(got) != len(tc.want) {
			t.Errorf("%q byte by byte: got %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestLineSplitterLongLines(t *testing.T) {
	got := splitAll(t, strings.NewReader(strings.Repeat("x", 40)+"\nend"), 16)
	want := []string{strings.Repeat("x", 16), strings.Repeat("x", 16), strings.Repeat("x", 8), "end"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("got %q", got)
	}
	// A piece never ends inside a multi-byte character.
	got = splitAll(t, strings.NewReader(strings.Repeat("a", 15)+"é"+"b"), 16)
	if len(got) != 2 || got[0] != strings.Repeat("a", 15) || got[1] != "éb" {
		t.Fatalf("got %q", got)
	}
}
