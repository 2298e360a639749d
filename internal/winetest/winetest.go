//go:build linux

// Package winetest runs the Windows build for real, under Debian's Wine 8.0
// (shared recipe: windows-under-wine.md), for `make test-windows` and for
// end-to-end tests that drive tentacle.exe from the Linux build.
//
// Go 1.26 binaries need two workarounds under Wine 8.0, which a Toolchain
// carries:
//   - a bcryptprimitives.dll exporting ProcessPrng (Go calls it at start-up;
//     Wine 8.0 has none), built with mingw and copied into every Prefix;
//   - a one-file overlay of the standard library (go build -overlay) whose
//     FileDispositionInformationEx fallback also accepts Wine's
//     STATUS_NOT_IMPLEMENTED, without which os.RemoveAll (and every
//     t.TempDir cleanup) fails with "Invalid function.".
//
// Both are built once and cached under the repository's .cache/wine, keyed by
// their inputs (the shim's source, the Go version). Typical use in a test:
//
//	tc := winetest.Require(t)                       // skips, saying why, without wine64/mingw
//	exe := tc.BuildExe(t, "./cmd/tentacle")         // GOOS=windows go build with the overlay
//	p := winetest.NewPrefix(t, tc)                  // fresh prefix, wineserver -k at cleanup
//	out, err := p.Command(ctx, exe, "version").CombinedOutput()
package winetest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"
)

// AptPackages are the Debian packages a Toolchain needs (the Makefile's
// WINE_APT_PACKAGES installs the same).
const AptPackages = "wine64 gcc-mingw-w64-x86-64"

// Loader is Debian's 64-bit Wine loader (not on PATH).
const Loader = "/usr/lib/wine/wine64"

// wineserverPath is the wine64 package's server, used for `wineserver -k`.
const wineserverPath = "/usr/lib/wine/wineserver64"

const mingwCC = "x86_64-w64-mingw32-gcc"

// prngShimSource implements ProcessPrng on top of advapi32's
// SystemFunction036 (RtlGenRandom), which Wine 8.0 has.
const prngShimSource = `#include <windows.h>
typedef BOOLEAN (WINAPI *rtlgen)(PVOID, ULONG);
__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len) {
  static rtlgen f = 0;
  if (!f) f = (rtlgen)GetProcAddress(LoadLibraryA("advapi32.dll"), "SystemFunction036");
  while (len > 0) {
    ULONG n = len > 0x10000000 ? 0x10000000 : (ULONG)len;
    if (!f(data, n)) return FALSE;
    data += n; len -= n;
  }
  return TRUE;
}
`

// ErrMissingTool says that wine64 or the mingw compiler is not installed.
var ErrMissingTool = errors.New("wine64 or the mingw compiler is missing (apt-get install " + AptPackages + "; `make test-windows` does it)")

// Toolchain is what every Wine run needs: the ProcessPrng shim and the
// standard-library overlay, built and cached.
type Toolchain struct {
	// Shim is bcryptprimitives.dll, copied into each prefix's system32.
	Shim string
	// Overlay is the -overlay file for every Windows build run under Wine.
	Overlay string
}

// Prepare finds the tools and builds (or reuses) the shim and overlay under
// cacheDir. Concurrent callers (test packages running in parallel) build
// once: the work is done under a lock and renamed into place.
func Prepare(cacheDir string) (*Toolchain, error) {
	if runtime.GOARCH != "amd64" {
		return nil, fmt.Errorf("wine64 runs windows/amd64 binaries on an amd64 host, not %s", runtime.GOARCH)
	}
	for _, tool := range []string{Loader, wineserverPath} {
		if _, err := os.Stat(tool); err != nil {
			return nil, fmt.Errorf("%s: %w", tool, ErrMissingTool)
		}
	}
	if _, err := exec.LookPath(mingwCC); err != nil {
		return nil, fmt.Errorf("%s: %w", mingwCC, ErrMissingTool)
	}
	if err := os.MkdirAll(cacheDir, 0o755); err != nil {
		return nil, err
	}
	lock, err := os.OpenFile(filepath.Join(cacheDir, ".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return nil, err
	}
	shim, err := buildShim(cacheDir)
	if err != nil {
		return nil, err
	}
	overlay, err := buildOverlay(cacheDir)
	if err != nil {
		return nil, err
	}
	return &Toolchain{Shim: shim, Overlay: overlay}, nil
}

func shortHash(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:6])
}

// buildShim compiles the shim once per version of its source.
func buildShim(cacheDir string) (string, error) {
	dll := filepath.Join(cacheDir, "shim-"+shortHash(prngShimSource), "bcryptprimitives.dll")
	if _, err := os.Stat(dll); err == nil {
		return dll, nil
	}
	tmp, err := os.MkdirTemp(cacheDir, "shim-tmp-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	src := filepath.Join(tmp, "prng.c")
	if err := os.WriteFile(src, []byte(prngShimSource), 0o644); err != nil {
		return "", err
	}
	if out, err := exec.Command(mingwCC, "-shared", "-O2", "-o", filepath.Join(tmp, "bcryptprimitives.dll"), src).CombinedOutput(); err != nil {
		return "", fmt.Errorf("building the ProcessPrng shim: %v\n%s", err, out)
	}
	if err := os.Rename(tmp, filepath.Dir(dll)); err != nil {
		return "", err
	}
	return dll, nil
}

// overlayTarget is the standard-library file the overlay replaces, and
// overlayLine the fallback case in it that gains STATUS_NOT_IMPLEMENTED.
const (
	overlayTarget = "src/internal/syscall/windows/at_windows.go"
	overlayLine   = "STATUS_NOT_SUPPORTED:     //"
)

// buildOverlay writes the patched at_windows.go and its overlay JSON once
// per Go installation (GOROOT and version).
func buildOverlay(cacheDir string) (string, error) {
	out, err := exec.Command("go", "env", "GOROOT", "GOVERSION").Output()
	if err != nil {
		return "", fmt.Errorf("go env: %v", err)
	}
	fields := strings.Fields(string(out))
	if len(fields) != 2 {
		return "", fmt.Errorf("go env GOROOT GOVERSION printed %q", out)
	}
	goroot, goversion := fields[0], fields[1]
	dir := filepath.Join(cacheDir, "overlay-"+goversion+"-"+shortHash(goroot))
	overlay := filepath.Join(dir, "overlay.json")
	if _, err := os.Stat(overlay); err == nil {
		return overlay, nil
	}
	target := filepath.Join(goroot, filepath.FromSlash(overlayTarget))
	src, err := os.ReadFile(target)
	if err != nil {
		return "", err
	}
	if strings.Count(string(src), overlayLine) != 1 {
		return "", fmt.Errorf("%s (%s) no longer has the line %q the Wine overlay patches: check whether Go now falls back on STATUS_NOT_IMPLEMENTED itself and update internal/winetest", target, goversion, overlayLine)
	}
	patched := strings.Replace(string(src), overlayLine, "STATUS_NOT_SUPPORTED, NTStatus(0xC0000002): // Wine 8.0 answers STATUS_NOT_IMPLEMENTED;", 1)
	tmp, err := os.MkdirTemp(cacheDir, "overlay-tmp-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	if err := os.WriteFile(filepath.Join(tmp, "at_windows.go"), []byte(patched), 0o644); err != nil {
		return "", err
	}
	spec, err := json.Marshal(map[string]map[string]string{"Replace": {target: filepath.Join(dir, "at_windows.go")}})
	if err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(tmp, "overlay.json"), spec, 0o644); err != nil {
		return "", err
	}
	if err := os.Rename(tmp, dir); err != nil {
		return "", err
	}
	return overlay, nil
}

// GoCommand is `go <verb> args...` for windows/amd64 with the overlay, run
// in dir (a package or the module root).
func (tc *Toolchain) GoCommand(ctx context.Context, dir, verb string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, "go", append([]string{verb, "-overlay", tc.Overlay}, args...)...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOOS=windows", "GOARCH=amd64", "CGO_ENABLED=0")
	return cmd
}

// Prefix is one Wine prefix (a C: drive, registry and wineserver of its
// own) with the shim installed.
type Prefix struct {
	Dir string
}

// prefixInitTimeout bounds Wine's first start in a new prefix (about 15 s;
// minutes when the machine is loaded). A variable for its test.
var prefixInitTimeout = 4 * time.Minute

// NewPrefix makes a fresh prefix in dir (emptied first) and installs the
// shim. About 15 s.
//
// Wine's first start in a new prefix (wineboot --init) has been seen to hang
// for good: its rundll32, installing wine.inf, blocked reading a pipe only it
// writes, with the prefix's wineserver idle (2026-12-03, two prefixes made at
// once while other builds loaded the machine). A start that takes longer than
// prefixInitTimeout is killed with its wineserver, and the prefix made again
// once, so that the run reports a failure instead of waiting forever.
func (tc *Toolchain) NewPrefix(ctx context.Context, dir string) (*Prefix, error) {
	var err error
	for range 2 {
		var p *Prefix
		if p, err = tc.newPrefix(ctx, dir); err == nil || ctx.Err() != nil {
			return p, err
		}
	}
	return nil, err
}

func (tc *Toolchain) newPrefix(ctx context.Context, dir string) (*Prefix, error) {
	if err := os.RemoveAll(dir); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	p := &Prefix{Dir: dir}
	// Any command creates the prefix; wineboot's complaint about the 32-bit
	// rundll32 (no wine32 here) is harmless.
	initCtx, cancel := context.WithTimeout(ctx, prefixInitTimeout)
	defer cancel()
	cmd := p.Command(initCtx, "cmd", "/c", "exit")
	// The output goes to a file, not a pipe: wineboot's children (services.exe,
	// winedevice.exe) inherit it and live on for a while after cmd exits, and
	// waiting for a pipe's end waited for them (on a loaded machine past any
	// WaitDelay: "WaitDelay expired before I/O complete" for a prefix that was
	// fine).
	log, err := os.CreateTemp("", "wine-prefix-init-")
	if err != nil {
		return nil, err
	}
	defer os.Remove(log.Name())
	defer log.Close()
	cmd.Stdout, cmd.Stderr = log, log
	cmd.WaitDelay = 5 * time.Second // after a kill, the kill's own children
	err = cmd.Run()
	if err == nil {
		// Then wait for Wine to be done with the new prefix (its wineserver
		// ends a few seconds after its last client, which wineboot's children
		// are): a `wineserver -p` (KeepServer) while it lingers fails.
		wait := exec.CommandContext(initCtx, wineserverPath, "-w")
		wait.Env = p.Env()
		if werr := wait.Run(); werr != nil {
			err = fmt.Errorf("waiting for the new prefix's wineserver to end: %v", werr)
		}
	}
	if err != nil {
		p.Close() // kills the prefix's wineserver, and with it wineboot's processes
		if initCtx.Err() != nil && ctx.Err() == nil {
			err = fmt.Errorf("no answer in %v", prefixInitTimeout)
		}
		out, _ := os.ReadFile(log.Name())
		return nil, fmt.Errorf("creating the Wine prefix %s: %v\n%s", dir, err, out)
	}
	sys32 := filepath.Join(dir, "drive_c", "windows", "system32")
	dll, err := os.ReadFile(tc.Shim)
	if err == nil {
		err = os.WriteFile(filepath.Join(sys32, "bcryptprimitives.dll"), dll, 0o644)
	}
	if err != nil {
		p.Close()
		return nil, fmt.Errorf("installing the ProcessPrng shim in %s: %v", sys32, err)
	}
	return p, nil
}

// Env is the environment Wine runs with for this prefix: the caller's,
// with WINEPREFIX set and Wine's debug channels off.
func (p *Prefix) Env() []string {
	return append(os.Environ(), "WINEPREFIX="+p.Dir, "WINEDEBUG=-all")
}

// Command runs a Windows program (a host path to an .exe, or the name of
// one of Wine's own, like "cmd") under Wine in this prefix. Wine passes the
// environment through: a path in it must be a Windows path (WindowsPath).
func (p *Prefix) Command(ctx context.Context, exe string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, Loader, append([]string{exe}, args...)...)
	cmd.Env = p.Env()
	return cmd
}

// KeepServer keeps the prefix's wineserver running until Close, even when
// no Windows program is left: otherwise it exits a few seconds after the
// last one, and takes services.exe and every service it started with it.
// Tests of the Service Control Manager need it.
func (p *Prefix) KeepServer() error {
	// No pipes: a server started here goes to the background with them,
	// and waiting for their end would wait for Close.
	cmd := exec.Command(wineserverPath, "-p")
	cmd.Env = p.Env()
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("wineserver -p: %v", err)
	}
	return nil
}

// DriveC is the host directory that is C:\ in this prefix.
func (p *Prefix) DriveC() string { return filepath.Join(p.Dir, "drive_c") }

// DriveFiles lists every file and folder under the prefix's C: drive, by
// path relative to it.
func (p *Prefix) DriveFiles() map[string]bool {
	files := map[string]bool{}
	root := p.DriveC()
	filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err == nil && path != root {
			rel, _ := filepath.Rel(root, path)
			files[rel] = true
		}
		return nil
	})
	return files
}

// LeftOnDrive lists, sorted, what is on C: now and was not in before (a
// DriveFiles taken before an install), but for instance data, which an
// uninstall keeps on purpose, and the files Wine itself writes.
func (p *Prefix) LeftOnDrive(before map[string]bool) []string {
	var left []string
	for f := range p.DriveFiles() {
		if before[f] || isInstanceData(f) || isWineOwn(f) {
			continue
		}
		left = append(left, f)
	}
	slices.Sort(left)
	return left
}

// isInstanceData is what uninstall keeps on purpose: the instances'
// configuration and home folders, the instance index, the machine key.
func isInstanceData(rel string) bool {
	rel = filepath.ToSlash(rel)
	return rel == "Octopus" || strings.HasPrefix(rel, "Octopus/") ||
		rel == "ProgramData/Octopus" || strings.HasPrefix(rel, "ProgramData/Octopus/")
}

// isWineOwn are files Wine itself writes while the programs run (its
// per-user temp files, msiexec's log), none of them ours.
func isWineOwn(rel string) bool {
	rel = filepath.ToSlash(rel)
	// Windows Installer's cache folder (a real Windows always has it; the
	// cached copies of our MSI in it are removed at uninstall).
	return rel == "windows/Installer" ||
		strings.HasPrefix(rel, "users/") && strings.Contains(rel, "/Temp")
}

// Close stops the prefix's wineserver and every Windows process in it
// (services included).
func (p *Prefix) Close() error {
	cmd := exec.Command(wineserverPath, "-k")
	cmd.Env = p.Env()
	err := cmd.Run()
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return nil // no server was running
	}
	return err
}

// WindowsPath is how a Windows program in any prefix names an absolute host
// path: Wine maps the host's / to Z:.
func WindowsPath(hostPath string) string {
	return `Z:` + strings.ReplaceAll(filepath.Clean(hostPath), "/", `\`)
}
