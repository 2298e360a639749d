package release

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// BenchmarkDownloadVersusCurl downloads the same file over HTTPS on loopback
// with Download (SHA-256 checked) and with `curl -o`, alternately, and
// reports both rates and their ratio (issue 15's target: >= 0.8).
func BenchmarkDownloadVersusCurl(b *testing.B) {
	curl, err := exec.LookPath("curl")
	if err != nil {
		b.Skip("curl is not installed")
	}
	const size = 256 << 20
	dir := b.TempDir()
	name := "tentacle_1.0.0_linux_amd64.tar.gz"
	os.MkdirAll(filepath.Join(dir, "1.0.0"), 0o755)
	block := make([]byte, 1<<20)
	rand.Read(block)
	f, err := os.Create(filepath.Join(dir, "1.0.0", name))
	if err != nil {
		b.Fatal(err)
	}
	h := sha256.New()
	for range size / len(block) {
		f.Write(block)
		h.Write(block)
	}
	f.Close()
	sums := Checksums{name: hex.EncodeToString(h.Sum(nil))}
	srv := httptest.NewTLSServer(http.FileServer(http.Dir(dir)))
	defer srv.Close()
	ca := filepath.Join(b.TempDir(), "ca.pem")
	os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o644)
	feed, err := Open(srv.URL, Options{Client: srv.Client()})
	if err != nil {
		b.Fatal(err)
	}
	v := Version{Version: "1.0.0"}
	var ours, theirs time.Duration
	b.SetBytes(size)
	b.ResetTimer()
	for range b.N {
		to := b.TempDir()
		start := time.Now()
		if _, err := Download(context.Background(), feed, v, name, sums, to, nil); err != nil {
			b.Fatal(err)
		}
		ours += time.Since(start)
		os.RemoveAll(to)
		out := filepath.Join(b.TempDir(), name)
		start = time.Now()
		if msg, err := exec.Command(curl, "-sSf", "--cacert", ca, "-o", out, srv.URL+"/1.0.0/"+name).CombinedOutput(); err != nil {
			b.Fatalf("curl: %v %s", err, msg)
		}
		theirs += time.Since(start)
		os.Remove(out)
	}
	b.ReportMetric(float64(size)*float64(b.N)/ours.Seconds()/1e6, "ours-MB/s")
	b.ReportMetric(float64(size)*float64(b.N)/theirs.Seconds()/1e6, "curl-MB/s")
	b.ReportMetric(theirs.Seconds()/ours.Seconds(), "ratio")
}
