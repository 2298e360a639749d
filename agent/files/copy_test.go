package files

import (
	"bytes"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"errors"
	"hash"
	"io"
	"testing"
	"testing/iotest"
)

func TestCopyHashingMatchesASequentialCopy(t *testing.T) {
	for _, size := range []int{0, 1, copyChunk - 1, copyChunk, copyChunk + 1, 3*copyChunk + copyChunk/2} {
		data := make([]byte, size)
		rand.Read(data)
		var out bytes.Buffer
		h1, h256 := sha1.New(), sha256.New()
		// OneByteReader: the chunks are gathered from many short reads.
		src := io.Reader(bytes.NewReader(data))
		if size < 4096 {
			src = iotest.OneByteReader(src)
		}
		n, err := CopyHashing(&out, []hash.Hash{h1, h256}, src)
		if err != nil || n != int64(size) || !bytes.Equal(out.Bytes(), data) {
			t.Fatalf("size %d: copied %d, err %v, equal %v", size, n, err, bytes.Equal(out.Bytes(), data))
		}
		want1, want256 := sha1.Sum(data), sha256.Sum256(data)
		if !bytes.Equal(h1.Sum(nil), want1[:]) || !bytes.Equal(h256.Sum(nil), want256[:]) {
			t.Fatalf("size %d: hashes differ", size)
		}
	}
}

type failingWriter struct{ after int }

func (f *failingWriter) Write(p []byte) (int, error) {
	if f.after -= len(p); f.after < 0 {
		return 0, errors.New("disk full")
	}
	return len(p), nil
}

func TestCopyHashingStopsAtTheFirstError(t *testing.T) {
	data := make([]byte, 5*copyChunk)
	if _, err := CopyHashing(&failingWriter{after: 2 * copyChunk}, nil, bytes.NewReader(data)); err == nil || err.Error() != "disk full" {
		t.Errorf("write error: %v", err)
	}
	broken := io.MultiReader(bytes.NewReader(data[:copyChunk+10]), iotest.ErrReader(errors.New("connection reset")))
	n, err := CopyHashing(io.Discard, []hash.Hash{sha1.New()}, broken)
	if err == nil || err.Error() != "connection reset" || n != copyChunk+10 {
		t.Errorf("read error: %d %v", n, err)
	}
}

func BenchmarkCopyHashing(b *testing.B) {
	data := make([]byte, 64<<20)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		CopyHashing(io.Discard, []hash.Hash{sha1.New()}, bytes.NewReader(data))
	}
}
