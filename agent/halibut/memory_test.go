package halibut

import (
	"bufio"
	"bytes"
	"compress/flate"
	"encoding/binary"
	"errors"
	"net"
	"runtime"
	"runtime/metrics"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Memory is measured in-process: runtime.MemStats.TotalAlloc (everything allocated, so an
// upper bound on what the code under test can have held) and, for concurrent decodes, the
// peak of the runtime/metrics live-heap gauge sampled while they run.

// bsonArrayOf returns the BSON of {"Message": [elem, elem, ...]} with n copies of elem (one
// element's bytes, its name included).
func bsonArrayOf(n int, elem []byte) []byte {
	b := make([]byte, 0, 4+1+len("Message")+1+4+n*len(elem)+2)
	b = append(b, 0, 0, 0, 0, bsonArray)
	b = append(b, "Message"...)
	b = append(b, 0)
	arr := len(b)
	b = append(b, 0, 0, 0, 0)
	for range n {
		b = append(b, elem...)
	}
	b = append(b, 0)
	binary.LittleEndian.PutUint32(b[arr:], uint32(len(b)-arr))
	b = append(b, 0)
	binary.LittleEndian.PutUint32(b, uint32(len(b)))
	return b
}

func deflateBest(t testing.TB, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	fw, _ := flate.NewWriter(&buf, flate.BestCompression)
	fw.Write(b)
	fw.Close()
	return buf.Bytes()
}

func totalAlloc() uint64 {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.TotalAlloc
}

// decodedElementBytes must hold for every element shape, the nested ones being the worst.
func TestParseDocAllocatesWithinDecodeCost(t *testing.T) {
	lim := DefaultLimits()
	const n = 200_000
	shapes := map[string][]byte{
		"null":              {bsonNull, 0},
		"null, 5-char name": {bsonNull, '1', '2', '3', '4', '5', 0},
		"empty document":    {bsonDocument, 0, 5, 0, 0, 0, 0},
		"empty array":       {bsonArray, 0, 5, 0, 0, 0, 0},
		"int32":             {bsonInt32, 0, 0xff, 0xff, 0xff, 0x7f},
		"int64":             {bsonInt64, 0, 1, 2, 3, 4, 5, 6, 7, 8},
		"double":            {bsonDouble, 0, 1, 2, 3, 4, 5, 6, 7, 8},
		"datetime":          {bsonDateTime, 0, 1, 2, 3, 4, 5, 6, 7, 8},
		"empty string":      {bsonString, 0, 1, 0, 0, 0, 0},
		"string":            {bsonString, 0, 4, 0, 0, 0, 'a', 'b', 'c', 0},
		"empty binary":      {bsonBinary, 0, 0, 0, 0, 0, 0},
		"guid":              {bsonBinary, 0, 16, 0, 0, 0, BinaryUUID, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16},
		"bool":              {bsonBool, 0, 1},
	}
	for name, elem := range shapes {
		b := bsonArrayOf(n, elem)
		before := totalAlloc()
		doc, err := ParseDoc(b, lim)
		used := totalAlloc() - before
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		runtime.KeepAlive(doc)
		// ParseDoc itself does not hold the inflated bytes: decodeCost's second copy of them.
		if budget := decodeCost(len(b), n+1) - int64(len(b)); int64(used) > budget {
			t.Errorf("%s: ParseDoc allocated %d bytes (%.1f per element), decodeCost allows %d", name, used, float64(used)/n, budget)
		}
	}
}

// A deflate bomb of ~8 KB, 4M null elements in 8 MB of BSON, took 500 MB before
// MaxMessageElements was cut to 512Ki and elements were counted before anything was built.
func TestDeflateBombFailsOnElementLimitWithSmallHeap(t *testing.T) {
	body := bsonArrayOf(4<<20, []byte{bsonNull, 0})
	wire := deflateBest(t, body)
	if len(wire) > 10<<10 {
		t.Fatalf("the bomb compressed to %d bytes; want about 8 KB", len(wire))
	}
	runtime.GC()
	before := totalAlloc()
	_, err := ReadMessage(bufio.NewReader(bytes.NewReader(wire)), DefaultLimits())
	used := totalAlloc() - before
	if !errors.Is(err, ErrMessageTooLarge) || !bytes.Contains([]byte(err.Error()), []byte("MaxMessageElements")) {
		t.Fatalf("ReadMessage = %v, want ErrMessageTooLarge naming MaxMessageElements", err)
	}
	// The inflated bytes (8 MB, grown by doubling: under 3x in all) and nothing per element.
	if limit := uint64(3*len(body) + 1<<20); used > limit {
		t.Errorf("decoding a %d-byte bomb allocated %d MB, want under %d MB", len(wire), used>>20, limit>>20)
	}
	t.Logf("%d-byte bomb of %d BSON bytes: refused after allocating %.1f MB", len(wire), len(body), float64(used)/(1<<20))
}

// Eight connections each sending ~66 KB that inflates to 64 MiB took 3.2 GB before: the
// decodes now share MaxDecodingBytes, so they run one or two at a time.
func TestConcurrentDecodesShareTheMemoryBudget(t *testing.T) {
	body := bsonArrayOf(32<<20, []byte{bsonNull, 0}) // 64 MiB
	wire := deflateBest(t, body)
	t.Logf("each bomb: %d compressed bytes, %d MiB inflated", len(wire), len(body)>>20)
	lim := DefaultLimits()
	lim.MaxMessageBytes = len(body)
	lim.MaxCompressedMessageBytes = int64(len(wire))
	lim.MaxDecodingBytes = 96 << 20 // its own budget: other tests use the default's

	var peak atomic.Uint64
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
		for {
			metrics.Read(s)
			if v := s[0].Value.Uint64(); v > peak.Load() {
				peak.Store(v)
			}
			select {
			case <-stop:
				return
			case <-time.After(200 * time.Microsecond):
			}
		}
	}()
	runtime.GC()
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s)
	base := s[0].Value.Uint64()

	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Go(func() {
			_, errs[i] = ReadMessage(bufio.NewReader(bytes.NewReader(wire)), lim)
		})
	}
	wg.Wait()
	close(stop)
	<-sampled
	for i, err := range errs {
		if !errors.Is(err, ErrMessageTooLarge) {
			t.Fatalf("decode %d: %v, want the element limit", i, err)
		}
	}
	grew := peak.Load() - min(base, peak.Load())
	t.Logf("8 concurrent 64 MiB decodes: live heap peaked %d MiB above the start", grew>>20)
	// The 128 MiB budget lets two decodes run at once, each holding its 64 MiB of
	// inflated bytes plus the buffer it grew out of, and the collector may leave the
	// previous decodes' bytes uncollected for a while (under Wine, 320 MiB exactly was
	// seen). Eight at once would hold 512 MiB, which is what this tells apart.
	if limit := uint64(384 << 20); grew > limit {
		t.Errorf("live heap grew %d MiB during the decodes, want under %d MiB", grew>>20, limit>>20)
	}
}

// A decode waits for room in the budget, and gives up with a clear error after
// ReceiveTimeout rather than exceeding it.
func TestDecodeWaitsForTheBudgetThenFails(t *testing.T) {
	lim := DefaultLimits()
	lim.MaxDecodingBytes = 1 << 20 // its own budget
	lim.ReceiveTimeout = 200 * time.Millisecond
	small := writeMessage(t, &ResponseMessage{ID: "small"})

	// A peer that declares a large envelope and then stalls holds the whole budget.
	stalled, peer := net.Pipe()
	defer stalled.Close()
	defer peer.Close()
	held := make(chan error, 1)
	go func() {
		_, err := ReadMessage(bufio.NewReader(stalled), lim)
		held <- err
	}()
	// A stored deflate block of 4 bytes that declare 512 KiB of BSON, flushed (an empty
	// stored block), and no more.
	go peer.Write([]byte{0x00, 0x04, 0x00, 0xfb, 0xff, 0x00, 0x00, 0x08, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff})
	deadline := time.Now().Add(5 * time.Second)
	for decodeBudgetFor(lim.MaxDecodingBytes).TryAcquire(1) {
		decodeBudgetFor(lim.MaxDecodingBytes).Release(1)
		if time.Now().After(deadline) {
			t.Fatal("the stalled decode never reserved the budget")
		}
		time.Sleep(time.Millisecond)
	}

	_, err := ReadMessage(bytes.NewReader(small), lim)
	if !errors.Is(err, ErrDecodingBusy) {
		t.Fatalf("ReadMessage while the budget is held = %v, want ErrDecodingBusy", err)
	}
	peer.Close()
	if err := <-held; err == nil || errors.Is(err, ErrDecodingBusy) {
		t.Fatalf("the stalled decode ended with %v, want a truncated-message error", err)
	}
	// Released: the same message decodes now.
	if _, err := ReadMessage(bytes.NewReader(small), lim); err != nil {
		t.Fatalf("after the stalled decode ended: %v", err)
	}
}
