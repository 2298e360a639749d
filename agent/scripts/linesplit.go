package scripts

import (
	"io"
	"unicode/utf8"
)

// lineSplitter cuts a byte stream into lines as upstream's reader does: "\n", "\r\n" and a
// lone "\r" each end a line, and a last line without a break still counts. A line longer
// than max is cut into pieces of at most max bytes (at a UTF-8 boundary where possible) so
// output without line breaks cannot exhaust memory.
type lineSplitter struct {
	r          io.Reader
	buf        []byte
	start, end int
	max        int
	skipLF     bool // the previous line ended with "\r"; a "\n" right after belongs to it
	err        error
}

func newLineSplitter(r io.Reader, max int) *lineSplitter {
	return &lineSplitter{r: r, buf: make([]byte, min(32<<10, max)), max: max}
}

// next returns the next line without its break; the slice is valid until the next call.
// At the end of the stream it returns the reader's error (io.EOF for a clean end).
func (s *lineSplitter) next() ([]byte, error) {
	for {
		if s.skipLF && s.start < s.end {
			if s.buf[s.start] == '\n' {
				s.start++
			}
			s.skipLF = false
		}
		pending := s.buf[s.start:s.end]
		for i, c := range pending {
			if c == '\n' || c == '\r' {
				s.start += i + 1
				s.skipLF = c == '\r'
				return pending[:i], nil
			}
		}
		if len(pending) >= s.max {
			cut := s.max
			for back := 1; back <= utf8.UTFMax; back++ {
				if i := cut - back; utf8.RuneStart(pending[i]) {
					if !utf8.FullRune(pending[i:cut]) {
						cut = i
					}
					break
				}
			}
			s.start += cut
			return pending[:cut], nil
		}
		if s.err != nil {
			if len(pending) > 0 {
				s.start = s.end
				return pending, nil
			}
			return nil, s.err
		}
		s.fill()
	}
}

func (s *lineSplitter) fill() {
	if s.start > 0 {
		copy(s.buf, s.buf[s.start:s.end])
		s.end -= s.start
		s.start = 0
	}
	if s.end == len(s.buf) {
		grown := make([]byte, min(2*len(s.buf), s.max))
		copy(grown, s.buf[:s.end])
		s.buf = grown
	}
	n, err := s.r.Read(s.buf[s.end:])
	s.end += n
	if err != nil {
		s.err = err
	}
}
