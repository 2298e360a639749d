package halibut

import (
	"runtime"
	"testing"
)

// liveBytes is the heap and stack memory in use after a full collection.
func liveBytes() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse + m.StackInuse
}

// An idle polling connection is what a polling endpoint holds by the thousand (issue #20:
// 10,000 agents on one 2-core machine), and an agent holds one per connection for its
// whole life. Each used to keep a 64 KiB write buffer of its own on both sides, idle or
// not; now a message borrows one only while it is written.
func TestIdlePollingConnectionsHoldNoWriteBuffers(t *testing.T) {
	// In groups below the 32 handshakes from one address an endpoint admits at once.
	const groups, each = 12, 8
	const n = groups * each
	base := liveBytes()
	for range groups {
		startPolling(t, &Service{}, testLimits(), each)
	}
	perPair := (liveBytes() - base) / n
	t.Logf("%d idle polling connections: %.1f KiB of heap and stacks per connection, both ends together", n, float64(perPair)/1024)
	// Both ends' read buffers (32 KiB each) and TLS state stay: 133 KiB here. Two idle
	// write buffers more made it 264 KiB.
	if perPair > 192<<10 {
		t.Errorf("an idle polling connection costs %d KiB (both ends): more than its read buffers and TLS state", perPair>>10)
	}
}
