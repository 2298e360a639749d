//go:build windows

package scripts

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"unsafe"

	"golang.org/x/sys/windows"
)

// The test binary doubles as the supervisor and as a throwaway agent process,
// as on Unix (main_test.go).
func TestMain(m *testing.M) {
	runHelperProcess()
	os.Exit(m.Run())
}

// standInPowerShell is testdata/powershell, which runs a bootstrap's body with
// cmd.exe: `make test-windows` builds it (TENTACLE_TEST_BINARY_DIR; Wine has
// no Go), elsewhere it is built here.
func standInPowerShell(t *testing.T) string {
	t.Helper()
	if dir := os.Getenv("TENTACLE_TEST_BINARY_DIR"); dir != "" {
		return filepath.Join(dir, "powershell.exe")
	}
	exe := filepath.Join(t.TempDir(), "powershell.exe")
	if out, err := exec.Command("go", "build", "-o", exe, "./testdata/powershell").CombinedOutput(); err != nil {
		t.Fatalf("building the PowerShell stand-in: %v\n%s", err, out)
	}
	return exe
}

// underWine reports whether the tests run under Wine rather than Windows.
func underWine() bool {
	return windows.NewLazySystemDLL("ntdll.dll").NewProc("wine_get_version").Find() == nil
}

// processAlive reports whether pid names a process that has not exited.
func processAlive(pid int) bool {
	h, err := windows.OpenProcess(windows.SYNCHRONIZE|windows.PROCESS_QUERY_LIMITED_INFORMATION, false, uint32(pid))
	if err != nil {
		return false
	}
	defer windows.CloseHandle(h)
	ev, err := windows.WaitForSingleObject(h, 0)
	return err == nil && ev == uint32(windows.WAIT_TIMEOUT)
}

// processesNamed lists the processes whose executable is name.
func processesNamed(t *testing.T, name string) []int {
	t.Helper()
	var pids []int
	for _, e := range processSnapshot(t) {
		if strings.EqualFold(windows.UTF16ToString(e.ExeFile[:]), name) {
			pids = append(pids, int(e.ProcessID))
		}
	}
	return pids
}

func processSnapshot(t *testing.T) []windows.ProcessEntry32 {
	t.Helper()
	snap, err := windows.CreateToolhelp32Snapshot(windows.TH32CS_SNAPPROCESS, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer windows.CloseHandle(snap)
	var all []windows.ProcessEntry32
	var e windows.ProcessEntry32
	e.Size = uint32(unsafe.Sizeof(e))
	for err = windows.Process32First(snap, &e); err == nil; err = windows.Process32Next(snap, &e) {
		all = append(all, e)
	}
	return all
}

// descendants lists the processes started, directly or not, by pid.
func descendants(t *testing.T, pid int) map[int]string {
	t.Helper()
	children := map[uint32][]windows.ProcessEntry32{}
	for _, e := range processSnapshot(t) {
		children[e.ParentProcessID] = append(children[e.ParentProcessID], e)
	}
	out := map[int]string{}
	var walk func(uint32)
	walk = func(p uint32) {
		for _, c := range children[p] {
			if _, seen := out[int(c.ProcessID)]; !seen && c.ProcessID != p {
				out[int(c.ProcessID)] = windows.UTF16ToString(c.ExeFile[:])
				walk(c.ProcessID)
			}
		}
	}
	walk(uint32(pid))
	return out
}

// stubPowerShell is a PowerShell.exe that exits 0 without running anything,
// as Wine's does: the stand-in told to be one.
func stubPowerShell(t *testing.T, env []string) (string, []string) {
	return standInPowerShell(t), append(env, "POWERSHELL_STANDIN_STUB=1")
}
