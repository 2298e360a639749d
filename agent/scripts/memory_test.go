//go:build !windows

package scripts

import (
	"strings"
	"testing"
	"time"
)

// Memory here is the agent side's, measured in-process (the scripts run under real
// supervisor processes) with allocatedBy.

// waitFinished waits until the script's state on disk is Complete, without reading its log.
func waitFinished(t *testing.T, m *Manager, ticket string, limit time.Duration) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		if st, err := readState(m.workspace(ticket)); err == nil && st.State == Complete {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("script %s did not finish within %v", ticket, limit)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// followBounded pages through a finished script's log as a client does and checks that
// every page keeps to the configured bounds and costs the agent at most maxAlloc. It
// returns the count and text bytes of the script's own stdout records.
func followBounded(t *testing.T, m *Manager, ticket string, maxAlloc uint64) (lines, textBytes int) {
	t.Helper()
	var next int64
	var worst uint64
	pages := 0
	for {
		var st Status
		var err error
		used := allocatedBy(func() { st, err = m.Status(ticket, next) })
		if err != nil {
			t.Fatal(err)
		}
		pages++
		worst = max(worst, used)
		cost := 0
		for i, l := range st.Logs {
			if l.Sequence != next+int64(i)+1 {
				t.Fatalf("page %d: record %d has sequence %d, want %d", pages, i, l.Sequence, next+int64(i)+1)
			}
			cost += len(l.Text) + LogRecordWireOverhead
			if l.Source == StdOut && !strings.HasPrefix(l.Text, "##octopus[") && !strings.HasPrefix(l.Text, "Acquired isolation mutex") {
				lines++
				textBytes += len(l.Text)
			}
		}
		if len(st.Logs) > m.cfg.MaxStatusLogRecords || len(st.Logs) > 1 && cost > m.cfg.MaxStatusLogBytes {
			t.Fatalf("page %d: %d records costing %d bytes; bounds are %d records, %d bytes", pages, len(st.Logs), cost, m.cfg.MaxStatusLogRecords, m.cfg.MaxStatusLogBytes)
		}
		if used > maxAlloc {
			t.Fatalf("page %d (%d records) allocated %d MiB, want at most %d MiB", pages, len(st.Logs), used>>20, maxAlloc>>20)
		}
		next = st.NextLogSequence
		if st.State == Complete {
			break
		}
		if st.State != Running || len(st.Logs) == 0 || pages > 100000 {
			t.Fatalf("page %d: %v with %d records", pages, st.State, len(st.Logs))
		}
	}
	t.Logf("%d pages, the largest allocating %.1f MiB", pages, float64(worst)/(1<<20))
	return lines, textBytes
}

// Two million one-character lines made a 110 MB GetStatus response (over the 64 MiB
// message limit, so the script could never be followed) and cost the agent 627 MB: pages
// were bounded by text bytes only. CompleteScript read the whole log again.
func TestMillionsOfShortLinesArePagedWithBoundedMemory(t *testing.T) {
	m := newTestManager(t, testConfig(t))
	const n = 2_000_000
	mustStart(t, m, StartRequest{Ticket: "ShortLines", ScriptBody: "yes | head -n 2000000"})
	waitFinished(t, m, "ShortLines", 2*time.Minute)

	lines, _ := followBounded(t, m, "ShortLines", 48<<20)
	if lines != n {
		t.Fatalf("followed %d stdout lines, want %d", lines, n)
	}
	var err error
	used := allocatedBy(func() { err = m.Complete("ShortLines") })
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("Complete allocated %d KiB", used>>10)
	if used > 1<<20 {
		t.Errorf("Complete allocated %d MiB; it must not read the log", used>>20)
	}
}

// One 200 MB line without a break is cut into MaxLineLength records, which come back a
// few to a page.
func TestOneVeryLongLineIsPagedWithBoundedMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("writes a 200 MB line; skipped in -short mode")
	}
	m := newTestManager(t, testConfig(t))
	const n = 200_000_000
	mustStart(t, m, StartRequest{Ticket: "LongLine", ScriptBody: "head -c 200000000 /dev/zero | tr '\\0' x"})
	waitFinished(t, m, "LongLine", 2*time.Minute)

	lines, text := followBounded(t, m, "LongLine", 48<<20)
	if text != n || lines != (n+defaultMaxLineLength-1)/defaultMaxLineLength {
		t.Fatalf("followed %d bytes in %d records, want %d bytes in records of at most %d", text, lines, n, defaultMaxLineLength)
	}
	if err := m.Complete("LongLine"); err != nil {
		t.Fatal(err)
	}
}
