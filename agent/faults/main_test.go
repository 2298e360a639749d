//go:build linux

package faults

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"

	"github.com/tentacle-go/tentacle/agent/scripts"
)

// The test binary doubles as the script supervisor (scripts.Config's default
// SupervisorCommand is this executable followed by scripts.SupervisorArg) and as a
// separate agent process a test can kill -9 (agentProcessArg).
func TestMain(m *testing.M) {
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case scripts.SupervisorArg:
			os.Exit(scripts.Supervise(os.Args[2:]))
		case agentProcessArg:
			os.Exit(runAgentProcess(os.Args[2:]))
		}
	}
	os.Exit(m.Run())
}

// namespaceEnv names the test a re-executed test binary runs inside fresh namespaces.
const namespaceEnv = "TENTACLE_FAULTS_NAMESPACE"

// inOwnNamespaces runs the calling test in a network and mount namespace of its own: it
// re-executes this test binary for that one test under `unshare --net --mount`, reports its
// output and result, and returns false; inside, it brings loopback up and returns true. So
// a test reads:
//
//	if !inOwnNamespaces(t) { return }
//
// Everything the test does then (nft rules on lo, tc qdiscs, tmpfs mounts) is gone with the
// namespaces when it ends, and the host's network and mounts are never touched.
func inOwnNamespaces(t *testing.T) bool {
	t.Helper()
	if os.Getenv(namespaceEnv) == t.Name() {
		if out, err := exec.Command("ip", "link", "set", "lo", "up").CombinedOutput(); err != nil {
			t.Fatalf("bringing lo up in the test's namespace: %v\n%s", err, out)
		}
		return true
	}
	if os.Geteuid() != 0 {
		t.Skip("SKIP: the fault tests make network and mount namespaces, which needs root (CI runs the tests as root)")
	}
	for _, tool := range []string{"unshare", "ip", "nft"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("SKIP: %s is not installed; `make deps` installs it", tool)
		}
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	args := []string{"--net", "--mount", "--propagation", "private", "--", exe,
		"-test.run", "^" + regexp.QuoteMeta(t.Name()) + "$", "-test.count", "1", "-test.v"}
	if d, ok := t.Deadline(); ok {
		args = append(args, "-test.timeout", fmt.Sprint(timeUntil(d)))
	}
	cmd := exec.Command("unshare", args...)
	cmd.Env = append(os.Environ(), namespaceEnv+"="+t.Name())
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatalf("unshare: %v", err)
	}
	skipped := ""
	sc := bufio.NewScanner(out)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "=== RUN") || strings.HasPrefix(line, "PASS") || strings.HasPrefix(line, "ok ") {
			continue
		}
		if strings.HasPrefix(strings.TrimSpace(line), "--- SKIP: "+t.Name()) {
			skipped = "skipped in its namespace"
		}
		t.Log(line)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("the test failed in its namespaces: %v", err)
	}
	if skipped != "" {
		t.Skip(skipped)
	}
	return false
}
