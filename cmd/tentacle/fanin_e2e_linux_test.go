package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/tentacle-go/tentacle/agent/config"
	"github.com/tentacle-go/tentacle/agent/halibut"
)

// Fan-in: N polling agents (the real Poller, many in this process, one certificate and a
// subscription each) on one `tentacle remote serve`. At each step of N: memory per idle
// connection on both sides, and the latency of a call relayed to one agent through the
// endpoint's control port while the rest stay connected. Then the endpoint is restarted and
// every agent must be back within 60 s (their jittered back-off spreads the reconnects).
// make soak goes to 10,000 agents and plots the latency against N
// (TENTACLE_SOAK_OUT/fanin.dat, drawn by gnuplot).
func TestLoadFanIn(t *testing.T) {
	n := loadSize("AGENTS", 200, 10000)
	steps := []int{50, 100, 200}
	if soak() {
		steps = []int{100, 500, 1000, 2500, 5000, 7500, 10000}
	}
	steps = slices.DeleteFunc(steps, func(k int) bool { return k > n })
	if len(steps) == 0 || steps[len(steps)-1] != n {
		steps = append(steps, n)
	}
	dir := t.TempDir()
	op, err := config.GenerateCertificate()
	if err != nil {
		t.Fatal(err)
	}
	agentCert, err := config.GenerateCertificate()
	if err != nil {
		t.Fatal(err)
	}
	pfx, err := op.PKCS12("")
	if err != nil {
		t.Fatal(err)
	}
	opPFX := filepath.Join(dir, "operator.pfx")
	if err := os.WriteFile(opPFX, pfx, 0o600); err != nil {
		t.Fatal(err)
	}
	pollPort, ctlPort := freePort(t), freePort(t)
	var serve *exec.Cmd
	startServe := func() {
		t.Helper()
		serve = exec.Command(builtBinary, "remote", "serve", "--listen", fmt.Sprintf("127.0.0.1:%d", pollPort),
			"--control", fmt.Sprintf("127.0.0.1:%d", ctlPort), "--trust", agentCert.Thumbprint(), "--cert", opPFX)
		serve.Env = append(os.Environ(), "TentacleMachineConfigurationHomeDirectory="+filepath.Join(dir, "etc"), "NO_COLOR=1")
		serve.Stdout, serve.Stderr = io.Discard, io.Discard
		if err := serve.Start(); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(10 * time.Second)
		for {
			if c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", ctlPort)); err == nil {
				c.Close()
				return
			}
			if time.Now().After(deadline) {
				t.Fatal("remote serve did not start listening")
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	stopServe := func() {
		serve.Process.Signal(syscall.SIGTERM)
		serve.Wait()
	}
	startServe()
	t.Cleanup(func() { stopServe() })

	ctx, cancel := context.WithCancel(context.Background())
	agentTLS := agentCert.TLS()
	svc := &halibut.Service{}
	svc.Handle("IEchoService", "SayHello", func(ctx context.Context, call *halibut.Call) (any, error) { return "hello", nil })
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	var pollers []*halibut.Poller
	stopped := make(chan struct{}, n)
	t.Cleanup(func() {
		cancel()
		for range pollers {
			<-stopped
		}
	})
	subscription := func(i int) string { return fmt.Sprintf("poll://load%016d/", i) }
	connected := func() int {
		k := 0
		for _, p := range pollers {
			k += p.Connected()
		}
		return k
	}
	waitConnected := func(k int, limit time.Duration) (time.Duration, bool) {
		start := time.Now()
		for connected() < k {
			if time.Since(start) > limit {
				return time.Since(start), false
			}
			time.Sleep(100 * time.Millisecond)
		}
		return time.Since(start), true
	}

	opTLS := op.TLS()
	client := &halibut.Client{Certificate: &opTLS, Limits: halibut.DefaultLimits()}
	t.Cleanup(client.Close)
	dispatch := func(calls int) []time.Duration {
		t.Helper()
		ep := halibut.Endpoint{BaseURI: fmt.Sprintf("https://127.0.0.1:%d/", ctlPort), Thumbprint: op.Thumbprint(),
			RelayTo: subscription(0), RelayThumbprint: agentCert.Thumbprint()}
		var took []time.Duration
		for i := range calls + 5 {
			t0 := time.Now()
			got, err := client.Call(context.Background(), ep, "IEchoService", "SayHello", []any{"x"}, nil)
			if err != nil || got != "hello" {
				t.Fatalf("call %d relayed to one agent of %d: %v, %v", i, connected(), got, err)
			}
			if i >= 5 { // the first few open the control connection
				took = append(took, time.Since(t0))
			}
		}
		slices.Sort(took)
		return took
	}

	lim := halibut.DefaultLimits()
	self := os.Getpid()
	serveBefore, _ := memoryOf(serve.Process.Pid)
	selfBefore, _ := memoryOf(self)
	var plot []string
	for _, k := range steps {
		// Agents join 16 at a time, each group connected before the next starts: they
		// all come from 127.0.0.1, and more than 32 handshakes at once from one address
		// would have the newest close the oldest (admission.go). The restart below is
		// the storm.
		rampStart := time.Now()
		for len(pollers) < k {
			for range min(16, k-len(pollers)) {
				i := len(pollers)
				p := &halibut.Poller{Certificate: &agentTLS, Service: svc, Limits: lim, Logger: quiet,
					ServerAddress: fmt.Sprintf("https://127.0.0.1:%d/", pollPort), ServerThumbprint: op.Thumbprint(),
					SubscriptionID: subscription(i), Connections: 1}
				pollers = append(pollers, p)
				go func() {
					p.Run(ctx)
					stopped <- struct{}{}
				}()
			}
			if took, ok := waitConnected(len(pollers), 2*time.Minute); !ok {
				t.Fatalf("only %d of %d agents connected after %v", connected(), len(pollers), took)
			}
		}
		ramp := time.Since(rampStart)
		serveMem, _ := memoryOf(serve.Process.Pid)
		selfMem, _ := memoryOf(self)
		lat := dispatch(200)
		p50, p99 := percentile(lat, 50), percentile(lat, 99)
		figure(t, "%d agents connected (step ramped in %.1f s): endpoint anonymous %.1f MiB, PSS %.1f MiB (%.1f KiB anonymous per connection); agents' process %.1f KiB anonymous per poller; relayed call to one agent p50 %s, p99 %s",
			k, ramp.Seconds(), float64(serveMem.anonKB)/1024, float64(serveMem.pssKB)/1024, float64(serveMem.anonKB-serveBefore.anonKB)/float64(k),
			float64(selfMem.anonKB-selfBefore.anonKB)/float64(k), ms(p50), ms(p99))
		plot = append(plot, fmt.Sprintf("%d %.3f %.3f", k, float64(p50)/1e6, float64(p99)/1e6))
	}

	if out := os.Getenv("TENTACLE_SOAK_OUT"); out != "" {
		os.MkdirAll(out, 0o755)
		data := "# agents p50_ms p99_ms\n"
		for _, l := range plot {
			data += l + "\n"
		}
		if err := os.WriteFile(filepath.Join(out, "fanin.dat"), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if !soak() {
		// Every agent reconnecting at once is a minute of handshakes on this machine at
		// 10,000; make soak measures it.
		t.Log("the restart storm runs in make soak only")
		return
	}
	// The endpoint restarts: every agent must come back within 60 s.
	stopServe()
	down := time.Now()
	time.Sleep(time.Second)
	startServe()
	marks := map[int]time.Duration{}
	for connected() < n {
		c := connected()
		for _, pct := range []int{50, 90, 99} {
			if _, ok := marks[pct]; !ok && c*100 >= n*pct {
				marks[pct] = time.Since(down)
			}
		}
		if time.Since(down) > 60*time.Second {
			t.Fatalf("%d of %d agents back 60 s after the endpoint restarted (50%% at %.1f s, 90%% at %.1f s, 99%% at %.1f s; 0 is never)",
				c, n, marks[50].Seconds(), marks[90].Seconds(), marks[99].Seconds())
		}
		time.Sleep(100 * time.Millisecond)
	}
	back := time.Since(down)
	lat := dispatch(200)
	figure(t, "endpoint restarted (down 1 s): %d agents back in %.1f s (50%% at %.1f s, 90%% at %.1f s, 99%% at %.1f s); relayed call after it p50 %s, p99 %s",
		n, back.Seconds(), marks[50].Seconds(), marks[90].Seconds(), marks[99].Seconds(), ms(percentile(lat, 50)), ms(percentile(lat, 99)))
}
