package scripts

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A supervisor whose log cannot be written (/dev/full: every write fails with ENOSPC) keeps
// the lines, up to maxUnwrittenLogBytes, and writes them once the log works again, with
// their sequence numbers; lines past the bound are counted, and the log then says how many
// were lost and why. agent/faults shows the same on a real full tmpfs.
func TestSupervisorHoldsLinesWhileTheDiskIsFull(t *testing.T) {
	full, err := os.OpenFile("/dev/full", os.O_WRONLY, 0)
	if err != nil {
		t.Skipf("SKIP: no /dev/full: %v", err)
	}
	defer full.Close()
	s := &supervisor{log: &logWriter{f: full, next: 1}}
	line := strings.Repeat("x", 1000)
	const n = maxUnwrittenLogBytes/1000 + 500 // 500 lines past the bound
	for range n {
		s.writeLines([]logLine{{source: StdOut, at: time.Now().UTC(), text: line}})
	}
	if !s.hasUnwritten() || s.lost != 500 || s.writeErr == nil || !strings.Contains(s.writeErr.Error(), "no space left on device") {
		t.Fatalf("while the disk is full: %d held, %d lost, last error %v; want %d held, 500 lost, ENOSPC", len(s.unwritten), s.lost, s.writeErr, n-500)
	}
	// Space is back.
	path := filepath.Join(t.TempDir(), logFileName)
	w, err := openLogWriter(path)
	if err != nil {
		t.Fatal(err)
	}
	defer w.close()
	s.log = w
	s.writeLines(nil)
	if s.hasUnwritten() || s.lost != 0 || s.logErr == nil {
		t.Fatalf("once space is back: %d held, %d lost, result error %v", len(s.unwritten), s.lost, s.logErr)
	}
	page, err := readLog(path, &logIndex{}, 0, pageLimit{records: 1 << 20, bytes: 64 << 20})
	if err != nil {
		t.Fatal(err)
	}
	last := page.records[len(page.records)-1]
	if len(page.records) != n-500+1 || page.records[0].Sequence != 1 || last.Source != StdErr ||
		!strings.Contains(last.Text, "500 lines of the script's output were lost") || !strings.Contains(last.Text, "no space left on device") {
		t.Errorf("the log after the disk full: %d records (want %d held lines and one saying 500 were lost), last %+v", len(page.records), n-500+1, last)
	}
}
