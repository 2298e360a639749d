//go:build linux

package winetest

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A program that draws random bytes and removes a directory tree runs under
// Wine: the shim and the overlay do their jobs.
func TestWorkaroundsLetAGoProgramRun(t *testing.T) {
	tc := Require(t)
	exe := tc.BuildExe(t, "./internal/winetest/testdata/workarounds")
	p := NewPrefix(t, tc)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := p.Command(ctx, exe).CombinedOutput()
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if !strings.HasPrefix(string(out), `removed C:\`) {
		t.Errorf("output %q, want the removed temp directory under C:", out)
	}
}

func TestWindowsPath(t *testing.T) {
	if got, want := WindowsPath("/tmp/a b/../c.exe"), `Z:\tmp\c.exe`; got != want {
		t.Errorf("WindowsPath = %q, want %q", got, want)
	}
}

// A first start of Wine in a new prefix that does not finish in time is
// killed with everything Wine started for that prefix, made again once,
// and then reported: the suite fails instead of waiting forever (it once
// waited 9 minutes on a wineboot that never finished).
func TestNewPrefixGivesUpOnAHungFirstStart(t *testing.T) {
	tc := Require(t)
	saved := prefixInitTimeout
	prefixInitTimeout = 200 * time.Millisecond // far less than Wine needs to make a prefix
	defer func() { prefixInitTimeout = saved }()
	dir := filepath.Join(t.TempDir(), "prefix")
	start := time.Now()
	_, err := tc.NewPrefix(context.Background(), dir)
	if err == nil || !strings.Contains(err.Error(), "no answer in 200ms") {
		t.Fatalf("NewPrefix: %v, want it to give up on the first start", err)
	}
	t.Logf("gave up after %v: %v", time.Since(start).Round(time.Millisecond), err)
	// Nothing Wine started for that prefix is left.
	time.Sleep(time.Second)
	procs, _ := filepath.Glob("/proc/[0-9]*/environ")
	for _, f := range procs {
		env, err := os.ReadFile(f)
		if err == nil && strings.Contains(string(env), "WINEPREFIX="+dir+"\x00") {
			cmdline, _ := os.ReadFile(filepath.Join(filepath.Dir(f), "cmdline"))
			t.Errorf("left running for the prefix: %s %q", f, cmdline)
		}
	}
}
