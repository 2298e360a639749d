//go:build linux

package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tentacle-go/tentacle/agent/config"
	"github.com/tentacle-go/tentacle/agent/contracts"
	"github.com/tentacle-go/tentacle/agent/halibut"
	"github.com/tentacle-go/tentacle/internal/nspawntest"
	"github.com/tentacle-go/tentacle/internal/releasebuild"
)

// The service end-to-end test boots a REAL systemd in a container
// (internal/nspawntest), installs the agent with `tentacle service`
// inside it, and drives it through the protocol from here on loopback.

// containerBinDir is where this test's tentacle binary appears inside the
// container (a read-only bind mount).
const containerBinDir = "/opt/tentacle-e2e"

// tentacleIn runs this test's tentacle in the container; it has to succeed.
func tentacleIn(m *nspawntest.Machine, args ...string) string {
	return m.Must(append([]string{containerBinDir + "/tentacle"}, args...)...)
}

// staticBinary builds tentacle without cgo, so it runs on the container's
// libc whatever the host's is.
func staticBinary(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	releasebuild.Build(t, filepath.Join("..", ".."), filepath.Join(dir, "tentacle"), releasebuild.Options{})
	return dir
}

func TestServiceUnderRealSystemd(t *testing.T) {
	rootfs := nspawntest.Rootfs(t)
	start := time.Now()
	binDir := staticBinary(t)
	m := nspawntest.Boot(t, rootfs, nspawntest.Bind{Host: binDir, Container: containerBinDir, ReadOnly: true})
	t.Logf("systemd booted in the container in %s", time.Since(start).Round(time.Millisecond))

	// An instance as automation sets it up, at upstream's default paths.
	port := freePort(t)
	op, err := config.GenerateCertificate()
	if err != nil {
		t.Fatal(err)
	}
	tentacleIn(m, "create-instance", "--instance", "Tentacle", "--config", "/etc/octopus/Tentacle/tentacle.config")
	tentacleIn(m, "new-certificate", "--instance", "Tentacle", "--if-blank")
	tentacleIn(m, "configure", "--instance", "Tentacle", "--port", strconv.Itoa(port), "--listenIpAddress", "127.0.0.1", "--trust", op.Thumbprint())
	thumb := strings.TrimSpace(tentacleIn(m, "show-thumbprint", "--instance", "Tentacle"))

	// Not live before it ever ran: livez fails fast, with a reason.
	if out, err := m.Run(containerBinDir+"/tentacle", "livez", "--instance", "Tentacle"); err == nil || !strings.Contains(out, "does not exist") {
		t.Errorf("livez before the agent ran: %v\n%s", err, out)
	}

	// Neither root nor passwordless sudo (the container has no sudo): a
	// clear error, exit 1, and nothing written.
	denied, err := m.Run("runuser", "-u", "nobody", "--", containerBinDir+"/tentacle", "service", "--instance", "Tentacle", "--install", "--start")
	var xe *exec.ExitError
	if !errors.As(err, &xe) || xe.ExitCode() != 1 || !strings.Contains(denied, "Requires elevated privileges") {
		t.Errorf("service --install as nobody: %v\n%s", err, denied)
	}
	if _, err := m.Run("test", "-e", "/etc/systemd/system/Tentacle.service"); err == nil {
		t.Error("a failed --install left a unit file behind")
	}

	out := tentacleIn(m, "service", "--instance", "Tentacle", "--install", "--start")
	t.Logf("service --install --start:\n%s", out)
	if got := strings.TrimSpace(m.Must("systemctl", "is-active", "Tentacle.service")); got != "active" {
		t.Fatalf("after --install --start the unit is %q", got)
	}
	if got := strings.TrimSpace(m.Must("systemctl", "is-enabled", "Tentacle.service")); got != "enabled" {
		t.Errorf("after --install the unit is %q, not enabled", got)
	}
	if got := m.Must("stat", "-c", "%a %U", "/etc/systemd/system/Tentacle.service"); strings.TrimSpace(got) != "644 root" {
		t.Errorf("unit file mode/owner: %s", got)
	}
	// The unit systemd loaded is the one we meant.
	show := m.Must("systemctl", "show", "Tentacle.service", "-p", "KillMode,Restart,User,ExecStart")
	for _, want := range []string{"KillMode=process", "Restart=always", "User=root", containerBinDir + "/tentacle ; argv[]=" + containerBinDir + "/tentacle run --instance=Tentacle --noninteractive"} {
		if !strings.Contains(show, want) {
			t.Errorf("systemctl show lacks %q:\n%s", want, show)
		}
	}
	// Idempotent: the same command again changes nothing and succeeds.
	again := tentacleIn(m, "service", "--instance", "Tentacle", "--install", "--start")
	if !strings.Contains(again, "already installed and up to date") || !strings.Contains(again, "already running") {
		t.Errorf("a second --install --start was not a visible no-op:\n%s", again)
	}
	if out, err := m.Run(containerBinDir+"/tentacle", "livez", "--instance", "Tentacle"); err != nil {
		t.Errorf("livez of the running service: %v\n%s", err, out)
	}

	// doctor reads the real systemd's view of the service: running, then
	// stopped (exit 1, and what to do).
	if out, _ := m.Run(containerBinDir+"/tentacle", "doctor", "--instance", "Tentacle"); !strings.Contains(out, "OK    service: The service Tentacle.service is installed, enabled and running.") {
		t.Errorf("doctor on the running service:\n%s", out)
	}
	m.Must("systemctl", "stop", "Tentacle.service")
	stopped, err := m.Run(containerBinDir+"/tentacle", "doctor", "--instance", "Tentacle")
	if !errors.As(err, &xe) || xe.ExitCode() != 1 ||
		!strings.Contains(stopped, "FAIL  service: The service Tentacle.service is installed but not running (inactive (dead)).") ||
		!strings.Contains(stopped, "Fix: tentacle service --instance Tentacle --start") {
		t.Errorf("doctor on the stopped service: %v\n%s", err, stopped)
	}
	m.Must("systemctl", "start", "Tentacle.service")
	waitListening(t, port, 20*time.Second)

	// A script started through the protocol keeps running across
	// `systemctl restart`, and the restarted agent reports all of it.
	tlsCert := op.TLS()
	client := &halibut.Client{Certificate: &tlsCert, Limits: halibut.DefaultLimits()}
	defer client.Close()
	scriptsClient := contracts.ScriptServiceV2Client{Caller: contracts.ListeningCaller{Client: client,
		Endpoint: halibut.Endpoint{BaseURI: fmt.Sprintf("https://127.0.0.1:%d/", port), Thumbprint: thumb}}}
	slow := "for i in $(seq 1 40); do echo line $i; sleep 0.1; done; exit 7"
	if _, err := scriptsClient.StartScript(context.Background(), startCmd("AcrossRestart", slow, contracts.NoIsolation)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(700 * time.Millisecond)
	pidBefore := strings.TrimSpace(m.Must("systemctl", "show", "-p", "MainPID", "--value", "Tentacle.service"))
	restartStart := time.Now()
	m.Must("systemctl", "restart", "Tentacle.service")
	pidAfter := strings.TrimSpace(m.Must("systemctl", "show", "-p", "MainPID", "--value", "Tentacle.service"))
	t.Logf("systemctl restart took %s (agent pid %s -> %s)", time.Since(restartStart).Round(time.Millisecond), pidBefore, pidAfter)
	if pidBefore == pidAfter || pidAfter == "0" {
		t.Fatalf("systemctl restart did not replace the agent (pid %s -> %s)", pidBefore, pidAfter)
	}
	if ps := m.Must("ps", "-eo", "pid,args"); !strings.Contains(ps, "Bootstrap.sh") {
		t.Errorf("the script did not survive the restart:\n%s", ps)
	}
	waitListening(t, port, 20*time.Second)
	lines, code := runToCompletion(t, scriptsClient, "AcrossRestart", 0)
	var want []string
	for i := 1; i <= 40; i++ {
		want = append(want, fmt.Sprint("line ", i))
	}
	if strings.Join(lines, "|") != strings.Join(want, "|") || code != 7 {
		t.Errorf("after systemctl restart: exit %d, lines %q", code, lines)
	}

	// --stop --uninstall leaves nothing behind.
	out = tentacleIn(m, "service", "--instance", "Tentacle", "--stop", "--uninstall")
	t.Logf("service --stop --uninstall:\n%s", out)
	if _, err := m.Run("test", "-e", "/etc/systemd/system/Tentacle.service"); err == nil {
		t.Error("the unit file is still there")
	}
	if got := m.Must("systemctl", "show", "-p", "LoadState", "--value", "Tentacle.service"); strings.TrimSpace(got) != "not-found" {
		t.Errorf("after --uninstall systemd still knows the unit: LoadState=%s", got)
	}
	// A stopped unit stays listed (not-found) until systemd has collected
	// it: its cgroup's last processes (script supervisors finishing, under
	// KillMode=process) must exit first, which takes a moment on a busy
	// machine. It must then be gone.
	listed := ""
	for deadline := time.Now().Add(20 * time.Second); ; {
		listed = strings.TrimSpace(m.Must("sh", "-c", "systemctl list-units --all --no-legend 'Tentacle*'; systemctl list-unit-files --no-legend 'Tentacle*'; find /etc/systemd/system -iname '*tentacle*'"))
		if listed == "" || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if listed != "" {
		t.Errorf("after --uninstall systemd still lists:\n%s", listed)
	}
	if got, _ := m.Run("pgrep", "-af", "tentacle run"); strings.TrimSpace(got) != "" {
		t.Errorf("an agent is still running after --uninstall:\n%s", got)
	}
	again = tentacleIn(m, "service", "--instance", "Tentacle", "--stop", "--uninstall")
	if !strings.Contains(again, "not installed") {
		t.Errorf("a second --stop --uninstall was not a visible no-op:\n%s", again)
	}

	// --username: the agent runs as that user, and its home, configuration
	// and certificate are that user's and no one else's.
	m.Must("useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", "octo")
	port2 := freePort(t)
	tentacleIn(m, "create-instance", "--instance", "Svc", "--config", "/var/lib/tentacle/Svc/tentacle.config")
	tentacleIn(m, "configure", "--instance", "Svc", "--port", strconv.Itoa(port2), "--listenIpAddress", "127.0.0.1", "--trust", op.Thumbprint())
	tentacleIn(m, "new-certificate", "--instance", "Svc", "--if-blank")
	out = tentacleIn(m, "service", "--instance", "Svc", "--install", "--start", "--username", "octo")
	t.Logf("service --install --start --username octo:\n%s", out)
	if got := m.Must("ps", "-o", "user=", "-p", strings.TrimSpace(m.Must("systemctl", "show", "-p", "MainPID", "--value", "Svc.service"))); strings.TrimSpace(got) != "octo" {
		t.Errorf("the agent runs as %q, not octo", got)
	}
	if got := m.Must("stat", "-c", "%n %a %U", "/var/lib/tentacle/Svc", "/var/lib/tentacle/Svc/tentacle.config"); got != "/var/lib/tentacle/Svc 700 octo\n/var/lib/tentacle/Svc/tentacle.config 600 octo\n" {
		t.Errorf("ownership after --username:\n%s", got)
	}
	if got := m.Must("stat", "-c", "%a %U", "/etc/octopus/Tentacle/Instances"); strings.TrimSpace(got) != "700 root" {
		t.Errorf("the instance index must stay root's: %s", got)
	}
	if out, err := m.Run("runuser", "-u", "octo", "--", containerBinDir+"/tentacle", "livez", "--config", "/var/lib/tentacle/Svc/tentacle.config"); err != nil {
		t.Errorf("livez as octo: %v\n%s", err, out)
	}
	// Re-running the install without --username keeps the account.
	again = tentacleIn(m, "service", "--instance", "Svc", "--install")
	if !strings.Contains(again, "Keeping User=octo") || !strings.Contains(again, "up to date") {
		t.Errorf("a second --install without --username:\n%s", again)
	}
	tentacleIn(m, "service", "--instance", "Svc", "--stop", "--uninstall")
	t.Logf("whole test under systemd: %s", time.Since(start).Round(time.Millisecond))
}

// waitListening waits until something accepts on 127.0.0.1:port (an agent
// starting or restarting), or fails after limit.
func waitListening(t *testing.T, port int, limit time.Duration) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("nothing listens on 127.0.0.1:%d after %s", port, limit)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
