package scripts

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// BenchmarkLogAppend measures appending output lines to the durable log, the supervisor's
// per-line cost (batches of 64, as a busy script produces them; sync as the supervisor does
// at most once per LogSyncInterval, so not per batch here).
func BenchmarkLogAppend(b *testing.B) {
	path := filepath.Join(b.TempDir(), logFileName)
	w, err := openLogWriter(path)
	if err != nil {
		b.Fatal(err)
	}
	defer w.close()
	text := strings.Repeat("x", 80)
	batch := make([]logLine, 64)
	for i := range batch {
		batch[i] = logLine{source: StdOut, at: time.Now(), text: text}
	}
	b.SetBytes(int64(len(batch) * len(text)))
	b.ReportAllocs()
	for b.Loop() {
		if err := w.append(batch...); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(batch)), "ns/line")
}

// BenchmarkLogReadAll measures a Status from sequence 0 over a 100,000-line log.
func BenchmarkLogReadAll(b *testing.B) {
	const lines = 100_000
	path := filepath.Join(b.TempDir(), logFileName)
	writeTestLog(b, path, lines)
	b.ReportAllocs()
	for b.Loop() {
		page, err := readLog(path, nil, 0, wholeLog)
		if err != nil || len(page.records) != lines {
			b.Fatal(err, len(page.records))
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*lines), "ns/line")
}

// BenchmarkLogReadTail measures the common poll: the last few lines of a long log, which
// the index makes independent of the log's length.
func BenchmarkLogReadTail(b *testing.B) {
	for _, lines := range []int{1_000, 100_000} {
		b.Run(fmt.Sprint(lines), func(b *testing.B) {
			path := filepath.Join(b.TempDir(), logFileName)
			writeTestLog(b, path, lines)
			var index logIndex
			readLog(path, &index, 0, wholeLog)
			b.ReportAllocs()
			for b.Loop() {
				page, err := readLog(path, &index, int64(lines-10), wholeLog)
				if err != nil || len(page.records) != 10 {
					b.Fatal(err, len(page.records))
				}
			}
		})
	}
}
