//go:build linux

package faults

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tentacle-go/tentacle/agent/contracts"
)

// stallingReader gives n bytes, then blocks until stop is closed.
type stallingReader struct {
	n    int64
	stop chan struct{}
}

func (r *stallingReader) Read(b []byte) (int, error) {
	if r.n <= 0 {
		<-r.stop
		return 0, context.Canceled
	}
	k := min(int64(len(b)), r.n)
	clear(b[:k])
	r.n -= k
	return int(k), nil
}

// kill -9 of the agent while CompleteScript deletes a large workspace (at several points
// of the deletion) and while an upload is half-way: after the next start, nothing is left
// behind (no half-deleted workspace, no temporary or half-written upload, no spooled
// stream), each completed ticket's workspace is either whole or gone, and a script that was
// running across every kill is re-attached and reports every line once and its exit code.
func TestKill9DuringCompleteScriptAndUpload(t *testing.T) {
	lim := fastLimits()
	srv := newServer(t, lim)
	in := newInstance(t, srv, false, "")
	p := startAgentProcess(t, in, lim)
	s := in.scripts(srv)
	ctx := context.Background()

	survivorMarker := filepath.Join(t.TempDir(), "ran")
	const n, interval = 40, 100 * time.Millisecond
	if _, err := s.StartScript(ctx, script("Survivor", survivorMarker, n, interval, 4)); err != nil {
		t.Fatal(err)
	}
	const files = 3000
	delays := []time.Duration{0, time.Millisecond, 3 * time.Millisecond, 10 * time.Millisecond, 30 * time.Millisecond}
	var tickets []string
	for i, d := range delays {
		ticket := fmt.Sprintf("Heavy%d", i)
		tickets = append(tickets, ticket)
		cmd := script(ticket, filepath.Join(t.TempDir(), "ran"), 1, 0, 0)
		cmd.ScriptBody = fmt.Sprintf("mkdir many && cd many && seq -f f%%g 1 %d | xargs touch && echo line 1\n", files)
		if _, err := s.StartScript(ctx, cmd); err != nil {
			t.Fatal(err)
		}
		f := &follower{ticket: ticket}
		f.toCompletion(t, s, 30*time.Second)
		completed := make(chan error, 1)
		go func() {
			completed <- s.CompleteScript(ctx, contracts.CompleteScriptCommandV2{Ticket: contracts.ScriptTicket{TaskID: ticket}})
		}()
		time.Sleep(d)
		p.kill9()
		<-completed
		p = startAgentProcess(t, in, lim)
	}

	// An upload cut by kill -9 half-way.
	stop := make(chan struct{})
	uploaded := make(chan error, 1)
	go func() {
		_, err := in.files(srv).UploadFile(ctx, `Files\big.bin`, &stallingReader{n: 4 << 20, stop: stop}, 16<<20)
		uploaded <- err
	}()
	time.Sleep(500 * time.Millisecond)
	p.kill9()
	close(stop)
	<-uploaded
	p = startAgentProcess(t, in, lim)

	// Nothing left behind once the new agent has started.
	work := filepath.Join(in.home, "Work")
	waitFor(t, 10*time.Second, "no half-deleted workspace (tombstone) left", func() bool {
		entries, _ := os.ReadDir(work)
		for _, e := range entries {
			if strings.HasPrefix(e.Name(), ".") {
				return false
			}
		}
		return true
	})
	whole, gone := 0, 0
	for _, ticket := range tickets {
		dir := filepath.Join(work, ticket)
		if _, err := os.Stat(dir); os.IsNotExist(err) {
			gone++
			continue
		}
		entries, err := os.ReadDir(filepath.Join(dir, "many"))
		if err != nil || len(entries) != files {
			t.Errorf("%s: a workspace half there after the restart: %d of %d files (%v)", ticket, len(entries), files, err)
		}
		whole++
		// The server completes it again: now it goes.
		if err := s.CompleteScript(ctx, contracts.CompleteScriptCommandV2{Ticket: contracts.ScriptTicket{TaskID: ticket}}); err != nil {
			t.Errorf("%s: CompleteScript after the restart: %v", ticket, err)
		}
		waitFor(t, 10*time.Second, ticket+" removed by CompleteScript", func() bool { _, err := os.Stat(dir); return os.IsNotExist(err) })
	}
	for _, dir := range []string{filepath.Join(in.home, "Files"), filepath.Join(in.home, ".spool"), filepath.Join(in.home, ".upload-journal")} {
		entries, _ := os.ReadDir(dir)
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		if len(names) > 0 {
			t.Errorf("%s after kill -9 mid-upload and a restart: %v; want nothing (no temporary, no half-written file)", dir, names)
		}
	}

	f := &follower{ticket: "Survivor"}
	f.toCompletion(t, s, n*interval+30*time.Second)
	f.checkEveryLineOnce(t, n, 4)
	ranOnce(t, survivorMarker)
	t.Logf("figures: %d kill -9 during CompleteScript of a %d-file workspace (after %v): %d workspaces whole after the restart, %d gone, none half; 1 kill -9 mid-upload: nothing left; the script running across %d kills: %d lines once, exit %d",
		len(delays), files, delays, whole, gone, len(delays)+1, len(f.lines), f.code)
}
