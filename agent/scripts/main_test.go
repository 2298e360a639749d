//go:build !windows

package scripts

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestMain(m *testing.M) {
	runHelperProcess()
	code := m.Run()
	if leaked := leakedProcesses(); len(leaked) > 0 {
		fmt.Fprintf(os.Stderr, "FAIL: processes left running by the tests: %v\n", leaked)
		for _, pid := range leaked {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		code = 1
	}
	os.Exit(code)
}

// leakedProcesses lists live processes carrying leakMarker (Linux only: it reads /proc).
func leakedProcesses() []int {
	if runtime.GOOS != "linux" {
		return nil
	}
	var pids []int
	deadline := time.Now().Add(3 * time.Second)
	for {
		pids = pids[:0]
		entries, _ := os.ReadDir("/proc")
		for _, e := range entries {
			pid, err := strconv.Atoi(e.Name())
			if err != nil || pid == os.Getpid() {
				continue
			}
			env, err := os.ReadFile(filepath.Join("/proc", e.Name(), "environ"))
			if err != nil || !bytes.Contains(env, []byte(leakMarker+"\x00")) {
				continue
			}
			if stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat")); err == nil && isZombieStat(string(stat)) {
				continue
			}
			pids = append(pids, pid)
		}
		if len(pids) == 0 || time.Now().After(deadline) {
			return pids
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func isZombieStat(stat string) bool {
	i := strings.LastIndexByte(stat, ')')
	return i >= 0 && i+2 < len(stat) && stat[i+2] == 'Z'
}

// stubPowerShell is a "PowerShell" that exits 0 without running anything, as
// Wine's does: true(1).
func stubPowerShell(t *testing.T, env []string) (string, []string) {
	path, err := exec.LookPath("true")
	if err != nil {
		t.Fatal(err)
	}
	return path, env
}
