package files

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"testing"
	"time"
)

// blockingReader gives its bytes, then blocks until release is closed.
type blockingReader struct {
	r       io.Reader
	release chan struct{}
}

func (b *blockingReader) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if err == io.EOF {
		<-b.release
		return 0, io.ErrUnexpectedEOF
	}
	return n, err
}

// While an upload is in flight the journal names its temporary file; once
// it is over (done or failed) the journal is empty again.
func TestUploadJournalRecordsTheTemporaryFileInFlight(t *testing.T) {
	journal := t.TempDir()
	target := filepath.Join(t.TempDir(), "elsewhere", "pkg.zip") // anywhere on the machine
	s := &Store{Home: t.TempDir(), Journal: journal}
	br := &blockingReader{r: bytes.NewReader(make([]byte, 1000)), release: make(chan struct{})}
	done := make(chan error)
	go func() {
		_, err := s.Upload(target, br, 1<<20)
		done <- err
	}()
	var named string
	deadline := time.Now().Add(10 * time.Second)
	for named == "" {
		if ents, _ := os.ReadDir(journal); len(ents) == 1 {
			b, _ := os.ReadFile(filepath.Join(journal, ents[0].Name()))
			named = string(b)
		}
		if time.Now().After(deadline) {
			t.Fatal("no journal record while the upload was in flight")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if filepath.Dir(named) != filepath.Dir(target) || !isUploadTempName(filepath.Base(named)) {
		t.Errorf("the record names %s, not a temporary beside %s", named, target)
	}
	if _, err := os.Stat(named); err != nil {
		t.Errorf("the recorded temporary file does not exist: %v", err)
	}
	close(br.release)
	if err := <-done; err == nil {
		t.Fatal("a short upload succeeded")
	}
	if ents, _ := os.ReadDir(journal); len(ents) != 0 {
		t.Errorf("records left after the upload ended: %v", ents)
	}
	if _, err := s.Upload(target, bytes.NewReader([]byte("ok")), 2); err != nil {
		t.Fatal(err)
	}
	if ents, _ := os.ReadDir(journal); len(ents) != 0 {
		t.Errorf("records left after a successful upload: %v", ents)
	}
}

// The sweep removes only what a record names, only our temporaries' names,
// only regular files older than the start; and the records it has dealt with.
func TestSweepInterruptedUploadsRemovesOnlyOldTemporariesItRecorded(t *testing.T) {
	journal, dir := t.TempDir(), t.TempDir()
	start := time.Now()
	old, fresh := start.Add(-time.Hour), start.Add(time.Hour)
	file := func(name string, mtime time.Time) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte("partial"), 0o600); err != nil {
			t.Fatal(err)
		}
		os.Chtimes(p, mtime, mtime)
		return p
	}
	record := func(name, path string, mtime time.Time) string {
		p := filepath.Join(journal, name+recordSuffix)
		os.WriteFile(p, []byte(path), 0o600)
		os.Chtimes(p, mtime, mtime)
		return p
	}
	crashed := file(".big.bin.upload-12345", old)
	record("a", crashed, old)
	freshTemp := file(".live.bin.upload-999", fresh)
	record("b", freshTemp, old)
	notOurs := file("victim.txt", old)
	record("c", notOurs, old)
	unrecorded := file(".other.bin.upload-777", old)
	link := filepath.Join(dir, ".link.upload-1")
	survivors := []string{freshTemp, notOurs, unrecorded}
	err := os.Symlink(notOurs, link)
	if err == nil {
		_, err = os.Lstat(link)
	}
	if err == nil {
		record("d", link, old)
		survivors = append(survivors, link)
	} else if runtime.GOOS == "windows" {
		// Creating a symlink needs SeCreateSymbolicLinkPrivilege (or
		// developer mode) on Windows; Wine reports success and makes
		// nothing that can be found.
		t.Logf("the recorded-symlink case is not covered here: %v", err)
	} else {
		t.Fatal(err)
	}
	record("e", "relative/.x.upload-1", old)
	laterRecord := record("f", file(".later.bin.upload-5", old), fresh)

	removed, n, err := SweepInterruptedUploads(journal, start)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(removed, []string{crashed}) || n != int64(len("partial")) {
		t.Errorf("removed %v (%d bytes), want only %s", removed, n, crashed)
	}
	for _, p := range append(survivors, laterRecord) {
		if _, err := os.Lstat(p); err != nil {
			t.Errorf("%s was removed: %v", p, err)
		}
	}
	if ents, _ := os.ReadDir(journal); len(ents) != 1 {
		t.Errorf("want only the record written after the start left, got %v", ents)
	}
	if removed, _, err := SweepInterruptedUploads(filepath.Join(journal, "missing"), start); err != nil || len(removed) != 0 {
		t.Errorf("a missing journal: %v %v", removed, err)
	}
}
