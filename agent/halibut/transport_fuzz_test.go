package halibut

import (
	"bytes"
	"encoding/binary"
	"io"
	"testing"
)

// FuzzDataStreamRecords feeds arbitrary bytes to the reader of the data
// stream records that follow an envelope announcing two streams: it must
// deliver exactly the announced lengths or fail, never panic or hang.
func FuzzDataStreamRecords(f *testing.F) {
	a, b := NewGuid(), NewGuid()
	announced := []DataStream{{ID: a, Length: 5}, {ID: b, Length: 0}}
	record := func(id Guid, payload []byte, trailer int64) []byte {
		var out bytes.Buffer
		idb := id.DotNetBytes()
		out.Write(idb[:])
		binary.Write(&out, binary.LittleEndian, int64(len(payload)))
		out.Write(payload)
		binary.Write(&out, binary.LittleEndian, trailer)
		return out.Bytes()
	}
	good := append(record(a, []byte("hello"), 5), record(b, nil, 0)...)
	f.Add(good)
	f.Add(append(record(b, nil, 0), record(a, []byte("hello"), 5)...))
	f.Add(record(a, []byte("hello"), 6))
	f.Add(good[:10])
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		r := newStreamRecordReader(bytes.NewReader(data), announced)
		seen := map[Guid]bool{}
		for {
			ds, payload, err := r.next()
			if err != nil {
				return
			}
			if seen[ds.ID] {
				t.Fatalf("stream %s delivered twice", ds.ID)
			}
			seen[ds.ID] = true
			n, err := io.Copy(io.Discard, payload)
			if err != nil {
				return
			}
			if n != ds.Length {
				t.Fatalf("stream %s delivered %d bytes, announced %d", ds.ID, n, ds.Length)
			}
		}
	})
}
