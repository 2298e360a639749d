package release

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"aead.dev/minisign"
)

// recordedProgress records what a download reported.
type recordedProgress struct {
	name        string
	total, done int64
	added       int64
	finished    []error
}

func (r *recordedProgress) Start(name string, total, done int64) {
	r.name, r.total, r.done = name, total, done
}
func (r *recordedProgress) Add(n int)        { r.added += int64(n) }
func (r *recordedProgress) Finish(err error) { r.finished = append(r.finished, err) }

// rangeLog records the Range header of each request for one file.
type rangeLog struct {
	mu     sync.Mutex
	ranges []string
}

func (l *rangeLog) add(r string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.ranges = append(l.ranges, r)
}

func (l *rangeLog) get() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.ranges...)
}

const cutName = "tentacle_1.4.2_linux_amd64.tar.gz"

// openVersion opens the fixture's 1.4.2 over f with its checksums.
func openVersion(t *testing.T, f Feed, key string) (Version, Checksums) {
	t.Helper()
	all, err := f.Versions(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	v, err := Newest(all, "1.4.2", false)
	if err != nil {
		t.Fatal(err)
	}
	sums, _, _, err := FetchChecksums(context.Background(), f, v, Trust{PublicKey: key})
	if err != nil {
		t.Fatal(err)
	}
	return v, sums
}

func TestDownloadResumesAfterACut(t *testing.T) {
	fx := newFixture(t)
	var log rangeLog
	var cut atomic.Bool
	cut.Store(true)
	u, c := serveHTTPS(t, fx.dir, func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if !strings.HasSuffix(r.URL.Path, cutName) {
				next.ServeHTTP(w, r)
				return
			}
			log.add(r.Header.Get("Range"))
			if cut.CompareAndSwap(true, false) {
				// Promise the whole file, send a third, drop the connection.
				w.Header().Set("Content-Length", fmt.Sprint(artifactSize))
				w.Write(fx.artifact(t, "1.4.2", cutName)[:artifactSize/3])
				w.(http.Flusher).Flush()
				panic(http.ErrAbortHandler)
			}
			next.ServeHTTP(w, r)
		})
	})
	f, err := Open(u, Options{Client: c})
	if err != nil {
		t.Fatal(err)
	}
	v, sums := openVersion(t, f, fx.pubKey)
	dir := t.TempDir()
	_, err = Download(context.Background(), f, v, cutName, sums, dir, nil)
	if err == nil || !strings.Contains(err.Error(), "run the command again to continue") {
		t.Fatalf("a cut download: %v", err)
	}
	info, err := os.Stat(filepath.Join(dir, cutName+PartialSuffix))
	if err != nil || info.Size() != artifactSize/3 {
		t.Fatalf("the partial file after the cut: %v, %v", info, err)
	}
	var p recordedProgress
	path, err := Download(context.Background(), f, v, cutName, sums, dir, &p)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(path); !bytes.Equal(got, fx.artifact(t, "1.4.2", cutName)) {
		t.Error("the resumed file differs from the feed's")
	}
	if want := []string{"", fmt.Sprintf("bytes=%d-", artifactSize/3)}; fmt.Sprint(log.get()) != fmt.Sprint(want) {
		t.Errorf("Range headers %q, want %q", log.get(), want)
	}
	if p.name != cutName || p.total != artifactSize || p.done != artifactSize/3 || p.added != artifactSize-artifactSize/3 || len(p.finished) != 1 || p.finished[0] != nil {
		t.Errorf("progress %+v", p)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("%d entries left in the target, want the file only", len(ents))
	}
}

func TestDownloadRestartsWhenRangeIsIgnored(t *testing.T) {
	fx := newFixture(t)
	u, c := serveHTTPS(t, fx.dir, func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			r.Header.Del("Range")
			next.ServeHTTP(w, r)
		})
	})
	f, err := Open(u, Options{Client: c})
	if err != nil {
		t.Fatal(err)
	}
	v, sums := openVersion(t, f, fx.pubKey)
	dir := t.TempDir()
	// A partial file from an earlier run, which a server that ignores
	// Range cannot continue: it must be started over, not appended to.
	writeFile(t, filepath.Join(dir, cutName+PartialSuffix), bytes.Repeat([]byte("x"), 1000))
	path, err := Download(context.Background(), f, v, cutName, sums, dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(path); !bytes.Equal(got, fx.artifact(t, "1.4.2", cutName)) {
		t.Error("the file differs from the feed's")
	}
}

// TestRefusals: each tampering is refused with its own message and leaves
// nothing in the target directory.
func TestRefusals(t *testing.T) {
	otherPub, _, err := minisign.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	otherKey, _ := otherPub.MarshalText()
	for _, c := range []struct {
		name   string
		tamper func(t *testing.T, fx *fixture)
		key    func(fx *fixture) string
		want   string
	}{
		{"tampered checksum", func(t *testing.T, fx *fixture) {
			p := filepath.Join(fx.dir, "1.4.2", ChecksumsFile)
			data, _ := os.ReadFile(p)
			writeFile(t, p, append([]byte{data[0] ^ 1}, data[1:]...))
		}, func(fx *fixture) string { return fx.pubKey }, "does not match the pinned release key"},
		{"wrong signature", func(t *testing.T, fx *fixture) {}, func(fx *fixture) string { return string(otherKey) }, "does not match the pinned release key"},
		{"missing signature with a pinned key", func(t *testing.T, fx *fixture) {
			os.Remove(filepath.Join(fx.dir, "1.4.2", SignatureFile))
		}, func(fx *fixture) string { return fx.pubKey }, "is not signed"},
		{"truncated file", func(t *testing.T, fx *fixture) {
			p := filepath.Join(fx.dir, "1.4.2", cutName)
			data, _ := os.ReadFile(p)
			writeFile(t, p, data[:len(data)-1])
		}, func(fx *fixture) string { return fx.pubKey }, "does not match its SHA-256"},
		{"tampered file without a key", func(t *testing.T, fx *fixture) {
			p := filepath.Join(fx.dir, "1.4.2", cutName)
			data, _ := os.ReadFile(p)
			data[100] ^= 1
			writeFile(t, p, data)
		}, func(fx *fixture) string { return "" }, "does not match its SHA-256"},
	} {
		t.Run(c.name, func(t *testing.T) {
			fx := newFixture(t)
			c.tamper(t, fx)
			u, client := serveHTTPS(t, fx.dir, nil)
			f, err := Open(u, Options{Client: client})
			if err != nil {
				t.Fatal(err)
			}
			all, err := f.Versions(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			v, err := Newest(all, "1.4.2", false)
			if err != nil {
				t.Fatal(err)
			}
			dir := filepath.Join(t.TempDir(), "to")
			err = func() error {
				sums, _, _, err := FetchChecksums(context.Background(), f, v, Trust{PublicKey: c.key(fx)})
				if err != nil {
					return err
				}
				_, err = Download(context.Background(), f, v, cutName, sums, dir, nil)
				return err
			}()
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want an error saying %q", err, c.want)
			}
			if ents, err := os.ReadDir(dir); len(ents) != 0 || (err != nil && !errors.Is(err, os.ErrNotExist)) {
				t.Errorf("left in the target: %v %v", ents, err)
			}
			// A mirror refuses it the same way and publishes nothing.
			mirror := t.TempDir()
			if _, err := Mirror(context.Background(), f, mirror, "1.4.2", false, Trust{PublicKey: c.key(fx)}, nil); err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("mirror: got %v, want %q", err, c.want)
			}
			if ents, _ := os.ReadDir(mirror); len(ents) != 0 {
				t.Errorf("the refused mirror left %v", ents)
			}
		})
	}
}

func TestSkipSignature(t *testing.T) {
	fx := newFixture(t)
	os.Remove(filepath.Join(fx.dir, "1.4.2", SignatureFile))
	f, _ := Open(fx.dir, Options{})
	v, _ := openVersion(t, f, "")
	if _, _, _, err := FetchChecksums(context.Background(), f, v, Trust{PublicKey: fx.pubKey, SkipSignature: true}); err != nil {
		t.Errorf("with the signature check skipped: %v", err)
	}
}

func TestMirrorMergesTheIndex(t *testing.T) {
	fx := newFixture(t)
	f, _ := Open(fx.dir, Options{})
	mirror := t.TempDir()
	ctx := context.Background()
	if _, err := Mirror(ctx, f, mirror, "~> 1.4", false, Trust{PublicKey: fx.pubKey}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := Mirror(ctx, f, mirror, "2.0.0", false, Trust{PublicKey: fx.pubKey}, nil); err != nil {
		t.Fatal(err)
	}
	m, _ := Open(mirror, Options{})
	all, err := m.Versions(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(versionNames(all)); got != "[2.0.0 1.4.2 1.4.0]" {
		t.Errorf("mirror versions %s", got)
	}
	if ents, _ := os.ReadDir(mirror); len(ents) != 4 {
		t.Errorf("mirror has %d entries, want index.json and three versions", len(ents))
	}
}

func TestLineProgress(t *testing.T) {
	var b bytes.Buffer
	p := &LineProgress{W: &b}
	p.Start("f.tar.gz", 1000, 250)
	for range 75 {
		p.Add(10)
	}
	p.Finish(nil)
	want := "Downloading f.tar.gz: continuing at 250 B of 1000 B\n"
	for pct := 30; pct <= 90; pct += 10 {
		want += fmt.Sprintf("Downloading f.tar.gz: %d%% (%d B of 1000 B)\n", pct, pct*10)
	}
	want += "Downloaded f.tar.gz (1000 B), SHA-256 verified\n"
	if b.String() != want {
		t.Errorf("got\n%s\nwant\n%s", b.String(), want)
	}
}

func TestBarProgressDrawsTheFile(t *testing.T) {
	var b bytes.Buffer
	p := &BarProgress{W: &b}
	p.Start("f.tar.gz", 4<<20, 1<<20)
	p.Add(3 << 20)
	p.Finish(nil)
	if out := b.String(); !strings.Contains(out, "f.tar.gz") || !strings.Contains(out, "100%") || !strings.Contains(out, "4.2/4.2 MB") {
		t.Errorf("bar output %q", out)
	}
}

func TestMirrorContinuesAfterACut(t *testing.T) {
	fx := newFixture(t)
	var cut atomic.Bool
	cut.Store(true)
	u, c := serveHTTPS(t, fx.dir, func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if strings.HasSuffix(r.URL.Path, cutName) && cut.CompareAndSwap(true, false) {
				w.Header().Set("Content-Length", fmt.Sprint(artifactSize))
				w.Write(fx.artifact(t, "1.4.2", cutName)[:artifactSize/2])
				w.(http.Flusher).Flush()
				panic(http.ErrAbortHandler)
			}
			next.ServeHTTP(w, r)
		})
	})
	f, _ := Open(u, Options{Client: c})
	mirror := t.TempDir()
	ctx := context.Background()
	trust := Trust{PublicKey: fx.pubKey}
	if _, err := Mirror(ctx, f, mirror, "1.4.2", false, trust, nil); err == nil || !strings.Contains(err.Error(), "run the command again") {
		t.Fatalf("a cut mirror: %v", err)
	}
	if _, err := os.Stat(filepath.Join(mirror, IndexFile)); err == nil {
		t.Error("a cut mirror published an index")
	}
	if info, err := os.Stat(filepath.Join(mirror, ".partial-1.4.2", cutName+PartialSuffix)); err != nil || info.Size() != artifactSize/2 {
		t.Fatalf("the cut file is not kept for the next run: %v", err)
	}
	if _, err := Mirror(ctx, f, mirror, "1.4.2", false, trust, nil); err != nil {
		t.Fatal(err)
	}
	m, _ := Open(mirror, Options{})
	v, sums := openVersion(t, m, fx.pubKey)
	if _, err := Download(ctx, m, v, cutName, sums, t.TempDir(), nil); err != nil {
		t.Errorf("the mirrored file: %v", err)
	}
	if ents, _ := os.ReadDir(mirror); len(ents) != 2 {
		t.Errorf("mirror holds %d entries, want index.json and 1.4.2", len(ents))
	}
}
