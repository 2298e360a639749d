package scripts

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

func writeTestLog(t testing.TB, path string, n int) {
	t.Helper()
	w, err := openLogWriter(path)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	for i := 1; i <= n; i++ {
		if err := w.append(logLine{source: Source(i % 3), at: at, text: fmt.Sprintf("line %d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.close(); err != nil {
		t.Fatal(err)
	}
}

func TestLogRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), logFileName)
	at := time.Date(2026, 1, 2, 3, 4, 5, 123456789, time.FixedZone("x", 3600))
	lines := []logLine{
		{StdOut, at, "hello world"},
		{StdErr, at, ""},
		{Debug, at, "  spaces  and\ttabs  "},
		{StdOut, at, "bad utf8 \xff here"},
		{StdOut, at, "embedded\r\nbreaks\nare flattened"},
	}
	if err := appendLogLines(path, survivesPowerLoss, lines...); err != nil {
		t.Fatal(err)
	}
	page, err := readLog(path, nil, 0, wholeLog)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"hello world", "", "  spaces  and\ttabs  ", "bad utf8 \uFFFD here", "embedded breaks are flattened"}
	if len(page.records) != len(want) || page.next != 5 || page.more {
		t.Fatalf("got %d records, next %d, more %v", len(page.records), page.next, page.more)
	}
	for i, r := range page.records {
		if r.Sequence != int64(i+1) || r.Text != want[i] || r.Source != lines[i].source || !r.Occurred.Equal(at) || r.Occurred.Location() != time.UTC {
			t.Errorf("record %d = %+v", i, r)
		}
	}
	raw, _ := os.ReadFile(path)
	if !strings.Contains(string(raw), " 1 stdout 2026-01-02T02:04:05.123456789Z hello world\n") {
		t.Errorf("unexpected encoding:\n%s", raw)
	}
}

func TestLogReadAfterAndIndex(t *testing.T) {
	path := filepath.Join(t.TempDir(), logFileName)
	writeTestLog(t, path, 1000)
	var index logIndex
	for _, after := range []int64{0, 1, 255, 256, 257, 700, 999, 1000, 5000, 3} {
		page, err := readLog(path, &index, after, wholeLog)
		if err != nil {
			t.Fatal(err)
		}
		wantN := max(0, 1000-int(after))
		if len(page.records) != wantN {
			t.Fatalf("after %d: %d records, want %d", after, len(page.records), wantN)
		}
		if wantN > 0 && (page.records[0].Sequence != after+1 || page.records[0].Text != fmt.Sprintf("line %d", after+1)) {
			t.Fatalf("after %d: first record %+v", after, page.records[0])
		}
		wantNext := max(after, 1000)
		if wantN == 0 {
			wantNext = after
		}
		if page.next != wantNext {
			t.Fatalf("after %d: next %d, want %d", after, page.next, wantNext)
		}
	}
	// Records 257, 513 and 769 (record 1 at offset 0 needs none).
	if len(index.checkpoints) != 3 {
		t.Errorf("index has %d checkpoints, want 3", len(index.checkpoints))
	}
}

// A log of long lines gets a checkpoint every indexEveryBytes too, so reading its end does
// not re-read (and re-allocate) everything before it.
func TestLogIndexOfLongLines(t *testing.T) {
	path := filepath.Join(t.TempDir(), logFileName)
	line := strings.Repeat("x", 300<<10)
	lines := make([]logLine, 40)
	for i := range lines {
		lines[i] = logLine{StdOut, time.Now(), line}
	}
	if err := appendLogLines(path, survivesPowerLoss, lines...); err != nil {
		t.Fatal(err)
	}
	var index logIndex
	if _, err := readLog(path, &index, 0, wholeLog); err != nil {
		t.Fatal(err)
	}
	// 40 records of 300 KiB: one checkpoint every fourth record.
	if len(index.checkpoints) != 9 {
		t.Errorf("index has %d checkpoints, want 9", len(index.checkpoints))
	}
	var page logPage
	var err error
	used := allocatedBy(func() { page, err = readLog(path, &index, 38, wholeLog) })
	if err != nil || len(page.records) != 2 || page.records[0].Sequence != 39 {
		t.Fatalf("after 38: %d records, %v", len(page.records), err)
	}
	// The two records and the scanner's one-record buffer (grown by doubling), not the 38
	// records passed over (11 MiB).
	if used > 8*uint64(len(line)) {
		t.Errorf("reading the last 2 of 40 records of %d KiB allocated %d KiB", len(line)>>10, used>>10)
	}
}

// allocatedBy returns runtime.MemStats.TotalAlloc across f: everything f allocated, an
// upper bound on what it can have held.
func allocatedBy(f func()) uint64 {
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	f()
	runtime.ReadMemStats(&m1)
	return m1.TotalAlloc - m0.TotalAlloc
}

// wholeLog reads without bounds, for tests that look at a log, not at paging.
var wholeLog = pageLimit{bytes: -1, records: -1}

func TestLogReadLimit(t *testing.T) {
	path := filepath.Join(t.TempDir(), logFileName)
	writeTestLog(t, path, 100)
	// "line NN" is 7 bytes of text: by size, 8 records a page; by count, 5.
	for _, tc := range []struct {
		limit   pageLimit
		perPage int
	}{
		{pageLimit{bytes: 8*(7+LogRecordWireOverhead) + 3, records: -1}, 8},
		{pageLimit{bytes: -1, records: 5}, 5},
		{pageLimit{bytes: 8*(7+LogRecordWireOverhead) + 3, records: 5}, 5},
	} {
		var got []LogRecord
		next := int64(0)
		for calls := 0; ; calls++ {
			page, err := readLog(path, nil, next, tc.limit)
			if err != nil {
				t.Fatal(err)
			}
			if len(page.records) > tc.perPage {
				t.Fatalf("%+v: a page of %d records, want at most %d", tc.limit, len(page.records), tc.perPage)
			}
			got = append(got, page.records...)
			next = page.next
			if !page.more {
				break
			}
			if len(page.records) != tc.perPage || calls > 50 {
				t.Fatalf("%+v: a page of %d records before the last, want %d", tc.limit, len(page.records), tc.perPage)
			}
		}
		checkRecords(t, got, 100)
	}
	// One record larger than the limit still comes back, alone.
	big := filepath.Join(t.TempDir(), logFileName)
	if err := appendLogLines(big, survivesPowerLoss, logLine{StdOut, time.Now(), strings.Repeat("x", 100)}, logLine{StdOut, time.Now(), "y"}); err != nil {
		t.Fatal(err)
	}
	page, _ := readLog(big, nil, 0, pageLimit{bytes: 10, records: 100})
	if len(page.records) != 1 || !page.more || page.next != 1 {
		t.Fatalf("oversized record: %d records, more %v, next %d", len(page.records), page.more, page.next)
	}
}

func checkRecords(t *testing.T, recs []LogRecord, n int) {
	t.Helper()
	if len(recs) != n {
		t.Fatalf("%d records, want %d", len(recs), n)
	}
	for i, r := range recs {
		if r.Sequence != int64(i+1) || r.Text != fmt.Sprintf("line %d", i+1) {
			t.Fatalf("record %d = %+v", i, r)
		}
	}
}

// A crash in the middle of a write leaves a record without its LF: readers ignore it, the
// next writer cuts it off and carries on with the right sequence number.
func TestLogTornTail(t *testing.T) {
	for _, tail := range []string{"", "1a2b", "0123abcd 11 stdout 2026-01-02T03:04:05Z half a li", "\x00\x00\x00\x00\x00"} {
		t.Run(fmt.Sprintf("%q", tail), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), logFileName)
			writeTestLog(t, path, 10)
			f, _ := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
			f.WriteString(tail)
			f.Close()

			page, err := readLog(path, nil, 0, wholeLog)
			if err != nil {
				t.Fatal(err)
			}
			checkRecords(t, page.records, 10)

			w, err := openLogWriter(path)
			if err != nil {
				t.Fatal(err)
			}
			if w.next != 11 {
				t.Fatalf("writer continues at %d, want 11", w.next)
			}
			w.append(logLine{StdOut, time.Now(), "line 11"})
			w.close()
			page, _ = readLog(path, nil, 0, wholeLog)
			checkRecords(t, page.records, 11)
		})
	}
}

// A finished record that does not check out is reported once with upstream's message.
func TestLogCorruptRecord(t *testing.T) {
	path := filepath.Join(t.TempDir(), logFileName)
	writeTestLog(t, path, 5)
	data, _ := os.ReadFile(path)
	// Flip one byte of record 3's text.
	lines := strings.SplitAfter(string(data), "\n")
	lines[2] = strings.Replace(lines[2], "line 3", "line X", 1)
	os.WriteFile(path, []byte(strings.Join(lines, "")), 0o600)

	page, err := readLog(path, nil, 0, wholeLog)
	if err != nil {
		t.Fatal(err)
	}
	if len(page.records) != 3 || page.next != 3 {
		t.Fatalf("got %d records, next %d:\n%s", len(page.records), page.next, logText(page.records))
	}
	if r := page.records[2]; r.Sequence != 3 || r.Source != StdErr || r.Text != "Corrupt Tentacle log at line 3, no more logs will be read" {
		t.Fatalf("synthetic record %+v", r)
	}
	page, _ = readLog(path, nil, 3, wholeLog)
	if len(page.records) != 0 || page.next != 3 {
		t.Fatalf("after the corrupt record: %d records, next %d", len(page.records), page.next)
	}
}

func TestParseRecordRejects(t *testing.T) {
	good := string(appendRecord(nil, 7, StdErr, time.Now(), "text"))
	good = good[:len(good)-1]
	if _, err := parseRecord([]byte(good), 7, true); err != nil {
		t.Fatalf("good record rejected: %v", err)
	}
	for name, line := range map[string]string{
		"wrong sequence": good,
		"short":          "abc",
		"bad hex":        "zzzzzzzz" + good[8:],
		"bad checksum":   "00000000" + good[8:],
	} {
		want := int64(7)
		if name == "wrong sequence" {
			want = 8
		}
		if _, err := parseRecord([]byte(line), want, true); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestReadMissingLog(t *testing.T) {
	page, err := readLog(filepath.Join(t.TempDir(), "none"), nil, 4, wholeLog)
	if err != nil || len(page.records) != 0 || page.next != 4 {
		t.Fatalf("missing log: %+v, %v", page, err)
	}
}

func logText(logs []LogRecord) string {
	var b strings.Builder
	for _, l := range logs {
		fmt.Fprintf(&b, "%d %v %q\n", l.Sequence, l.Source, l.Text)
	}
	return b.String()
}
