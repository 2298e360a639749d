//go:build !windows

package main

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tentacle-go/tentacle/agent/contracts"
)

// stallingReader sends n pattern bytes, then blocks until stop is closed.
type stallingReader struct {
	n    int
	stop chan struct{}
}

func (s *stallingReader) Read(b []byte) (int, error) {
	if s.n == 0 {
		<-s.stop
		return 0, io.ErrUnexpectedEOF
	}
	n := min(len(b), s.n)
	for i := range n {
		b[i] = byte(i)
	}
	s.n -= n
	return n, nil
}

// kill -9 of the agent mid-upload leaves a half-written temporary file
// beside the target (anywhere on the machine); the restarted agent removes
// it, and old spooled data streams, and nothing else: not files of other
// names, not temporaries no record names, not files newer than its start.
func TestRestartedAgentSweepsWhatAKilledOneLeft(t *testing.T) {
	a := newRealAgent(t)
	a.start()
	elsewhere := filepath.Join(a.dir, "elsewhere")
	target := filepath.Join(elsewhere, "big.bin")
	stall := &stallingReader{n: 4 << 20, stop: make(chan struct{})}
	defer close(stall.stop)
	go contracts.FileTransferClient{Caller: a.caller()}.UploadFile(context.Background(), target, stall, 1<<30)

	var partial string
	deadline := time.Now().Add(20 * time.Second)
	for partial == "" {
		matches, _ := filepath.Glob(filepath.Join(elsewhere, ".big.bin.upload-*"))
		if len(matches) == 1 {
			if st, err := os.Stat(matches[0]); err == nil && st.Size() > 0 {
				partial = matches[0]
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("the upload's temporary file never appeared")
		}
		time.Sleep(20 * time.Millisecond)
	}
	a.cmd.Process.Signal(syscall.SIGKILL)
	a.cmd.Wait()
	if _, err := os.Stat(partial); err != nil {
		t.Fatalf("kill -9 should have left the partial upload: %v", err)
	}

	spool := filepath.Join(a.home(), ".spool")
	old, future := time.Now().Add(-time.Hour), time.Now().Add(time.Hour)
	write := func(path string, mtime time.Time) string {
		if err := os.WriteFile(path, []byte("leftover"), 0o600); err != nil {
			t.Fatal(err)
		}
		os.Chtimes(path, mtime, mtime)
		return path
	}
	oldSpooled := write(filepath.Join(spool, "halibut-stream-1111"), old)
	freshSpooled := write(filepath.Join(spool, "halibut-stream-2222"), future) // as if written by a running agent
	notOurs := write(filepath.Join(spool, "notes.txt"), old)
	unrecorded := write(filepath.Join(elsewhere, ".other.bin.upload-42"), old)
	someonesFile := write(filepath.Join(elsewhere, "big.bin.upload-7"), old)

	a.start()
	for _, p := range []string{partial, oldSpooled} {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("%s survived the restart", p)
		}
	}
	for _, p := range []string{freshSpooled, notOurs, unrecorded, someonesFile} {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("%s was removed although it is not an old leftover of ours: %v", p, err)
		}
	}
	journal, _ := os.ReadDir(filepath.Join(a.home(), ".upload-journal"))
	if len(journal) != 0 {
		t.Errorf("journal records left after the sweep: %v", journal)
	}
	if b, err := os.ReadFile(filepath.Join(a.home(), "Logs", "OctopusTentacle.txt")); err != nil || !strings.Contains(string(b), "removed temporary files left by an interrupted run") {
		t.Errorf("the sweep was not logged (%v)", err)
	}
}
