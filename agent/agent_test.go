package agent

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/pbkdf2"
	"crypto/sha1"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tentacle-go/tentacle/agent/config"
	"github.com/tentacle-go/tentacle/agent/contracts"
	"github.com/tentacle-go/tentacle/agent/halibut"
	"github.com/tentacle-go/tentacle/agent/scripts"
)

func TestRotatingFileRollsOverAndKeepsN(t *testing.T) {
	path := filepath.Join(t.TempDir(), "Logs", "OctopusTentacle.txt")
	r := &RotatingFile{Path: path, MaxBytes: 100, Keep: 2}
	defer r.Close()
	for i := range 10 {
		fmt.Fprintf(r, "line %02d %s\n", i, strings.Repeat("x", 30))
	}
	for _, p := range []string{path, path + ".1", path + ".2"} {
		st, err := os.Stat(p)
		if err != nil || st.Size() > 100 {
			t.Errorf("%s: %v %v", p, st, err)
		}
	}
	if _, err := os.Stat(path + ".3"); err == nil {
		t.Error("more than Keep old files kept")
	}
	// Windows has no mode bits: the log inherits the ACL of its folder (the
	// instance's home).
	if st, _ := os.Stat(path); runtime.GOOS != "windows" && st.Mode().Perm() != 0o600 {
		t.Errorf("log mode %v", st.Mode().Perm())
	}
}

// Sensitive script files are stored as upstream stores them, so Calamari
// can decrypt them: checked here with an independent decryption, at sizes
// around the AES block and the encryption chunk.
func TestScriptFileEncryptionIsUpstreamFormat(t *testing.T) {
	key, _ := pbkdf2.Key(sha1.New, "s3cret", []byte("Octopuss"), 1000, 16)
	block, _ := aes.NewCipher(key)
	for _, size := range []int{0, 1, 15, 16, 17, scriptFileChunkBytes - 1, scriptFileChunkBytes, scriptFileChunkBytes + 1, 3*scriptFileChunkBytes + 5} {
		plain := bytes.Repeat([]byte(`{"Octopus.Action.Password":"hunter2"}`), size/37+1)[:size]
		r, err := encryptScriptFile(bytes.NewReader(plain), "s3cret")
		if err != nil {
			t.Fatal(err)
		}
		enc, err := io.ReadAll(r)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.HasPrefix(enc, []byte("IV__")) || len(enc) != 20+(size/16+1)*16 {
			t.Fatalf("size %d: %d bytes starting %x", size, len(enc), enc[:20])
		}
		body := append([]byte(nil), enc[20:]...)
		cipher.NewCBCDecrypter(block, enc[4:20]).CryptBlocks(body, body)
		pad := int(body[len(body)-1])
		if pad < 1 || pad > 16 || !bytes.Equal(body[len(body)-pad:], bytes.Repeat([]byte{byte(pad)}, pad)) {
			t.Fatalf("size %d: bad padding %x", size, body[len(body)-pad:])
		}
		if got := body[:len(body)-pad]; !bytes.Equal(got, plain) {
			t.Errorf("size %d: decrypted text differs", size)
		}
	}
}

// A 1 GB sensitive file peaked at 4 GB when it was read whole to be encrypted;
// encryption now streams, so memory does not grow with the file. Measured
// in-process: everything allocated (runtime.MemStats.TotalAlloc) while 256 MiB
// pass through.
func TestScriptFileEncryptionStreams(t *testing.T) {
	const size = 256 << 20
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	r, err := encryptScriptFile(io.LimitReader(zeros{}, size), "s3cret")
	if err != nil {
		t.Fatal(err)
	}
	n, err := io.CopyBuffer(io.Discard, r, make([]byte, 32<<10))
	runtime.ReadMemStats(&m1)
	if err != nil || n != 20+size+16 {
		t.Fatalf("encrypted %d bytes, %v", n, err)
	}
	used := m1.TotalAlloc - m0.TotalAlloc
	t.Logf("encrypting %d MiB allocated %d KiB", size>>20, used>>10)
	if used > 1<<20 {
		t.Errorf("encrypting %d MiB allocated %d KiB; want under 1 MiB whatever the size", size>>20, used>>10)
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

func TestPollingConnectionCount(t *testing.T) {
	s := config.NewSettings("x")
	env := map[string]string{}
	getenv := func(k string) string { return env[k] }
	if n := pollingConnectionCount(s, getenv); n != 1 {
		t.Errorf("default %d", n)
	}
	s.Set(config.KeyPollingConnectionCount, "4")
	if n := pollingConnectionCount(s, getenv); n != 4 {
		t.Errorf("setting %d", n)
	}
	env["TentaclePollingConnectionCount"] = "9"
	if n := pollingConnectionCount(s, getenv); n != 9 {
		t.Errorf("environment must win: %d", n)
	}
	env["TentaclePollingConnectionCount"] = "100000"
	if n := pollingConnectionCount(s, getenv); n != 512 {
		t.Errorf("clamp: %d", n)
	}
}

// An agent started in-process serves capabilities and scripts over real
// TLS, and stops cleanly.
func TestAgentServesAndStops(t *testing.T) {
	home := t.TempDir()
	operator, _ := config.GenerateCertificate()
	cert, _ := config.GenerateCertificate()
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	s := config.NewSettings(filepath.Join(home, "t.config"))
	s.Set(config.KeyHome, home)
	s.Set(config.KeyPortNumber, strconv.Itoa(port))
	s.Set(config.KeyListenIP, "127.0.0.1")
	s.SetTrustedServers([]config.TrustedServer{{Thumbprint: operator.Thumbprint(), CommunicationStyle: config.StyleTentaclePassive}})
	mln, _ := net.Listen("tcp", "127.0.0.1:0")
	metricsAddr := mln.Addr().String()
	mln.Close()
	s.Set(KeyMetricsListenAddress, metricsAddr)
	exe, _ := os.Executable()
	a, err := New(Options{Settings: s, Certificate: cert, MachineKey: config.NewUnixMachineKey(home), Limits: halibut.DefaultLimits(),
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Executable: exe, Getenv: func(string) string { return "" }})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	if a.Addr() == nil {
		t.Fatal("not listening")
	}
	opTLS := operator.TLS()
	client := &halibut.Client{Certificate: &opTLS, Limits: halibut.DefaultLimits()}
	defer client.Close()
	caller := contracts.ListeningCaller{Client: client, Endpoint: halibut.Endpoint{BaseURI: "https://" + a.Addr().String() + "/", Thumbprint: cert.Thumbprint()}}
	caps, err := contracts.CapabilitiesClient{Caller: caller}.GetCapabilities(ctx)
	if err != nil || strings.Join(caps.SupportedCapabilities, ",") != "IScriptService,IFileTransferService,IScriptServiceV2" {
		t.Fatalf("%v %v", caps, err)
	}
	up, err := contracts.FileTransferClient{Caller: caller}.UploadFile(ctx, `Files\a.txt`, strings.NewReader("hello"), 5)
	if err != nil || up.FullPath != filepath.Join(home, "Files", "a.txt") || *up.Hash != "aaf4c61ddcc5e8a2dabede0f3b482cd9aea9434d" {
		t.Errorf("upload %+v %v", up, err)
	}
	if _, err := os.Stat(filepath.Join(home, "livez.heartbeat")); err != nil {
		t.Errorf("no heartbeat: %v", err)
	}
	var metrics string
	for range 50 {
		if resp, err := http.Get("http://" + metricsAddr + "/metrics"); err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			metrics = string(b)
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, want := range []string{"tentacle_up 1", "go_goroutines ", `tentacle_rpc_total{service="ICapabilitiesServiceV2",method="GetCapabilities"} 1`,
		`tentacle_rpc_total{service="IFileTransferService",method="UploadFile"} 1`, "tentacle_listening_connections 1", `tentacle_scripts{state="running"} 0`} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %q:\n%s", want, metrics)
		}
	}
	if resp, err := http.Get("http://" + metricsAddr + "/healthz"); err != nil || resp.StatusCode != 200 {
		t.Errorf("healthz: %v %v", resp, err)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the agent did not stop")
	}
}

// A second agent on the same home stops before it touches anything: it
// would otherwise adopt the first one's scripts and sweep its in-flight
// uploads and spooled streams as leftovers of a crash.
func TestSecondAgentOnTheSameHomeIsRefused(t *testing.T) {
	home := t.TempDir()
	operator, _ := config.GenerateCertificate()
	cert, _ := config.GenerateCertificate()
	s := config.NewSettings(filepath.Join(home, "t.config"))
	s.Set(config.KeyHome, home)
	s.Set(config.KeyPortNumber, "0")
	s.Set(config.KeyListenIP, "127.0.0.1")
	s.SetTrustedServers([]config.TrustedServer{{Thumbprint: operator.Thumbprint(), CommunicationStyle: config.StyleTentaclePassive}})
	exe, _ := os.Executable()
	opts := Options{Settings: s, Certificate: cert, MachineKey: config.NewUnixMachineKey(home), Limits: halibut.DefaultLimits(),
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Executable: exe, Getenv: func(string) string { return "" }}
	first, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	// An upload in flight for the first agent: a spooled stream older than
	// the second agent's start.
	inFlight := filepath.Join(home, ".spool", "halibut-stream-inflight")
	if err := os.WriteFile(inFlight, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-time.Hour)
	os.Chtimes(inFlight, old, old)
	_, err = New(opts)
	if !errors.Is(err, scripts.ErrHomeInUse) || !strings.Contains(err.Error(), home) {
		t.Fatalf("a second agent on the same home: %v", err)
	}
	// Linux names the holder (/proc/locks): here, this test's process.
	if holder := fmt.Sprintf("pid %d: ", os.Getpid()); runtime.GOOS == "linux" && !strings.Contains(err.Error(), holder) {
		t.Errorf("the refusal does not name the holder (%q): %v", holder, err)
	}
	if _, err := os.Stat(inFlight); err != nil {
		t.Errorf("the refused agent swept the first one's spooled stream: %v", err)
	}
	first.close()
	second, err := New(opts)
	if err != nil {
		t.Fatalf("after the first agent stopped: %v", err)
	}
	second.close()
}
