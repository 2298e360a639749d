//go:build linux

package faults

import (
	"bytes"
	"context"
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tentacle-go/tentacle/agent/contracts"
)

// smallDisk mounts a tmpfs of size MiB at dir, in the test's own mount namespace.
func smallDisk(t *testing.T, dir string, size int) {
	t.Helper()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", fmt.Sprintf("size=%dm,mode=0700", size), "tentacle-faults", dir).CombinedOutput(); err != nil {
		t.Fatalf("mount tmpfs: %v\n%s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "--lazy", dir).Run() })
	// Read back: dir is that tmpfs.
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil || st.Type != 0x01021994 || int64(st.Blocks)*st.Bsize != int64(size)<<20 {
		t.Fatalf("%s is not a %d MiB tmpfs: %+v %v", dir, size, st, err)
	}
}

// fillDisk writes a file taking all but keep bytes of the file system at dir.
func fillDisk(t *testing.T, dir string, keep int64) string {
	t.Helper()
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	free := int64(st.Bavail) * st.Bsize
	path := filepath.Join(dir, "filler")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 1<<20)
	for left := free - keep; left > 0; left -= int64(len(buf)) {
		if _, err := f.Write(buf[:min(int64(len(buf)), left)]); err != nil {
			break // full already
		}
	}
	if keep == 0 {
		// Read back: nothing is left, not even a page.
		f.Write(buf) // takes whatever the loop's arithmetic left
		if err := syscall.Statfs(dir, &st); err != nil || st.Bavail != 0 {
			t.Fatalf("the disk at %s is not full: %d blocks free (%v)", dir, st.Bavail, err)
		}
	}
	return path
}

// processDone says whether the shell running ticket's script has exited (its output read by
// the supervisor), from the process table: the log cannot say while the disk is full.
func processDone(home, ticket string) bool {
	out, _ := exec.Command("sh", "-c", "ps -eo args | grep -F "+filepath.Join(home, "Work", ticket, "Bootstrap.sh")+" | grep -v grep").CombinedOutput()
	return len(strings.TrimSpace(string(out))) == 0
}

// pausingReader gives first bytes, calls pause once, then gives the rest.
type pausingReader struct {
	r     io.Reader
	first int64
	pause func()
}

func (p *pausingReader) Read(b []byte) (int, error) {
	if p.first <= 0 && p.pause != nil {
		p.pause()
		p.pause = nil
	}
	if p.pause != nil {
		b = b[:min(int64(len(b)), p.first)]
	}
	n, err := p.r.Read(b)
	p.first -= int64(n)
	return n, err
}

// The agent's home is a small disk that fills up during an upload and during a script's
// log: the upload fails with an error that says the disk is full, leaves no file and no
// temporary behind, the agent keeps serving, and once space returns the same upload
// succeeds; the script's log keeps every line written while there was space, the server
// learns the script's outcome, and scripts run again once space returns.
func TestDiskFullDuringUploadAndScriptLog(t *testing.T) {
	if !inOwnNamespaces(t) {
		return
	}
	lim := fastLimits()
	srv := newServer(t, lim)
	home := filepath.Join(t.TempDir(), "home")
	if err := os.Mkdir(home, 0o700); err != nil {
		t.Fatal(err)
	}
	const diskMiB = 160 // the agent keeps 100 MiB free for uploads (agent.MinFreeDiskBytes)
	smallDisk(t, home, diskMiB)
	in := newInstance(t, srv, false, home)
	runAgent(t, in, lim)
	ctx := context.Background()
	files := in.files(srv)

	// 1. An upload that fits when it starts; the disk fills half-way.
	const size = 32 << 20
	content := bytes.Repeat([]byte("0123456789abcdef"), size/16)
	var filler string
	_, err := files.UploadFile(ctx, `Files\package.zip`, &pausingReader{r: bytes.NewReader(content), first: 8 << 20, pause: func() {
		time.Sleep(200 * time.Millisecond)
		filler = fillDisk(t, home, 0)
	}}, size)
	if err == nil || !strings.Contains(err.Error(), "no space left on device") {
		t.Fatalf("upload onto a full disk: %v; want an error saying the disk is full", err)
	}
	t.Logf("the upload's error: %v", err)
	if entries, _ := os.ReadDir(filepath.Join(home, "Files")); len(entries) > 0 {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("after the failed upload, Files holds %v; want nothing (no partial file, no temporary)", names)
	}
	if _, err := (contracts.CapabilitiesClient{Caller: in.caller(srv)}).GetCapabilities(ctx); err != nil {
		t.Errorf("the agent stopped serving on a full disk: %v", err)
	}

	// 2. A script whose log fills the disk: started with little space left.
	os.Remove(filler)
	marker := filepath.Join(t.TempDir(), "ran")
	s := in.scripts(srv)
	const n, interval = 60, 50 * time.Millisecond
	// Each line is followed by 8 KiB of padding, so the log needs new pages all the time.
	cmd := script("LogOnAFullDisk", marker, n, interval, 0)
	cmd.ScriptBody = strings.Replace(cmd.ScriptBody, `echo "line $i";`, `echo "line $i"; head -c 8192 /dev/zero | tr '\0' x; echo;`, 1)
	if _, err := s.StartScript(ctx, cmd); err != nil {
		t.Fatal(err)
	}
	f := &follower{ticket: "LogOnAFullDisk"}
	waitFor(t, 10*time.Second, "the first lines", func() bool { f.poll(ctx, s); return len(f.lines) >= 5 })
	filler = fillDisk(t, home, 0)
	full := time.Now()
	// The server keeps asking while the disk is full.
	for time.Since(full) < 30*interval {
		if err := f.poll(ctx, s); err != nil {
			t.Errorf("GetStatus while the disk is full: %v", err)
		}
		time.Sleep(interval)
	}
	os.Remove(filler)
	f.toCompletion(t, s, 60*time.Second)
	t.Logf("figures: the script with its disk full for %v: %d of %d lines, exit %d", 30*interval, len(f.lines), n, f.code)
	f.checkEveryLineOnce(t, n, 0)
	ranOnce(t, marker)

	// 2b. More output than a supervisor holds back while its log cannot be written: the
	// lines past the bound are lost, and the log and the exit code say so.
	lossy := script("LosesLines", filepath.Join(t.TempDir(), "ran"), 1, 0, 0)
	lossy.ScriptBody = "echo line 1\nwhile [ ! -e go ]; do sleep 0.05; done\nhead -c 6000000 /dev/zero | tr '\\0' x | fold -w 1000\necho done\n"
	if _, err := s.StartScript(ctx, lossy); err != nil {
		t.Fatal(err)
	}
	lf := &follower{ticket: "LosesLines"}
	waitFor(t, 10*time.Second, "the first line", func() bool { lf.poll(ctx, s); return len(lf.lines) >= 1 })
	filler = fillDisk(t, home, 0)
	// The go-ahead, made in the workspace while the disk is full (an empty file takes no block).
	if err := os.WriteFile(filepath.Join(home, "Work", "LosesLines", "go"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 60*time.Second, "the script's shell to end while the disk is full", func() bool { return processDone(home, "LosesLines") })
	os.Remove(filler)
	lf.toCompletion(t, s, 60*time.Second)
	st, err := s.GetStatus(ctx, contracts.ScriptStatusRequestV2{Ticket: contracts.ScriptTicket{TaskID: "LosesLines"}, LastLogSequence: 0})
	var said string
	for _, l := range st.Logs {
		if l.Source == contracts.SourceStdErr && strings.Contains(l.Text, "were lost") {
			said = l.Text
		}
	}
	if err != nil || lf.code != contracts.ExitFatal || !strings.Contains(said, "no space left on device") {
		t.Errorf("a script whose output overflowed while its disk was full: exit %d (want %d), error line %q (want one saying lines were lost to a full disk), %v", lf.code, contracts.ExitFatal, said, err)
	}
	t.Logf("figures: 6 MB of output while the disk was full (4 MiB held): exit %d, the log says %q", lf.code, said)

	// 3. Space is back: the same upload succeeds, whole.
	up, err := files.UploadFile(ctx, `Files\package.zip`, bytes.NewReader(content), size)
	sum := sha1.Sum(content)
	if err != nil || up.Hash == nil || *up.Hash != hex.EncodeToString(sum[:]) {
		t.Fatalf("the upload once space returned: %+v %v", up, err)
	}
	after := &follower{ticket: "AfterTheDiskFull"}
	if _, err := s.StartScript(ctx, script("AfterTheDiskFull", filepath.Join(t.TempDir(), "ran"), 3, 0, 0)); err != nil {
		t.Fatal(err)
	}
	after.toCompletion(t, s, 30*time.Second)
	after.checkEveryLineOnce(t, 3, 0)
}
