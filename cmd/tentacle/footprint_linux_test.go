package main

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tentacle-go/tentacle/agent/contracts"
	"github.com/tentacle-go/tentacle/internal/releasebuild"
)

// Budgets of the release binary (issue #4; docs/benchmarks.md measures them
// against ssh): at most 25 MB on disk, and an idle agent at most 15 MB
// resident. A dependency that drags megabytes into every process of the
// binary fails here, not months later in a benchmark.
const (
	releaseBinaryBudget = 25_000_000 // bytes
	idleRSSBudget       = 15_000_000 // bytes
)

func TestReleaseFootprintBudgets(t *testing.T) {
	if testing.Short() {
		t.Skip("SKIP: -short: building the release binary takes a while")
	}
	bin := filepath.Join(t.TempDir(), "tentacle")
	// As .goreleaser.yaml builds releases: static, no symbol tables.
	releasebuild.Build(t, filepath.Join("..", ".."), bin, releasebuild.Options{})
	st, err := os.Stat(bin)
	if err != nil {
		t.Fatal(err)
	}
	if st.Size() > releaseBinaryBudget {
		t.Errorf("the release binary is %.1f MB, over its %.0f MB budget", float64(st.Size())/1e6, releaseBinaryBudget/1e6)
	}

	// The cloud firewalls do nothing until a cloud command runs: Go runs
	// every package's initialisation in every process (the agent, each
	// script's supervisor), so theirs must be empty. The SDKs' own cannot
	// be helped (docs/benchmarks.md has their cost).
	trace := exec.Command(bin, "version")
	trace.Env = append(os.Environ(), "GODEBUG=inittrace=1")
	out, err := trace.CombinedOutput()
	if err != nil {
		t.Fatalf("tentacle version: %v\n%s", err, out)
	}
	for line := range strings.Lines(string(out)) {
		for _, pkg := range []string{"firewall/aws", "firewall/azure"} {
			if strings.HasPrefix(line, "init github.com/tentacle-go/tentacle/"+pkg+" ") {
				t.Errorf("package %s does work at start-up, in every process: %s", pkg, strings.TrimSpace(line))
			}
		}
	}

	a := newRealAgent(t)
	a.bin = bin
	a.start()
	// As the benchmark: one call served, then idle.
	if _, err := (contracts.CapabilitiesClient{Caller: a.caller()}).GetCapabilities(t.Context()); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second)
	rss, anon := statusKB(t, a.cmd.Process.Pid, "VmRSS"), statusKB(t, a.cmd.Process.Pid, "RssAnon")
	t.Logf("release binary %.1f MB; idle agent RSS %.1f MB, of which %.1f MB anonymous", float64(st.Size())/1e6, float64(rss*1024)/1e6, float64(anon*1024)/1e6)
	if rss*1024 > idleRSSBudget {
		t.Errorf("the idle agent's RSS is %.1f MB (%.1f MB anonymous), over its %.0f MB budget", float64(rss*1024)/1e6, float64(anon*1024)/1e6, idleRSSBudget/1e6)
	}
}

// statusKB reads a "Name: N kB" line of /proc/PID/status.
func statusKB(t *testing.T, pid int, name string) int64 {
	t.Helper()
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+":"); ok {
			n, err := strconv.ParseInt(strings.Fields(v)[0], 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatalf("no %s in /proc/%d/status", name, pid)
	return 0
}
