package files

import (
	"errors"
	"hash"
	"io"
	"sync"
)

// copyChunk is how much of an upload is gathered before it is written and
// hashed: a TLS connection yields one 16 KiB record per Read, and a write(2)
// and hash call per record would cost ~60 000 system calls a GiB.
const copyChunk = 1 << 20

// CopyHashing copies src to dst and into every hash. Reading (which
// decrypts TLS) fills one chunk while the previous one is written and hashed,
// the writes and each hash in parallel: done one after the other, a single
// core is the limit (~340 MB/s here), with the other core mostly idle. The
// agent's uploads and the CLI's downloads both copy this way.
func CopyHashing(dst io.Writer, hashes []hash.Hash, src io.Reader) (int64, error) {
	bufs := [2][]byte{make([]byte, copyChunk), make([]byte, copyChunk)}
	var (
		total    int64
		inFlight sync.WaitGroup
		writeErr error // set by the writer of the chunk in flight; read after Wait
	)
	for i := 0; ; i ^= 1 {
		n, readErr := io.ReadFull(src, bufs[i])
		inFlight.Wait()
		if writeErr != nil {
			return total, writeErr
		}
		if n > 0 {
			chunk := bufs[i][:n]
			inFlight.Go(func() {
				if _, err := dst.Write(chunk); err != nil {
					writeErr = err
				}
			})
			for _, h := range hashes {
				inFlight.Go(func() { h.Write(chunk) })
			}
			total += int64(n)
		}
		switch {
		case readErr == nil:
		case errors.Is(readErr, io.EOF) || errors.Is(readErr, io.ErrUnexpectedEOF):
			inFlight.Wait()
			return total, writeErr
		default:
			inFlight.Wait()
			return total, readErr
		}
	}
}
