//go:build linux

package winetest

import (
	"context"
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
