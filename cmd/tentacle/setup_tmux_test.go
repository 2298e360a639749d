//go:build linux

package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tentacle-go/tentacle/agent/config"
	"github.com/tentacle-go/tentacle/provision/octopus/octopustest"
	"github.com/tentacle-go/tentacle/provision/plan"
)

// terminal is the real binary running in a tmux pane: a real terminal,
// driven with send-keys and read with capture-pane.
type terminal struct {
	t      *testing.T
	socket string
	seen   int // how much of the pane's text earlier waits consumed
}

func startTerminal(t *testing.T, env []string, args ...string) *terminal {
	t.Helper()
	if _, err := exec.LookPath("tmux"); err != nil {
		t.Skip("tmux is not installed: the setup wizard's terminal test cannot run (apt-get install tmux)")
	}
	term := &terminal{t: t, socket: filepath.Join(t.TempDir(), "tmux.sock")}
	quoted := []string{"env"}
	for _, kv := range env {
		quoted = append(quoted, shellQuote(kv))
	}
	quoted = append(quoted, shellQuote(builtBinary))
	for _, a := range args {
		quoted = append(quoted, shellQuote(a))
	}
	script := strings.Join(quoted, " ") + `; echo "[exit $?]"; sleep 600`
	cmd := exec.Command("tmux", "-S", term.socket, "-f", "/dev/null", "new-session", "-d", "-s", "setup", "-x", "250", "-y", "50", "sh", "-c", script)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("tmux: %v\n%s", err, out)
	}
	t.Cleanup(func() { exec.Command("tmux", "-S", term.socket, "kill-server").Run() })
	return term
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// screen is everything the pane printed, wrapped lines joined.
func (term *terminal) screen() string {
	out, err := exec.Command("tmux", "-S", term.socket, "capture-pane", "-p", "-J", "-S", "-", "-t", "setup").Output()
	if err != nil {
		term.t.Fatalf("capture-pane: %v", err)
	}
	return string(out)
}

// waitFor waits until text appears after what earlier waits consumed, and
// consumes up to it. A wizard that never asks fails the test after a
// generous deadline (a hang, not a speed bound).
func (term *terminal) waitFor(text string) {
	term.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		s := term.screen()
		if term.seen <= len(s) {
			if i := strings.Index(s[term.seen:], text); i >= 0 {
				term.seen += i + len(text)
				return
			}
		}
		if time.Now().After(deadline) {
			term.t.Fatalf("the terminal never showed %q; it shows:\n%s", text, s)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// answer waits for the question, then types the answer and Enter.
func (term *terminal) answer(question, typed string) {
	term.t.Helper()
	term.waitFor(question)
	if typed != "" {
		if out, err := exec.Command("tmux", "-S", term.socket, "send-keys", "-t", "setup", "-l", typed).CombinedOutput(); err != nil {
			term.t.Fatalf("send-keys: %v\n%s", err, out)
		}
	}
	if out, err := exec.Command("tmux", "-S", term.socket, "send-keys", "-t", "setup", "Enter").CombinedOutput(); err != nil {
		term.t.Fatalf("send-keys: %v\n%s", err, out)
	}
}

func savedProvisionFile(t *testing.T, path string) *plan.File {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("setup saved no provision file: %v", err)
	}
	if strings.Contains(string(data), "API-") {
		t.Errorf("the API key was written to the provision file:\n%s", data)
	}
	f, err := plan.Parse(path, data)
	if err != nil {
		t.Fatalf("the saved provision file does not parse: %v\n%s", err, data)
	}
	return f
}

// A listening deployment target set up through a real terminal, with wrong
// answers (a port that is not a number, a server that does not answer, a
// wrong API key) re-asked with the reason.
func TestSetupListeningTargetInATerminal(t *testing.T) {
	srv := octopustest.NewServer(t)
	dir := t.TempDir()
	root := filepath.Join(dir, "etc")
	port := freePort(t)
	unreachable := "http://127.0.0.1:" + strconv.Itoa(freePort(t))
	term := startTerminal(t, []string{"TentacleMachineConfigurationHomeDirectory=" + root, "NO_COLOR=1", "HOME=" + dir}, "setup")

	term.answer("Name of the Tentacle instance [Tentacle]: ", "Web")
	term.answer("Where should its configuration be stored? ["+filepath.Join(root, "Web")+"]: ", "")
	term.answer("Where should applications be installed? [/home/Octopus/Applications]: ", filepath.Join(dir, "apps"))
	term.answer("Choose [1]: ", "")
	term.answer("Port to listen on [10933]: ", "ten")
	term.answer(`"ten" is not a TCP port: give a number from 1 to 65535.`, strconv.Itoa(port))
	term.answer("(empty for none) [none]: ", "")
	term.answer("register later) [none]: ", unreachable)
	term.waitFor("Cannot reach the Octopus Server at 127.0.0.1:")
	term.answer("Type the URL again.", srv.URL)
	term.waitFor("Octopus Server " + srv.Version + " answers.")
	term.answer("API key (API-...; not shown as you type): ", "API-WRONGKEY")
	term.waitFor("The Octopus Server refused the credentials (401")
	term.answer("API key (API-...; not shown as you type): ", srv.APIKey)
	term.waitFor("The server accepts this API key.")
	term.answer("Space [the default space]: ", "")
	term.answer("Choose [1]: ", "")
	term.answer("Environments (comma-separated): ", "Test, Production")
	term.answer("Target tags (roles, comma-separated): ", "web")
	term.answer("Name of this machine in Octopus", "web01")
	term.answer("Choose [1]: ", "2")
	term.answer("re-run it with `tentacle provision --file`) ["+filepath.Join(root, "Web", "provision.yaml")+"]: ", "")
	term.waitFor("The plan:")
	term.answer("Apply this plan now? [Y/n]: ", "y")
	term.waitFor("Tentacle instance Web is set up")
	term.waitFor("[exit 0]")
	screen := term.screen()
	if strings.Contains(screen, srv.APIKey) {
		t.Errorf("the API key was echoed:\n%s", screen)
	}

	machines := srv.Machines()
	if len(machines) != 1 || machines[0].Name != "web01" || machines[0].Worker || machines[0].Endpoint.CommunicationStyle != "TentaclePassive" ||
		!slices.Equal(machines[0].EnvironmentIDs, []string{"Environments-2", "Environments-3"}) || !slices.Equal(machines[0].Roles, []string{"web"}) {
		t.Errorf("registered: %+v\n%s", machines, screen)
	}
	cfg := filepath.Join(root, "Web", "tentacle-Web.config")
	s, err := config.LoadSettings(cfg)
	if err != nil {
		t.Fatalf("%v\n%s", err, screen)
	}
	if p, _ := s.Port(); p != port {
		t.Errorf("port %d, want %d", p, port)
	}
	if servers, _ := s.TrustedServers(); len(servers) != 1 || servers[0].Thumbprint != srv.Thumbprint() {
		t.Errorf("trusted: %+v", servers)
	}
	f := savedProvisionFile(t, filepath.Join(root, "Web", "provision.yaml"))
	in := f.Instances[0]
	if in.Name != "Web" || in.Config != cfg || in.Listen == nil || in.Listen.Port != port || in.Registration == nil ||
		in.Registration.APIKey != "${OCTOPUS_API_KEY}" || in.Registration.Name != "web01" || in.Service != nil {
		t.Errorf("saved file: %+v %+v", in, in.Registration)
	}
}

// A polling worker set up through a real terminal.
func TestSetupPollingWorkerInATerminal(t *testing.T) {
	srv := octopustest.NewServer(t)
	dir := t.TempDir()
	root := filepath.Join(dir, "etc")
	env := []string{"TentacleMachineConfigurationHomeDirectory=" + root, "NO_COLOR=1", "HOME=" + dir}
	term := startTerminal(t, env, "setup")

	term.answer("Name of the Tentacle instance [Tentacle]: ", "Worker")
	term.answer("Where should its configuration be stored? ", filepath.Join(dir, "worker"))
	term.answer("Where should applications be installed? ", filepath.Join(dir, "apps"))
	term.answer("Choose [1]: ", "2")
	term.answer("(empty for none) [none]: ", "")
	term.answer("Octopus Server URL, such as https://octopus.example: ", srv.URL)
	term.answer("API key (API-...; not shown as you type): ", srv.APIKey)
	term.answer("Space [the default space]: ", "Nowhere")
	term.waitFor(`The space "Nowhere" was not found`)
	term.answer("Space [the default space]: ", "")
	term.answer("Choose [1]: ", "2")
	term.answer("Worker pools (comma-separated): ", "")
	term.answer("Give at least one worker pool", "Linux Workers")
	term.answer("Name of this machine in Octopus", "worker01")
	term.answer("The server's polling address [https://127.0.0.1:10943/]: ", srv.PollingAddress)
	term.answer("Choose [1]: ", "2")
	term.answer("re-run it with `tentacle provision --file`) ", "")
	term.answer("Apply this plan now? [Y/n]: ", "")
	term.waitFor("Tentacle instance Worker is set up")
	term.waitFor("[exit 0]")

	machines := srv.Machines()
	if len(machines) != 1 || machines[0].Name != "worker01" || !machines[0].Worker || !strings.HasPrefix(machines[0].Endpoint.URI, "poll://") ||
		!slices.Equal(machines[0].WorkerPoolIDs, []string{"WorkerPools-2"}) {
		t.Errorf("registered: %+v\n%s", machines, term.screen())
	}
	f := savedProvisionFile(t, filepath.Join(dir, "worker", "provision.yaml"))
	if in := f.Instances[0]; in.Polling == nil || in.Registration.As != plan.AsWorker || in.Registration.ServerCommsAddress != srv.PollingAddress {
		t.Errorf("saved file: %+v %+v", in, in.Registration)
	}
	// The worker it set up passes doctor's polling checks.
	c := exec.Command(builtBinary, "doctor", "--instance", "Worker")
	c.Env = append(os.Environ(), env...)
	out, _ := c.CombinedOutput()
	if !strings.Contains(string(out), "OK    handshake "+srv.PollingAddress) {
		t.Errorf("doctor after setup:\n%s", out)
	}
}

// Without a terminal, setup says what to use instead.
func TestSetupNeedsATerminal(t *testing.T) {
	h := newHarness(t)
	errs := h.fail(1, "setup")
	if !strings.Contains(errs, "needs a terminal") || !strings.Contains(errs, "tentacle provision --file") {
		t.Errorf("%s", errs)
	}
}
