package agent

import (
	"os"
	"strconv"
	"strings"
	"testing"
)

// initialised lives in the binary's writable data: releasing the start-up
// pages must not reset it to the file's contents.
var initialised = strings.Repeat("x", 3)

func TestReleaseStartupPagesKeepsDataAndUnmapsCode(t *testing.T) {
	initialised = "changed after start-up"
	before := vmRSS(t)
	released, err := releaseStartupPages()
	if err != nil {
		t.Fatal(err)
	}
	after := vmRSS(t)
	t.Logf("released mappings of %d MB; VmRSS %d -> %d kB", released>>20, before, after)
	if released == 0 || after >= before {
		t.Errorf("nothing was unmapped: released %d bytes, VmRSS %d -> %d kB", released, before, after)
	}
	if initialised != "changed after start-up" {
		t.Errorf("a global variable was reset to %q", initialised)
	}
	// The code runs on, mapped back as it is touched.
	if got := strconv.Itoa(12345); got != "12345" {
		t.Errorf("strconv after release: %q", got)
	}
}

func vmRSS(t *testing.T) int64 {
	t.Helper()
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(data)) {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return n
		}
	}
	t.Fatal("no VmRSS in /proc/self/status")
	return 0
}
