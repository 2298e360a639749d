//go:build !windows

package main

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tentacle-go/tentacle/agent/contracts"
)

// followCounting follows a script like an Octopus Server does (GetStatus with the last
// NextLogSequence until Complete, then CompleteScript) and returns how many stdout lines of
// the script's own it saw and their bytes, keeping none of them.
func followCounting(t *testing.T, s contracts.ScriptServiceV2Client, ticket string) (lines, textBytes int, code int32) {
	t.Helper()
	ctx := context.Background()
	var seq int64
	deadline := time.Now().Add(3 * time.Minute)
	for {
		st, err := s.GetStatus(ctx, contracts.ScriptStatusRequestV2{Ticket: contracts.ScriptTicket{TaskID: ticket}, LastLogSequence: seq})
		if err != nil {
			t.Fatalf("GetStatus after %d: %v", seq, err)
		}
		for _, l := range st.Logs {
			if l.Source == contracts.SourceStdOut && !strings.HasPrefix(l.Text, "##octopus[") && !strings.HasPrefix(l.Text, "Acquired isolation mutex") {
				lines++
				textBytes += len(l.Text)
			}
		}
		seq = st.NextLogSequence
		if st.State == contracts.StateComplete {
			code = st.ExitCode
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("script %s: still %v after %d records", ticket, st.State, seq)
		}
		if len(st.Logs) == 0 {
			time.Sleep(100 * time.Millisecond)
		}
	}
	if err := s.CompleteScript(ctx, contracts.CompleteScriptCommandV2{Ticket: contracts.ScriptTicket{TaskID: ticket}}); err != nil {
		t.Fatal(err)
	}
	return lines, textBytes, code
}

// Two million short lines made every GetStatus fail (a 110 MB response over the 64 MiB
// message limit), so the task could never be followed nor its workspace deleted, and the
// agent grew to 627 MB; CompleteScript read a whole 400 MB log (1.22 GB). Now both a flood
// of short lines and one 200 MB line are followed to the end by the real agent, whose peak
// RSS (VmHWM) stays flat.
func TestAgentFollowsFloodsOfOutputWithFlatMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("scripts print 2 million lines and a 200 MB line; skipped in -short mode")
	}
	a := newRealAgent(t)
	a.start()
	s := a.scripts()
	for _, tc := range []struct {
		ticket, body     string
		lines, textBytes int
	}{
		{"ShortLines", "yes | head -n 2000000", 2_000_000, 2_000_000},
		// Cut into records of MaxLineLength (1 MiB).
		{"LongLine", "head -c 200000000 /dev/zero | tr '\\0' x", (200_000_000 + 1<<20 - 1) / (1 << 20), 200_000_000},
	} {
		if _, err := s.StartScript(context.Background(), startCmd(tc.ticket, tc.body, contracts.NoIsolation)); err != nil {
			t.Fatal(err)
		}
		lines, text, code := followCounting(t, s, tc.ticket)
		if code != 0 || lines != tc.lines || text != tc.textBytes {
			t.Errorf("%s: exit %d, %d lines of %d bytes; want 0, %d lines of %d bytes", tc.ticket, code, lines, text, tc.lines, tc.textBytes)
		}
		if _, err := os.Stat(filepath.Join(a.home(), "Work", tc.ticket)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s: workspace still there after CompleteScript: %v", tc.ticket, err)
		}
	}
	peak := rssKB(a.cmd.Process.Pid)
	t.Logf("agent peak RSS while following both: %d MiB", peak>>10)
	if peak > 150<<10 {
		t.Errorf("the agent's peak RSS was %d MiB: memory grows with output", peak>>10)
	}
}
