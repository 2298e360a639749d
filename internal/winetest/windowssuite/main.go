//go:build linux

// Command windowssuite is `make test-windows`: it builds every package's
// Windows test binary (with the Wine overlay), runs each under Wine from its
// package directory, once all are built, -jobs (4) at a time, each worker
// in a fresh prefix of its own (a test binary's Wine start alone is ~3 s,
// Wine runs mostly wait, and tests that touch the registry or the service
// manager must not meet), and with -e2e cmd/tentacle's Wine end-to-end tests
// beside them; it prints every failure's output and
// every skip's reason, then `windows: N passed, N failed, N skipped`
// (top-level tests), and exits 1 when a Windows test failed.
//
// Tests that start the real tentacle binary find a prebuilt tentacle.exe in
// TENTACLE_TEST_BINARY_DIR (Wine has no Go toolchain to build one).
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tentacle-go/tentacle/internal/winetest"
)

type pkg struct {
	importPath, dir, exe string
	testFiles            int // how long it may run, roughly: the longest are built and run first
	buildErr             string
}

func main() {
	cache := flag.String("cache", ".cache/wine", "where the shim, overlay, prefix and test binaries live")
	run := flag.String("run", "", "passed to every test binary as -test.run")
	timeout := flag.Duration("timeout", 10*time.Minute, "per test binary")
	jobs := flag.Int("jobs", 4, "test binaries run at once, each in a prefix of its own")
	e2e := flag.String("e2e", "", "also run cmd/tentacle's Wine end-to-end tests matching this (go test -run), once the test binaries are built")
	flag.Parse()
	patterns := flag.Args()
	if len(patterns) == 0 {
		patterns = []string{"./..."}
	}
	if err := suite(*cache, *run, *timeout, max(*jobs, 1), *e2e, patterns); err != nil {
		fmt.Fprintln(os.Stderr, "windows:", err)
		os.Exit(1)
	}
}

func suite(cacheDir, run string, timeout time.Duration, jobs int, e2e string, patterns []string) error {
	cacheDir, err := filepath.Abs(cacheDir)
	if err != nil {
		return err
	}
	start := time.Now()
	tc, err := winetest.Prepare(cacheDir)
	if err != nil {
		return err
	}
	ctx := context.Background()

	// Fresh prefixes for each run, made while the tests build, one after the
	// other (Wine's first start in a prefix is where it has hung,
	// winetest.NewPrefix, and two at once is when it did); each goes to a
	// worker as soon as it exists.
	prefixes := make(chan *winetest.Prefix, jobs)
	var made []*winetest.Prefix
	var prefixErr error
	prefixesDone := make(chan struct{})
	go func() {
		defer close(prefixesDone)
		defer close(prefixes)
		for i := range jobs {
			dir := filepath.Join(cacheDir, "prefix")
			if i > 0 {
				dir += fmt.Sprint(i + 1)
			}
			// One that cannot be made (after NewPrefix's own retry) leaves the
			// others to run the tests (and is reported below).
			p, err := tc.NewPrefix(ctx, dir)
			if err != nil {
				prefixErr = errors.Join(prefixErr, err)
				continue
			}
			made = append(made, p)
			prefixes <- p
		}
	}()
	defer func() {
		<-prefixesDone
		for _, p := range made {
			p.Close()
		}
	}()

	binDir := filepath.Join(cacheDir, "bin")
	if err := os.RemoveAll(binDir); err != nil {
		return err
	}
	if err := os.MkdirAll(binDir, 0o755); err != nil {
		return err
	}
	pkgs, err := testPackages(ctx, tc, patterns)
	if err != nil {
		return err
	}
	// tentacle.exe first: it compiles most of what the test binaries need,
	// once, and the tests that start it find it ready.
	if err := buildTentacle(ctx, tc, binDir); err != nil {
		return err
	}
	// The Wine runs start once every test binary is built: run beside a cold
	// compile they took up to 9 times as long (halibut's 32 s became 4 min
	// 47 s at load 12), which only timing-sensitive tests would notice.
	allBuilt := buildAll(ctx, tc, pkgs, binDir)

	type report struct {
		counts
		text string
	}
	reports := make([]chan report, len(pkgs), len(pkgs)+1)
	for i := range reports {
		reports[i] = make(chan report, 1)
	}
	if e2e != "" && run == "" {
		// The longest job, beside the packages' runs: its own builds of
		// tentacle.exe only link what buildTentacle compiled.
		r := make(chan report, 1)
		reports = append(reports, r)
		go func() {
			<-allBuilt
			var out bytes.Buffer
			c := runEndToEnd(ctx, e2e, &out)
			r <- report{c, out.String()}
		}()
	}
	next := make(chan int)
	go func() {
		for i := range pkgs {
			next <- i
		}
		close(next)
	}()
	go func() {
		for prefix := range prefixes {
			go func() {
				for i := range next {
					p := pkgs[i]
					<-allBuilt
					var out bytes.Buffer
					var c counts
					if p.buildErr != "" {
						fmt.Fprintf(&out, "FAIL %s (build)\n%s\n", p.importPath, p.buildErr)
						c.failed++
					} else {
						c = runPackage(ctx, prefix, p, run, timeout, binDir, &out)
					}
					reports[i] <- report{c, out.String()}
				}
			}()
		}
		// No prefix at all: nothing can run; say so for every package.
		<-prefixesDone
		if len(made) == 0 {
			for i := range next {
				reports[i] <- report{counts{failed: 1}, fmt.Sprintf("FAIL %s: no Wine prefix to run it in\n", pkgs[i].importPath)}
			}
		}
	}()

	var total counts
	for _, r := range reports {
		rep := <-r
		fmt.Print(rep.text)
		total.add(rep.counts)
	}
	<-allBuilt
	<-prefixesDone
	fmt.Printf("windows: %d passed, %d failed, %d skipped (%s; %d test binaries built, %d prefixes made)\n",
		total.passed, total.failed, total.skipped, time.Since(start).Round(time.Second), len(pkgs), len(made))
	if prefixErr != nil {
		if len(made) == 0 {
			return prefixErr // every package reported failed above
		}
		// Every test ran, in fewer prefixes: said, not failed on (the
		// verdicts are the tests'; this is Wine's trouble, not the code's).
		fmt.Printf("windows: ran in %d of %d prefixes; Wine could not make the others: %v\n", len(made), jobs, prefixErr)
	}
	if total.failed > 0 {
		return fmt.Errorf("%d Windows test(s) failed", total.failed)
	}
	return nil
}

// testBinaryVersions are the versions provision/release's install tests
// stamp into tentacle builds of their own (-X main.version).
var testBinaryVersions = []string{"1.0.0", "2.0.0"}

// buildTentacle builds the programs tests start, into binDir, which tests
// find in TENTACLE_TEST_BINARY_DIR: the tentacle.exe the cmd/tentacle tests
// run and its tentacle-supervisor.exe, the versioned ones (and versioned
// supervisors) of provision/release, and agent/scripts' PowerShell stand-in.
func buildTentacle(ctx context.Context, tc *winetest.Toolchain, binDir string) error {
	type build struct{ pkg, ldflags string }
	builds := map[string]build{
		"tentacle.exe":   {"./cmd/tentacle", ""},
		"powershell.exe": {"./agent/scripts/testdata/powershell", ""},
		// Beside tentacle.exe, as the MSI installs it: agents run scripts under it.
		"tentacle-supervisor.exe": {"./cmd/tentacle-supervisor", ""},
	}
	for _, v := range testBinaryVersions {
		builds["tentacle-"+v+".exe"] = build{"./cmd/tentacle", "-X main.version=" + v}
		// The supervisor a release archive of that version holds.
		builds["tentacle-supervisor-"+v+".exe"] = build{"./cmd/tentacle-supervisor", "-X main.version=" + v}
	}
	for name, b := range builds {
		out, err := tc.GoCommand(ctx, "", "build", "-o", filepath.Join(binDir, name), "-ldflags", b.ldflags, b.pkg).CombinedOutput()
		if err != nil {
			return fmt.Errorf("building %s: %v\n%s", name, err, out)
		}
	}
	return nil
}

type counts struct{ passed, failed, skipped int }

func (c *counts) add(o counts) {
	c.passed += o.passed
	c.failed += o.failed
	c.skipped += o.skipped
}

// testPackages lists the packages (as built for Windows) that have tests.
func testPackages(ctx context.Context, tc *winetest.Toolchain, patterns []string) ([]*pkg, error) {
	args := append([]string{"-f", "{{.ImportPath}}\t{{.Dir}}\t{{len .TestGoFiles}}\t{{len .XTestGoFiles}}"}, patterns...)
	out, err := tc.GoCommand(ctx, "", "list", args...).Output()
	if err != nil {
		return nil, fmt.Errorf("go list: %v", err)
	}
	var pkgs []*pkg
	for line := range strings.Lines(string(out)) {
		f := strings.Split(strings.TrimSpace(line), "\t")
		if len(f) != 4 {
			continue
		}
		in, _ := strconv.Atoi(f[2])
		x, _ := strconv.Atoi(f[3])
		if in+x == 0 {
			continue
		}
		pkgs = append(pkgs, &pkg{importPath: f[0], dir: f[1], testFiles: in + x})
	}
	// The packages with the most test files run first, so that the longest
	// runs do not start last (stable: ties keep go list's order).
	slices.SortStableFunc(pkgs, func(a, b *pkg) int { return b.testFiles - a.testFiles })
	return pkgs, nil
}

// buildAll builds the test binaries two at a time, in pkgs' order (the go
// command parallelises each build too); the channel it returns is closed
// when all have been built.
func buildAll(ctx context.Context, tc *winetest.Toolchain, pkgs []*pkg, binDir string) <-chan struct{} {
	done := make(chan struct{})
	queue := make(chan *pkg)
	go func() {
		for _, p := range pkgs {
			queue <- p
		}
		close(queue)
	}()
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			for p := range queue {
				p.exe = filepath.Join(binDir, strings.ReplaceAll(p.importPath, "/", "_")+".test.exe")
				if out, err := tc.GoCommand(ctx, "", "test", "-c", "-o", p.exe, p.importPath).CombinedOutput(); err != nil {
					p.buildErr = fmt.Sprintf("%v\n%s", err, out)
				}
			}
		})
	}
	go func() {
		wg.Wait()
		close(done)
	}()
	return done
}

// endToEndTimeout bounds cmd/tentacle's Wine end-to-end tests.
const endToEndTimeout = 20 * time.Minute

// runEndToEnd runs cmd/tentacle's Wine end-to-end tests matching pattern
// (tentacle.exe under Wine driven by the Linux build: they make prefixes and
// build what they run themselves) with the release flags, as `make unit`
// built cmd/tentacle's tests, and reports them like a package.
func runEndToEnd(ctx context.Context, pattern string, w io.Writer) counts {
	ctx, cancel := context.WithTimeout(ctx, endToEndTimeout+time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "test", "-count=1", "-json", "-timeout="+endToEndTimeout.String(), "-run", pattern, "./cmd/tentacle/")
	cmd.Env = append(os.Environ(), "TENTACLE_WINE_E2E=1", "CGO_ENABLED=0", "GOFLAGS=-trimpath")
	return reportTests(cmd, "github.com/tentacle-go/tentacle/cmd/tentacle (Wine end-to-end)", w)
}

// event is one line of test2json output.
type event struct {
	Action string
	Test   string
	Output string
}

// runPackage runs one test binary under Wine through test2json and reports
// its top-level tests.
func runPackage(ctx context.Context, prefix *winetest.Prefix, p *pkg, run string, timeout time.Duration, binDir string, w io.Writer) counts {
	args := []string{"tool", "test2json", "-p", p.importPath, winetest.Loader, p.exe, "-test.v=test2json", "-test.timeout=" + timeout.String()}
	if run != "" {
		args = append(args, "-test.run="+run)
	}
	ctx, cancel := context.WithTimeout(ctx, timeout+time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = p.dir
	cmd.Env = append(prefix.Env(), "TENTACLE_TEST_BINARY_DIR="+winetest.WindowsPath(binDir))
	return reportTests(cmd, p.importPath, w)
}

// reportTests runs cmd, which prints test2json events, and reports its
// top-level tests as name: every failure's output, every skip's reason.
func reportTests(cmd *exec.Cmd, name string, w io.Writer) counts {
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return failedPackage(w, name, err.Error())
	}
	started := time.Now()
	if err := cmd.Start(); err != nil {
		return failedPackage(w, name, err.Error())
	}
	output := map[string]*strings.Builder{} // by top-level test; "" is the package's own
	result := map[string]string{}
	var order []string
	pkgAction := ""
	sc := bufio.NewScanner(stdout)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var e event
		if json.Unmarshal(sc.Bytes(), &e) != nil {
			continue
		}
		top, _, _ := strings.Cut(e.Test, "/")
		if output[top] == nil {
			output[top] = &strings.Builder{}
			if top != "" {
				order = append(order, top)
			}
		}
		output[top].WriteString(e.Output)
		switch e.Action {
		case "pass", "fail", "skip":
			if e.Test == "" {
				pkgAction = e.Action
			} else if e.Test == top {
				result[top] = e.Action
			}
		}
	}
	_, _ = io.Copy(io.Discard, stdout)
	waitErr := cmd.Wait()

	var c counts
	var failed, skipped []string
	for _, name := range order {
		switch result[name] {
		case "pass":
			c.passed++
		case "skip":
			c.skipped++
			skipped = append(skipped, name)
		default: // fail, or no result: the binary died in it
			c.failed++
			failed = append(failed, name)
		}
	}
	status := "ok  "
	if len(failed) > 0 || pkgAction != "pass" && pkgAction != "skip" {
		status = "FAIL"
	}
	fmt.Fprintf(w, "%s %s: %d passed, %d failed, %d skipped (%s)\n", status, name, c.passed, c.failed, c.skipped, time.Since(started).Round(100*time.Millisecond))
	sort.Strings(skipped)
	for _, name := range skipped {
		fmt.Fprintf(w, "  skip %s: %s\n", name, skipReason(output[name].String()))
	}
	for _, name := range failed {
		fmt.Fprintf(w, "  --- %s\n%s", name, indent(output[name].String()))
	}
	if status == "FAIL" && len(failed) == 0 {
		// The binary failed outside any test (TestMain, a panic, a leak check).
		c.failed++
		fmt.Fprintf(w, "  package output:\n%s%s", indent(output[""].String()), indent(stderr.String()))
		if waitErr != nil {
			fmt.Fprintf(w, "    (%v)\n", waitErr)
		}
	}
	return c
}

func failedPackage(w io.Writer, name, msg string) counts {
	fmt.Fprintf(w, "FAIL %s: %s\n", name, msg)
	return counts{failed: 1}
}

// skipReason is the message t.Skip printed: the test's output without the
// === RUN / --- SKIP framing.
func skipReason(out string) string {
	var lines []string
	for line := range strings.Lines(out) {
		l := strings.TrimSpace(line)
		if l == "" || strings.HasPrefix(l, "=== ") || strings.HasPrefix(l, "--- SKIP") {
			continue
		}
		lines = append(lines, l)
	}
	return strings.Join(lines, " / ")
}

func indent(s string) string {
	var b strings.Builder
	for line := range strings.Lines(s) {
		b.WriteString("    " + line)
	}
	if s != "" && !strings.HasSuffix(s, "\n") {
		b.WriteString("\n")
	}
	return b.String()
}
