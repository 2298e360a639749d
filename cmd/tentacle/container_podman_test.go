//go:build linux

package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tentacle-go/tentacle/agent/contracts"
	"github.com/tentacle-go/tentacle/internal/nspawntest"
	"github.com/tentacle-go/tentacle/internal/podmantest"
	"github.com/tentacle-go/tentacle/provision/octopus/octopustest"
)

// podmanRig runs the images `make image` built, with this repository's
// containers.conf, in a network namespace the test made: the containers and
// the fake Octopus Server (whose sockets are opened inside it) share its
// loopback, and nothing else can reach either.
type podmanRig struct {
	t *testing.T
	*podmantest.Podman
	netns  string
	tag    string
	prefix string
}

func (r *podmanRig) podman(args ...string) (string, error) { return r.Run(args...) }

func (r *podmanRig) must(args ...string) string {
	r.t.Helper()
	return r.Must(r.t, args...)
}

// run creates and starts a container of image on a new or existing volume,
// configured with env only, and removes it when the test ends.
func (r *podmanRig) run(name, image, volume string, env ...string) {
	r.t.Helper()
	args := []string{"run", "-d", "--name", r.prefix + name, "--network", "ns:/run/netns/" + r.netns,
		"--read-only", "--tmpfs", "/tmp", "-v", r.prefix + volume + ":/etc/octopus"}
	for _, e := range env {
		args = append(args, "-e", e)
	}
	r.must(append(args, image)...)
	r.t.Cleanup(func() { r.podman("rm", "-f", "-t", "0", r.prefix+name) })
	r.t.Cleanup(func() { r.podman("volume", "rm", "-f", r.prefix+volume) })
}

// waitLog waits until the container's log holds want n times.
func (r *podmanRig) waitLog(name, want string, n int) string {
	r.t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for {
		out, _ := r.podman("logs", r.prefix+name)
		if strings.Count(out, want) >= n {
			return out
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("%s did not log %q (%d times) within 90 s:\n%s", name, want, n, out)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// stop runs podman stop and returns the container's exit code.
func (r *podmanRig) stop(name string) int {
	r.t.Helper()
	r.must("stop", "-t", "60", r.prefix+name)
	code, err := strconv.Atoi(r.must("inspect", "--format", "{{.State.ExitCode}}", r.prefix+name))
	if err != nil {
		r.t.Fatal(err)
	}
	return code
}

// rss is the resident memory (KiB) of the container's PID 1 (the init)
// and of its child (the agent), read from the host's /proc.
func (r *podmanRig) rss(name string) (initKiB, agentKiB int) {
	r.t.Helper()
	pid := r.must("inspect", "--format", "{{.State.Pid}}", r.prefix+name)
	agent := ""
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		stat, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...
		if f := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:])); len(f) > 1 && f[1] == pid {
			agent = e.Name()
		}
	}
	return vmRSS(pid), vmRSS(agent)
}

func vmRSS(pid string) int {
	b, _ := os.ReadFile("/proc/" + pid + "/status")
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmRSS:" {
			n, _ := strconv.Atoi(f[1])
			return n
		}
	}
	return 0
}

// registrations counts the machine registrations the server received.
func registrations(srv *octopustest.Server) int {
	n := 0
	for _, r := range srv.Requests() {
		if strings.HasPrefix(r, "POST ") && (strings.Contains(r, "/machines") || strings.Contains(r, "/workers")) {
			n++
		}
	}
	return n
}

// serverInNetns starts the fake Octopus Server with its sockets in netns:
// they are opened on a thread that entered it (a socket stays in the
// namespace it was made in), and the thread ends with its goroutine.
func serverInNetns(t *testing.T, netns string) *octopustest.Server {
	t.Helper()
	var srv *octopustest.Server
	var err error
	done := make(chan struct{})
	go func() {
		defer close(done)
		runtime.LockOSThread() // never unlocked: the thread is discarded
		f, e := os.Open("/run/netns/" + netns)
		if e != nil {
			err = e
			return
		}
		defer f.Close()
		if err = unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
			return
		}
		srv = octopustest.NewServer(t)
	}()
	<-done
	if err != nil || srv == nil {
		t.Fatalf("cannot start the fake server in %s: %v", netns, err)
	}
	return srv
}

// podmanOrSkip returns podman, installing it with `make
// deps` when missing; it skips, saying why, only where it cannot be had.
func podmanOrSkip(t *testing.T, root string) *podmantest.Podman {
	t.Helper()
	if testing.Short() {
		t.Skip("SKIP: -short: the container test builds images and runs containers")
	}
	if os.Geteuid() != 0 {
		t.Skip("SKIP: the container test runs podman as root (CI does; rootless podman needs subuid ranges this test does not set up)")
	}
	if _, err := exec.LookPath("podman"); err != nil {
		if out, err := exec.Command("make", "-C", root, "--no-print-directory", "deps", "APT_PACKAGES=podman runc").CombinedOutput(); err != nil {
			t.Skipf("SKIP: podman is not installed and `make deps` could not install it: %v\n%s", err, out)
		}
	}
	for _, tool := range []string{"podman", "ip"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("SKIP: %s is not installed", tool)
		}
	}
	return podmantest.New(root)
}

// TestContainerImages builds both images with `make image` and runs them
// against octopustest with environment variables only: a listening target
// and a polling worker on the Debian image, a polling worker on the static
// one; remote exec and upload, stop during a script (finished within the
// grace, or cancelled), restart and re-creation on the same volume.
func TestContainerImages(t *testing.T) {
	root := nspawntest.RepoRoot(t)
	pm := podmanOrSkip(t, root)
	start := time.Now()
	// goreleaser's flags, as `make image` builds: Go's build cache is shared.
	bin := filepath.Join(t.TempDir(), "tentacle")
	gobuild := exec.Command("go", "build", "-trimpath", "-o", bin, ".")
	gobuild.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := gobuild.CombinedOutput(); err != nil {
		t.Fatalf("building a static tentacle: %v\n%s", err, out)
	}
	// Its tentacle-supervisor beside it, where make image takes it from.
	gobuild = exec.Command("go", "build", "-trimpath", "-o", filepath.Join(filepath.Dir(bin), "tentacle-supervisor"), "../tentacle-supervisor")
	gobuild.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := gobuild.CombinedOutput(); err != nil {
		t.Fatalf("building a static tentacle-supervisor: %v\n%s", err, out)
	}
	tag := fmt.Sprintf("e2e-%d", os.Getpid())
	r := &podmanRig{t: t, Podman: pm, tag: tag, prefix: fmt.Sprintf("tentacle-e2e-%d-", os.Getpid())}
	archives := t.TempDir()
	build := exec.Command("make", "-C", root, "--no-print-directory", "image", "IMAGE_BINARY="+bin, "IMAGE_TAG="+tag, "IMAGE_DIR="+archives)
	out, err := build.CombinedOutput()
	t.Cleanup(func() { r.podman("rmi", "-f", "localhost/tentacle:"+tag, "localhost/tentacle:"+tag+"-static") })
	if err != nil {
		t.Fatalf("make image: %v\n%s", err, out)
	}
	t.Logf("make image (%s):\n%s", time.Since(start).Round(time.Millisecond), out)
	debian, static := "localhost/tentacle:"+tag, "localhost/tentacle:"+tag+"-static"
	for _, image := range []string{debian, static} {
		cfg := r.must("image", "inspect", "--format", "{{.User}} {{json .Config.Entrypoint}} {{json .HealthCheck}} {{json .Config.Volumes}}", image)
		for _, want := range []string{"999:999", `["/usr/bin/tentacle","container"]`, `"livez","--instance","Tentacle"`, `"/etc/octopus"`} {
			if !strings.Contains(cfg, want) {
				t.Errorf("%s's configuration lacks %s: %s", image, want, cfg)
			}
		}
		archive := filepath.Join(archives, "tentacle_"+strings.TrimPrefix(image, "localhost/tentacle:")+"_linux_amd64.oci.tar")
		if list, err := exec.Command("tar", "-tf", archive).Output(); err != nil || !strings.Contains(string(list), "index.json") {
			t.Errorf("%s is not an OCI archive: %v\n%s", archive, err, list)
		}
	}

	r.netns = fmt.Sprintf("tctr%d", os.Getpid())
	if out, err := exec.Command("ip", "netns", "add", r.netns).CombinedOutput(); err != nil {
		t.Skipf("SKIP: cannot make a network namespace: %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("ip", "netns", "del", r.netns).Run() })
	if out, err := exec.Command("ip", "-n", r.netns, "link", "set", "lo", "up").CombinedOutput(); err != nil {
		t.Fatalf("lo up: %v %s", err, out)
	}
	srv := serverInNetns(t, r.netns)
	pfx, err := srv.Certificate.PKCS12Unprotected()
	if err != nil {
		t.Fatal(err)
	}
	serverPFX := filepath.Join(t.TempDir(), "server.pfx")
	if err := os.WriteFile(serverPFX, pfx, 0o600); err != nil {
		t.Fatal(err)
	}
	// remote runs `tentacle remote` in the namespace as the server would
	// (its certificate is the one the Tentacle trusts).
	remote := func(thumb string, args ...string) (string, error) {
		full := append([]string{"netns", "exec", r.netns, bin, "remote"}, args[0], "--endpoint", "https://127.0.0.1:10933/", "--thumbprint", thumb, "--cert", serverPFX)
		c := exec.Command("ip", append(full, args[1:]...)...)
		c.Env = append(os.Environ(), "NO_COLOR=1")
		out, err := c.CombinedOutput()
		return string(out), err
	}
	credentials := []string{"ServerUrl=" + srv.URL, "ServerApiKey=" + srv.APIKey}

	t.Run("listening target", func(t *testing.T) {
		r.t = t
		env := append(credentials, "TargetEnvironment=Production", "TargetRole=web", "TargetName=web-ctr",
			"PublicHostNameConfiguration=Custom", "CustomPublicHostName=127.0.0.1", "TENTACLE_STOP_GRACE=30s")
		started := time.Now()
		r.run("web", debian, "web", env...)
		// The agent runs scripts under the image's tentacle-supervisor.
		r.waitLog("web", "scripts run under /usr/bin/tentacle-supervisor", 1)
		r.waitLog("web", "Agent listening on", 1)
		t.Logf("podman run to listening: %s", time.Since(started).Round(time.Millisecond))
		ms := srv.Machines()
		if len(ms) != 1 || ms[0].Name != "web-ctr" || ms[0].Endpoint.URI != "https://127.0.0.1:10933/" || ms[0].Endpoint.CommunicationStyle != "TentaclePassive" {
			t.Fatalf("registered: %+v", ms)
		}
		thumb := r.must("exec", r.prefix+"web", "tentacle", "show-thumbprint", "--instance", "Tentacle")
		if ms[0].Endpoint.Thumbprint != thumb {
			t.Fatalf("registered thumbprint %s, the container's is %s", ms[0].Endpoint.Thumbprint, thumb)
		}
		if out, err := remote(thumb, "exec", "--", "echo uid $(id -u) on $(hostname); test -w / || echo read-only root"); err != nil ||
			!strings.Contains(out, "uid 999 on") || !strings.Contains(out, "read-only root") {
			t.Errorf("remote exec: %v\n%s", err, out)
		}
		local := filepath.Join(t.TempDir(), "payload.txt")
		os.WriteFile(local, []byte("delivered into a container\n"), 0o644)
		if out, err := remote(thumb, "upload", local, "payload.txt"); err != nil {
			t.Errorf("remote upload: %v\n%s", err, out)
		}
		if got := r.must("exec", r.prefix+"web", "cat", "/etc/octopus/Tentacle/payload.txt"); got != "delivered into a container" {
			t.Errorf("uploaded file holds %q", got)
		}
		if out, err := r.podman("healthcheck", "run", r.prefix+"web"); err != nil {
			t.Errorf("the image's health check (livez): %v %s", err, out)
		}
		initKiB, agentKiB := r.rss("web")
		t.Logf("idle RSS: init (PID 1) %d KiB, agent %d KiB", initKiB, agentKiB)

		// podman stop while a script runs: it finishes within the grace,
		// the server gets its end, the container exits 0.
		type result struct {
			out string
			err error
		}
		done := make(chan result, 1)
		go func() {
			out, err := remote(thumb, "exec", "--", "touch /tmp/started; sleep 3; echo finished")
			done <- result{out, err}
		}()
		for i := 0; ; i++ {
			if _, err := r.podman("exec", r.prefix+"web", "test", "-e", "/tmp/started"); err == nil {
				break
			}
			if i > 300 {
				t.Fatal("the script did not start")
			}
			time.Sleep(100 * time.Millisecond)
		}
		stopStart := time.Now()
		if code := r.stop("web"); code != 0 {
			t.Errorf("the container exited %d after podman stop", code)
		}
		t.Logf("podman stop with a script in flight: %s", time.Since(stopStart).Round(time.Millisecond))
		if res := <-done; res.err != nil || !strings.Contains(res.out, "finished") {
			t.Errorf("the script's end was not reported: %v\n%s", res.err, res.out)
		}

		// Started again, then re-created on the same volume: same identity,
		// no second registration.
		r.must("start", r.prefix+"web")
		r.waitLog("web", "Agent listening on", 2)
		if again := r.must("exec", r.prefix+"web", "tentacle", "show-thumbprint", "--instance", "Tentacle"); again != thumb {
			t.Errorf("after a restart the thumbprint is %s, was %s", again, thumb)
		}
		r.must("rm", "-f", "-t", "10", r.prefix+"web")
		r.run("web", debian, "web", env...)
		// The agent runs scripts under the image's tentacle-supervisor.
		r.waitLog("web", "scripts run under /usr/bin/tentacle-supervisor", 1)
		r.waitLog("web", "Agent listening on", 1)
		if again := r.must("exec", r.prefix+"web", "tentacle", "show-thumbprint", "--instance", "Tentacle"); again != thumb {
			t.Errorf("a re-created container's thumbprint is %s, was %s", again, thumb)
		}
		if out, err := remote(thumb, "exec", "--", "echo still trusted"); err != nil || !strings.Contains(out, "still trusted") {
			t.Errorf("remote exec after re-creation: %v\n%s", err, out)
		}
		if ms := srv.Machines(); len(ms) != 1 || registrations(srv) != 1 {
			t.Errorf("after restart and re-creation: %d machines, %d registrations, want 1 and 1: %+v", len(ms), registrations(srv), ms)
		}
		r.must("rm", "-f", "-t", "10", r.prefix+"web") // frees port 10933 in the namespace
	})

	t.Run("polling worker", func(t *testing.T) {
		r.t = t
		before := registrations(srv)
		r.run("worker", debian, "worker", append(credentials, "TargetWorkerPool=Linux Workers", "TargetName=worker-ctr",
			"ServerCommsAddress="+srv.PollingAddress, "TENTACLE_STOP_GRACE=1s")...)
		r.waitLog("worker", "polling connections", 1)
		if registrations(srv) != before+1 {
			t.Fatalf("the worker did not register: %v", srv.Requests())
		}
		lines, code := runScript(t, srv, "worker-ctr", "echo polled in $(hostname); exit 3")
		if code != 3 || !strings.Contains(strings.Join(lines, "\n"), "polled in") {
			t.Errorf("script over polling: exit %d %v", code, lines)
		}
		caller, err := srv.Caller("worker-ctr")
		if err != nil {
			t.Fatal(err)
		}
		content := []byte("uploaded over polling\n")
		if _, err := (contracts.FileTransferClient{Caller: caller}).UploadFile(context.Background(), "/etc/octopus/Applications/p.txt", bytes.NewReader(content), int64(len(content))); err != nil {
			t.Errorf("upload over polling: %v", err)
		}
		if got := r.must("exec", r.prefix+"worker", "cat", "/home/Octopus/Applications/p.txt"); got+"\n" != string(content) {
			t.Errorf("uploaded file holds %q", got)
		}

		// podman stop while a script runs past the 1 s grace: cancelled,
		// exit 0; the next start reports the cancelled script's end.
		s := contracts.ScriptServiceV2Client{Caller: caller}
		if _, err := s.StartScript(context.Background(), startCmd("Long", "echo long started; sleep 300", contracts.NoIsolation)); err != nil {
			t.Fatal(err)
		}
		for i := 0; ; i++ {
			st, err := s.GetStatus(context.Background(), contracts.ScriptStatusRequestV2{Ticket: contracts.ScriptTicket{TaskID: "Long"}})
			if err == nil && st.State == contracts.StateRunning && len(st.Logs) > 0 {
				break
			}
			if i > 300 {
				t.Fatalf("the long script did not start: %v", err)
			}
			time.Sleep(100 * time.Millisecond)
		}
		stopStart := time.Now()
		if code := r.stop("worker"); code != 0 {
			t.Errorf("the container exited %d after podman stop", code)
		}
		t.Logf("podman stop with a script cancelled after its grace: %s", time.Since(stopStart).Round(time.Millisecond))
		if logs := r.must("logs", r.prefix+"worker"); !strings.Contains(logs, "cancelling them") {
			t.Errorf("init did not cancel the script:\n%s", logs)
		}
		r.must("start", r.prefix+"worker")
		r.waitLog("worker", "polling connections", 2)
		// The server may first hand the request to a connection of the
		// stopped agent, which fails without running it: ask again.
		for i := 0; ; i++ {
			_, err := s.GetStatus(context.Background(), contracts.ScriptStatusRequestV2{Ticket: contracts.ScriptTicket{TaskID: "Long"}})
			if err == nil {
				break
			}
			if i > 100 {
				t.Fatalf("the restarted worker does not answer: %v", err)
			}
			time.Sleep(200 * time.Millisecond)
		}
		lines, code = runToCompletion(t, s, "Long", 0)
		if code == 0 || !strings.Contains(strings.Join(lines, "\n"), "long started") {
			t.Errorf("the cancelled script's end after restart: exit %d %v", code, lines)
		}
	})

	t.Run("static image", func(t *testing.T) {
		r.t = t
		r.run("static", static, "static", append(credentials, "TargetWorkerPool=Linux Workers", "TargetName=static-ctr",
			"ServerCommsAddress="+srv.PollingAddress)...)
		r.waitLog("static", "scripts run under /usr/bin/tentacle-supervisor", 1)
		r.waitLog("static", "polling connections", 1)
		caller, err := srv.Caller("static-ctr")
		if err != nil {
			t.Fatal(err)
		}
		content := []byte("no shell needed\n")
		if _, err := (contracts.FileTransferClient{Caller: caller}).UploadFile(context.Background(), "f.txt", bytes.NewReader(content), int64(len(content))); err != nil {
			t.Errorf("upload to the static image: %v", err)
		}
		var got bytes.Buffer
		if found, _, err := (contracts.FileTransferClient{Caller: caller}).DownloadFile(context.Background(), "f.txt", &got); err != nil || !found || got.String() != string(content) {
			t.Errorf("download from the static image: %v %v %q", found, err, got.String())
		}
		if code := r.stop("static"); code != 0 {
			t.Errorf("the static container exited %d after podman stop", code)
		}
	})
	t.Logf("whole container test: %s", time.Since(start).Round(time.Millisecond))
}
