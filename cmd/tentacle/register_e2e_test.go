//go:build !windows

package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/tentacle-go/tentacle/agent/config"
	"github.com/tentacle-go/tentacle/agent/contracts"
	"github.com/tentacle-go/tentacle/internal/proxytest"
	"github.com/tentacle-go/tentacle/provision/octopus/octopustest"
)

// instance is one tentacle instance of the real binary, in a temp dir.
type instance struct {
	t    *testing.T
	dir  string
	env  []string
	name string
	port int
}

func newInstance(t *testing.T, name string) *instance {
	in := &instance{t: t, dir: t.TempDir(), name: name, port: freePort(t)}
	in.env = append(os.Environ(), "TentacleMachineConfigurationHomeDirectory="+filepath.Join(in.dir, "etc"), "NO_COLOR=1")
	in.must("create-instance", "--instance", name, "--config", in.configPath())
	in.must("new-certificate", "--instance", name)
	in.must("configure", "--instance", name, "--port", strconv.Itoa(in.port), "--listenIpAddress", "127.0.0.1")
	return in
}

func (in *instance) configPath() string { return filepath.Join(in.dir, "home", "tentacle.config") }

func (in *instance) run(args ...string) (string, int) {
	c := exec.Command(builtBinary, args...)
	c.Env = in.env
	out, _ := c.CombinedOutput()
	return string(out), c.ProcessState.ExitCode()
}

func (in *instance) must(args ...string) string {
	in.t.Helper()
	out, code := in.run(args...)
	if code != 0 {
		in.t.Fatalf("tentacle %v: exit %d\n%s", args, code, out)
	}
	return out
}

func (in *instance) startAgent() {
	in.t.Helper()
	c := exec.Command(builtBinary, "agent", "--instance", in.name)
	c.Env = in.env
	if err := c.Start(); err != nil {
		in.t.Fatal(err)
	}
	in.t.Cleanup(func() { c.Process.Signal(syscall.SIGTERM); c.Wait() })
}

// runScript runs a script on a registered machine the way the server does.
func runScript(t *testing.T, srv *octopustest.Server, machine, body string) ([]string, int32) {
	t.Helper()
	caller, err := srv.Caller(machine)
	if err != nil {
		t.Fatal(err)
	}
	s := contracts.ScriptServiceV2Client{Caller: caller}
	ticket := "T" + strconv.FormatInt(time.Now().UnixNano(), 36)
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, err = s.StartScript(context.Background(), startCmd(ticket, body, contracts.NoIsolation))
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond) // the agent may still be connecting
	}
	if err != nil {
		t.Fatal(err)
	}
	return runToCompletion(t, s, ticket, 0)
}

func TestRegisterListeningAndRunAScript(t *testing.T) {
	srv := octopustest.NewServer(t)
	in := newInstance(t, "Web")
	args := []string{"register-with", "--instance", "Web", "--server", srv.URL, "--apiKey", srv.APIKey,
		"--environment", "Production", "--role", "web", "--role", "api", "--name", "web01", "--publicHostName", "127.0.0.1"}

	before, _ := os.ReadFile(in.configPath())
	bad := append([]string{}, args...)
	bad[6] = "API-WRONG"
	if out, code := in.run(bad...); code != 1 || !strings.Contains(out, "refused the credentials (401") {
		t.Errorf("wrong API key: exit %d\n%s", code, out)
	}
	if out, code := in.run(append(args[:len(args):len(args)], "--environment", "Staging")...); code != 1 || !strings.Contains(out, "Could not find the environment with name, slug or Id Staging") {
		t.Errorf("unknown environment: exit %d\n%s", code, out)
	}
	if out, code := in.run(append([]string{"register-with", "--instance", "Web", "--server", "http://127.0.0.1:1", "--apiKey", "x"}, args[7:]...)...); code != 1 || !strings.Contains(out, "Cannot reach the Octopus Server") {
		t.Errorf("unreachable: exit %d\n%s", code, out)
	}
	if after, _ := os.ReadFile(in.configPath()); string(after) != string(before) {
		t.Error("a failed registration changed the local configuration")
	}

	out := in.must(args...)
	if !strings.Contains(out, "Machine registered successfully") {
		t.Errorf("%s", out)
	}
	s, _ := config.LoadSettings(in.configPath())
	servers, _ := s.TrustedServers()
	if len(servers) != 1 || servers[0].Thumbprint != srv.Thumbprint() || servers[0].CommunicationStyle != config.StyleTentaclePassive {
		t.Errorf("local trust %+v", servers)
	}
	m := srv.Machines()[0]
	if m.Endpoint.URI != fmt.Sprintf("https://127.0.0.1:%d/", in.port) || len(m.Roles) != 2 {
		t.Errorf("registered %+v", m)
	}
	if out, code := in.run(args...); code != 1 || !strings.Contains(out, "already exists") {
		t.Errorf("second registration without --force: exit %d\n%s", code, out)
	}
	if out := in.must(append(args, "--force")...); !strings.Contains(out, "replaced") {
		t.Errorf("--force: %s", out)
	}

	in.startAgent()
	lines, code := runScript(t, srv, "web01", "echo registered and reachable; exit 2")
	if code != 2 || len(lines) != 1 || lines[0] != "registered and reachable" {
		t.Errorf("script: exit %d %q", code, lines)
	}

	out = in.must("deregister-from", "--instance", "Web", "--server", srv.URL, "--apiKey", srv.APIKey)
	if !strings.Contains(out, "Deleted web01") || !strings.Contains(out, "--remove-trust "+srv.Thumbprint()) || len(srv.Machines()) != 0 {
		t.Errorf("deregister: %s", out)
	}
}

// connectProxy is an HTTP proxy on loopback (CONNECT tunnels and plain
// forwarding) that requires basic auth and counts what it carried.
func connectProxy(t *testing.T) (port int, tunnels *atomic.Int32) {
	p := proxytest.Start(t, proxytest.Options{Username: "proxyuser", Password: "proxypass", Forward: true})
	port, _ = strconv.Atoi(p.URL.Port())
	return port, &p.Tunnels
}

func TestRegisterPollingThroughAProxyAndOverWebSocket(t *testing.T) {
	srv := octopustest.NewServer(t)

	// A polling worker whose registration and polling both go through an
	// authenticating proxy.
	proxyPort, tunnels := connectProxy(t)
	in := newInstance(t, "Worker")
	in.must("configure", "--instance", "Worker", "--noListen", "True")
	in.must("polling-proxy", "--instance", "Worker", "--proxyEnable", "True", "--proxyHost", "127.0.0.1", "--proxyPort", strconv.Itoa(proxyPort),
		"--proxyUsername", "proxyuser", "--proxyPassword", "proxypass")
	out := in.must("register-worker", "--instance", "Worker", "--server", srv.URL, "--apiKey", srv.APIKey, "--workerpool", "Linux Workers",
		"--name", "worker01", "--comms-style", "TentacleActive", "--server-comms-address", srv.PollingAddress)
	if !strings.Contains(out, "Worker registered successfully") {
		t.Errorf("%s", out)
	}
	m := srv.Machines()[0]
	if !m.Worker || !strings.HasPrefix(m.Endpoint.URI, "poll://") {
		t.Errorf("%+v", m)
	}
	s, _ := config.LoadSettings(in.configPath())
	if n, _ := s.PollingConnectionCount(); n < 5 {
		t.Errorf("a worker's polling connection count was seeded to %d, want max(5, CPUs)", n)
	}
	sub := m.Endpoint.URI
	// Re-registering reuses the subscription id.
	in.must("register-worker", "--instance", "Worker", "--server", srv.URL, "--apiKey", srv.APIKey, "--workerpool", "Linux Workers",
		"--name", "worker01", "--comms-style", "TentacleActive", "--server-comms-address", srv.PollingAddress, "--force")
	if srv.Machines()[0].Endpoint.URI != sub {
		t.Error("re-registration changed the subscription id")
	}
	before := tunnels.Load()
	in.startAgent()
	lines, code := runScript(t, srv, "worker01", "echo polled through the proxy")
	if code != 0 || len(lines) != 1 {
		t.Errorf("exit %d %q", code, lines)
	}
	if tunnels.Load() <= before || before == 0 {
		t.Errorf("the proxy carried %d requests before and %d after the agent started: registration or polling bypassed it", before, tunnels.Load())
	}

	// A polling target over WebSocket, which upstream supports on Windows only.
	ws := newInstance(t, "WS")
	ws.must("configure", "--instance", "WS", "--noListen", "True")
	// Its self-signed certificate does not validate, and nobody is at a
	// terminal to confirm it: refused, naming the thumbprint, nothing changed.
	cfgBefore, _ := os.ReadFile(ws.configPath())
	machines := len(srv.Machines())
	out, exit := ws.run("register-with", "--instance", "WS", "--server", srv.URL, "--apiKey", srv.APIKey, "--environment", "Test", "--role", "app",
		"--name", "ws01", "--comms-style", "TentacleActive", "--server-web-socket", srv.WebSocketAddress)
	if exit != 1 || !strings.Contains(out, "could not be validated") || !strings.Contains(out, "--server-web-socket-thumbprint "+srv.Thumbprint()) {
		t.Errorf("an unvalidated WebSocket certificate was not refused: exit %d\n%s", exit, out)
	}
	if after, _ := os.ReadFile(ws.configPath()); string(after) != string(cfgBefore) || len(srv.Machines()) != machines {
		t.Error("a refused registration changed the configuration or registered the machine")
	}
	// A wrong thumbprint given up front is refused too.
	if out, code := ws.run("register-with", "--instance", "WS", "--server", srv.URL, "--apiKey", srv.APIKey, "--environment", "Test", "--role", "app",
		"--name", "ws01", "--comms-style", "TentacleActive", "--server-web-socket", srv.WebSocketAddress,
		"--server-web-socket-thumbprint", strings.Repeat("AB", 20)); code != 1 || !strings.Contains(out, "does not match") {
		t.Errorf("a wrong --server-web-socket-thumbprint: exit %d\n%s", code, out)
	}
	ws.must("register-with", "--instance", "WS", "--server", srv.URL, "--apiKey", srv.APIKey, "--environment", "Test", "--role", "app",
		"--name", "ws01", "--comms-style", "TentacleActive", "--server-web-socket", srv.WebSocketAddress,
		"--server-web-socket-thumbprint", strings.ToLower(srv.Thumbprint()))
	ws.startAgent()
	lines, code = runScript(t, srv, "ws01", "echo over websocket")
	if code != 0 || len(lines) != 1 || lines[0] != "over websocket" {
		t.Errorf("websocket: exit %d %q", code, lines)
	}
}

// A WebSocket endpoint whose certificate validates (a CA in SSL_CERT_FILE,
// the host in the certificate) is trusted without a question, as upstream;
// poll-server with --server learns it the same way, and --thumbprint pins
// without a probe.
func TestRegisterOverWebSocketWithAValidCertificate(t *testing.T) {
	public := octopustest.NewPublicCertificate(t)
	srv := octopustest.NewServer(t, octopustest.WithWebSocketCertificate(public.TLS))
	roots := filepath.Join(t.TempDir(), "roots.pem")
	if err := os.WriteFile(roots, public.RootsPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	ws := newInstance(t, "WSV")
	ws.env = append(ws.env, "SSL_CERT_FILE="+roots)
	ws.must("configure", "--instance", "WSV", "--noListen", "True")
	out := ws.must("register-with", "--instance", "WSV", "--server", srv.URL, "--apiKey", srv.APIKey, "--environment", "Test", "--role", "app",
		"--name", "wsv01", "--comms-style", "TentacleActive", "--server-web-socket", srv.WebSocketAddress)
	if strings.Contains(out, "could not be validated") || !strings.Contains(out, public.Thumbprint) {
		t.Errorf("%s", out)
	}
	ws.startAgent()
	if lines, code := runScript(t, srv, "wsv01", "echo validated"); code != 0 || len(lines) != 1 || lines[0] != "validated" {
		t.Errorf("websocket: exit %d %q", code, lines)
	}

	// Without the CA the same endpoint is refused by poll-server, unless told.
	ps := newInstance(t, "PS")
	args := []string{"poll-server", "--instance", "PS", "--server", srv.URL, "--apiKey", srv.APIKey, "--server-web-socket", srv.WebSocketAddress}
	if out, code := ps.run(args...); code != 1 || !strings.Contains(out, public.Thumbprint) {
		t.Errorf("poll-server trusted an unvalidated certificate: exit %d\n%s", code, out)
	}
	if out := ps.must(append(args, "--dangerously-skip-certificate-validation")...); !strings.Contains(out, public.Thumbprint) {
		t.Errorf("%s", out)
	}
	// A thumbprint given pins without a probe: no server is needed.
	ps.must("poll-server", "--instance", "PS", "--server-web-socket", "wss://127.0.0.1:1/OctopusComms", "--server-web-socket-thumbprint", public.Thumbprint)
	// The WebSocket options mean nothing for the TCP polling port.
	if out, code := ps.run("poll-server", "--instance", "PS", "--server-comms-address", srv.PollingAddress, "--thumbprint", srv.Thumbprint(),
		"--dangerously-skip-certificate-validation"); code != 1 {
		t.Errorf("exit %d\n%s", code, out)
	}
}

// poll-server looks the thumbprint up through the API, and trusting the
// server's next certificate ahead of a rotation keeps the subscription.
func TestPollServerAndRotationAhead(t *testing.T) {
	srv := octopustest.NewServer(t)
	in := newInstance(t, "P")
	in.must("register-with", "--instance", "P", "--server", srv.URL, "--apiKey", srv.APIKey, "--environment", "Test", "--role", "app",
		"--name", "p01", "--comms-style", "TentacleActive", "--server-comms-address", srv.PollingAddress)
	sub := srv.Machines()[0].Endpoint.URI
	// An HA node of the same server at another address: same thumbprint, same id.
	in.must("poll-server", "--instance", "P", "--server", srv.URL, "--apiKey", srv.APIKey, "--server-comms-address", "https://node2.octopus.example:10943")
	next := strings.Repeat("AB", 20)
	in.must("poll-server", "--instance", "P", "--server-comms-address", srv.PollingAddress, "--thumbprint", next)
	s, _ := config.LoadSettings(in.configPath())
	servers, _ := s.TrustedServers()
	if len(servers) != 3 {
		t.Fatalf("%d entries: %+v", len(servers), servers)
	}
	for _, e := range servers {
		if e.SubscriptionID != sub {
			t.Errorf("entry %+v lost the subscription id %s", e, sub)
		}
	}
	if servers[1].Thumbprint != srv.Thumbprint() || servers[2].Thumbprint != next {
		t.Errorf("%+v", servers)
	}
	// The agent still polls the server (one poller, both certificates accepted).
	in.startAgent()
	if lines, code := runScript(t, srv, "p01", "echo still polling"); code != 0 || len(lines) != 1 {
		t.Errorf("exit %d %q", code, lines)
	}
}

func TestShowConfigurationWithTheServersView(t *testing.T) {
	srv := octopustest.NewServer(t)
	in := newInstance(t, "V")
	in.must("register-with", "--instance", "V", "--server", srv.URL, "--apiKey", srv.APIKey, "--environment", "Production",
		"--role", "web", "--tenant", "Acme Corp", "--policy", "Default Machine Policy", "--name", "view01", "--publicHostName", "view01.example")
	out := in.must("show-configuration", "--instance", "V", "--server", srv.URL, "--apiKey", srv.APIKey)
	for _, want := range []string{`"DisplayName": "view01"`, `"Name": "Production"`, `"Roles": [`, `"Name": "Acme Corp"`, `"Name": "Default Machine Policy"`, `"PublicHostName": "https://view01.example:`} {
		if !strings.Contains(out, want) {
			t.Errorf("no %s in\n%s", want, out)
		}
	}
}
