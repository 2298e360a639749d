//go:build linux

package packaging_test

import (
	"context"
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
	"github.com/tentacle-go/tentacle/internal/scripttest"
)

// containerPkgDir is where the test's packages appear in the container.
const containerPkgDir = "/srv/packages"

// TestDebUnderSystemd installs the deb for real in a container booted with
// systemd, over an upstream-shaped `tentacle` package: an instance runs as a
// service and runs a script through the protocol; an upgrade to the next
// snapshot restarts it while a script runs (the script finishes with its
// whole log under the new agent); remove stops and disables the unit; purge
// removes it and says where the instance is.
func TestDebUnderSystemd(t *testing.T) {
	f, s := first(t), second(t)
	requireTools(t, "dpkg-deb")
	rootfs := nspawntest.Rootfs(t)
	pkgs := t.TempDir()
	if err := os.Chmod(pkgs, 0o755); err != nil {
		t.Fatal(err)
	}
	deb1 := copyInto(t, f.find(t, "Linux Package", `_amd64\.deb$`), pkgs)
	deb2 := copyInto(t, s.find(t, "Linux Package", `_amd64\.deb$`), pkgs)
	upstream := upstreamShapedDeb(t, pkgs)
	start := time.Now()
	m := nspawntest.Boot(t, rootfs, nspawntest.Bind{Host: pkgs, Container: containerPkgDir, ReadOnly: true})
	t.Logf("systemd booted in %s", time.Since(start).Round(time.Millisecond))
	apt := func(args ...string) string {
		t.Helper()
		return m.Must(append([]string{"env", "DEBIAN_FRONTEND=noninteractive", "apt-get", "-y", "-q", "--no-install-recommends"}, args...)...)
	}

	// Upstream's package first, as on a machine being switched over.
	apt("install", containerPkgDir+"/"+upstream)
	if out := m.Must("/opt/octopus/tentacle/Tentacle", "version"); !strings.Contains(out, "upstream-shaped") {
		t.Fatalf("the upstream-shaped package did not install: %s", out)
	}

	// Ours replaces it.
	out := apt("install", containerPkgDir+"/"+deb1)
	t.Logf("apt-get install %s:\n%s", deb1, out)
	if st, _ := m.Run("dpkg-query", "-W", "-f", "${Status}", "tentacle"); strings.Contains(st, "install ok installed") {
		t.Errorf("upstream's tentacle is still installed: %s", st)
	}
	if got := m.Must("dpkg-query", "-W", "-f", "${Version}", "tentacle-go"); !strings.HasPrefix(got, strings.Replace(f.Version, "-", "~", 1)) {
		t.Errorf("tentacle-go version %q, want %s", got, f.Version)
	}
	for _, p := range upstreamPaths {
		if got := strings.TrimSpace(m.Must("readlink", "-f", p)); got != "/usr/bin/tentacle" {
			t.Errorf("%s -> %q, want /usr/bin/tentacle", p, got)
		}
		if out := m.Must(p, "version"); !strings.Contains(out, f.Version) {
			t.Errorf("%s version: %s", p, out)
		}
	}
	// The script supervisor: off PATH in /usr/libexec/tentacle, where the
	// agent (whose executable resolves to /usr/bin/tentacle) looks for it,
	// of the same build.
	if got := m.Must("stat", "-c", "%a %U", supervisorPath); strings.TrimSpace(got) != "755 root" {
		t.Errorf("%s mode/owner: %s", supervisorPath, got)
	}
	if got := strings.TrimSpace(m.Must(supervisorPath, "version")); got != f.Version {
		t.Errorf("%s version = %q, want %s", supervisorPath, got, f.Version)
	}
	if out, err := m.Run("sh", "-c", "command -v tentacle-supervisor"); err == nil {
		t.Errorf("tentacle-supervisor is on PATH: %s", out)
	}
	// Upstream's documented first step runs our setup wizard; without a
	// terminal it says what to use instead.
	if got := m.Must("stat", "-c", "%a %U", "/opt/octopus/tentacle/configure-tentacle.sh"); strings.TrimSpace(got) != "755 root" {
		t.Errorf("configure-tentacle.sh mode/owner: %s", got)
	}
	if out, err := m.Run("/opt/octopus/tentacle/configure-tentacle.sh"); err == nil || !strings.Contains(out, "`tentacle setup` asks questions and needs a terminal") {
		t.Errorf("configure-tentacle.sh without a terminal: %v\n%s", err, out)
	}
	// Nothing machine-wide beyond the package's files: no user, no unit,
	// no configuration.
	if out, _ := m.Run("sh", "-c", "ls /etc/octopus /var/lib/tentacle 2>/dev/null; find /etc/systemd/system -iname '*tentacle*'; getent passwd tentacle"); strings.TrimSpace(out) != "" {
		t.Errorf("installing created more than the package's files:\n%s", out)
	}

	// An instance as automation sets it up, run as a service.
	port := freePort(t)
	op, err := config.GenerateCertificate()
	if err != nil {
		t.Fatal(err)
	}
	m.Must("tentacle", "create-instance", "--instance", "Tentacle", "--config", "/etc/octopus/Tentacle/tentacle.config")
	m.Must("tentacle", "new-certificate", "--instance", "Tentacle", "--if-blank")
	m.Must("tentacle", "configure", "--instance", "Tentacle", "--port", strconv.Itoa(port), "--listenIpAddress", "127.0.0.1", "--trust", op.Thumbprint())
	thumb := strings.TrimSpace(m.Must("tentacle", "show-thumbprint", "--instance", "Tentacle"))
	m.Must("tentacle", "service", "--instance", "Tentacle", "--install", "--start")
	if got := strings.TrimSpace(m.Must("systemctl", "is-active", "Tentacle.service")); got != "active" {
		t.Fatalf("Tentacle.service is %q", got)
	}
	if show := m.Must("systemctl", "show", "-p", "ExecStart", "Tentacle.service"); !strings.Contains(show, "path=/usr/bin/tentacle ") {
		t.Errorf("the unit does not run the package's binary:\n%s", show)
	}
	// A second instance, installed as a service but stopped: an upgrade
	// must leave it stopped.
	m.Must("tentacle", "create-instance", "--instance", "Stopped", "--config", "/var/lib/tentacle/Stopped/tentacle.config")
	m.Must("tentacle", "new-certificate", "--instance", "Stopped", "--if-blank")
	m.Must("tentacle", "configure", "--instance", "Stopped", "--port", strconv.Itoa(freePort(t)), "--listenIpAddress", "127.0.0.1")
	m.Must("tentacle", "service", "--instance", "Stopped", "--install")
	configBefore := m.Must("sha256sum", "/etc/octopus/Tentacle/tentacle.config", "/var/lib/tentacle/Stopped/tentacle.config")

	tlsCert := op.TLS()
	client := &halibut.Client{Certificate: &tlsCert, Limits: halibut.DefaultLimits()}
	defer client.Close()
	scripts := contracts.ScriptServiceV2Client{Caller: contracts.ListeningCaller{Client: client,
		Endpoint: halibut.Endpoint{BaseURI: fmt.Sprintf("https://127.0.0.1:%d/", port), Thumbprint: thumb}}}
	waitListening(t, port)
	if _, err := scripts.StartScript(context.Background(), startCommand("Hello", "echo hello")); err != nil {
		t.Fatal(err)
	}
	if lines, code := runToCompletion(t, scripts, "Hello"); code != 0 || strings.Join(lines, "|") != "hello" {
		t.Errorf("script through the protocol: exit %d, %q", code, lines)
	}
	// The agent said at start that scripts run under the package's
	// tentacle-supervisor (scripts.FindSupervisor).
	if log := agentLog(m); !strings.Contains(log, "scripts run under "+supervisorPath) {
		t.Errorf("the agent's log does not say scripts run under %s:\n%s", supervisorPath, log)
	}

	// Upgrade while a script runs.
	slow := "for i in $(seq 1 30); do echo line $i; sleep 0.1; done; exit 3"
	if _, err := scripts.StartScript(context.Background(), startCommand("AcrossUpgrade", slow)); err != nil {
		t.Fatal(err)
	}
	// The running script's process is a child of the tentacle-supervisor
	// program, not of a second tentacle: read from /proc.
	supervisorPID := scriptSupervisor(t, m, supervisorPath)
	pidBefore := strings.TrimSpace(m.Must("systemctl", "show", "-p", "MainPID", "--value", "Tentacle.service"))
	upgradeStart := time.Now()
	out = apt("install", containerPkgDir+"/"+deb2)
	t.Logf("apt-get install %s (upgrade, %s):\n%s", deb2, time.Since(upgradeStart).Round(time.Millisecond), out)
	if !strings.Contains(out, "restarting Tentacle.service") || strings.Contains(out, "Stopped.service") {
		t.Errorf("the upgrade did not restart exactly the running unit:\n%s", out)
	}
	pidAfter := strings.TrimSpace(m.Must("systemctl", "show", "-p", "MainPID", "--value", "Tentacle.service"))
	if pidAfter == pidBefore || pidAfter == "0" {
		t.Errorf("the agent was not restarted by the upgrade (pid %s -> %s)", pidBefore, pidAfter)
	}
	if got, _ := m.Run("systemctl", "is-active", "Stopped.service"); strings.TrimSpace(got) != "inactive" {
		t.Errorf("the stopped instance is %q after the upgrade", got)
	}
	if out := m.Must("tentacle", "version"); !strings.Contains(out, s.Version) {
		t.Errorf("after the upgrade tentacle version says %s", out)
	}
	if got := strings.TrimSpace(m.Must(supervisorPath, "version")); got != s.Version {
		t.Errorf("after the upgrade %s version = %q, want %s", supervisorPath, got, s.Version)
	}
	// The running supervisor kept the file it started from (dpkg renamed
	// the new one over it): the kernel says its executable was deleted.
	if exe, _ := m.Run("readlink", "/proc/"+supervisorPID+"/exe"); strings.TrimSpace(exe) != supervisorPath+" (deleted)" {
		t.Errorf("the script's supervisor (pid %s) across the upgrade runs %q, want the old %s (deleted)", supervisorPID, strings.TrimSpace(exe), supervisorPath)
	}
	if got := m.Must("sha256sum", "/etc/octopus/Tentacle/tentacle.config", "/var/lib/tentacle/Stopped/tentacle.config"); got != configBefore {
		t.Errorf("the upgrade changed instance configurations:\n%s\n%s", configBefore, got)
	}
	waitListening(t, port)
	lines, code := runToCompletion(t, scripts, "AcrossUpgrade")
	var want []string
	for i := 1; i <= 30; i++ {
		want = append(want, fmt.Sprint("line ", i))
	}
	if strings.Join(lines, "|") != strings.Join(want, "|") || code != 3 {
		t.Errorf("the script across the upgrade: exit %d, lines %q", code, lines)
	}
	// The restarted (new) agent runs scripts under the new supervisor.
	if _, err := scripts.StartScript(context.Background(), startCommand("AfterUpgrade", "sleep 1; echo after")); err != nil {
		t.Fatal(err)
	}
	if pid := scriptSupervisor(t, m, supervisorPath); pid == supervisorPID {
		t.Errorf("the script after the upgrade runs under the old supervisor %s", pid)
	}
	if lines, code := runToCompletion(t, scripts, "AfterUpgrade"); code != 0 || strings.Join(lines, "|") != "after" {
		t.Errorf("script after the upgrade: exit %d, %q", code, lines)
	}
	t.Logf("upgrade %s -> %s: agent pid %s -> %s, the script finished with all %d lines", f.Version, s.Version, pidBefore, pidAfter, len(lines))

	// Reinstalling the same version is a no-op for instances but restarts
	// the running one, and succeeds (idempotent scripts).
	apt("install", "--reinstall", containerPkgDir+"/"+deb2)

	// Remove: units stopped and disabled, configuration kept.
	out = apt("remove", "tentacle-go")
	t.Logf("apt-get remove:\n%s", out)
	for _, unit := range []string{"Tentacle.service", "Stopped.service"} {
		if got, _ := m.Run("systemctl", "is-active", unit); strings.TrimSpace(got) != "inactive" {
			t.Errorf("after remove %s is %q", unit, strings.TrimSpace(got))
		}
		if got, _ := m.Run("systemctl", "is-enabled", unit); strings.TrimSpace(got) != "disabled" {
			t.Errorf("after remove %s is %q, not disabled", unit, strings.TrimSpace(got))
		}
	}
	if got, _ := m.Run("pgrep", "-af", "tentacle run"); strings.TrimSpace(got) != "" {
		t.Errorf("an agent still runs after remove:\n%s", got)
	}
	if _, err := m.Run("test", "-f", "/etc/octopus/Tentacle/tentacle.config"); err != nil {
		t.Error("remove deleted an instance configuration")
	}

	// Purge: the units `tentacle service` wrote are gone; instance data
	// stays and purge says where.
	out = apt("purge", "tentacle-go")
	t.Logf("apt-get purge:\n%s", out)
	for _, want := range []string{"/etc/octopus/Tentacle/tentacle.config", "/var/lib/tentacle/Stopped/tentacle.config", "removing /etc/systemd/system/Tentacle.service"} {
		if !strings.Contains(out, want) {
			t.Errorf("purge did not say %q", want)
		}
	}
	if out, _ := m.Run("sh", "-c", "ls /etc/systemd/system/*.service; systemctl list-unit-files --no-legend 'Tentacle*' 'Stopped*'"); strings.Contains(out, "Tentacle") || strings.Contains(out, "Stopped") {
		t.Errorf("units left after purge:\n%s", out)
	}
	if st, _ := m.Run("dpkg-query", "-W", "-f", "${Status}", "tentacle-go"); strings.Contains(st, "installed") && !strings.Contains(st, "not-installed") {
		t.Errorf("tentacle-go after purge: %s", st)
	}
	if _, err := m.Run("test", "-f", "/var/lib/tentacle/Stopped/tentacle.config"); err != nil {
		t.Error("purge deleted an instance configuration")
	}
	if out, err := m.Run("ls", "-d", "/usr/libexec/tentacle"); err == nil {
		t.Errorf("purge left %s", out)
	}
	// The scripts are idempotent: installing again after purge works and
	// the instance comes back with `tentacle service --install --start`.
	apt("install", containerPkgDir+"/"+deb2)
	m.Must("tentacle", "service", "--instance", "Tentacle", "--install", "--start")
	if got := strings.TrimSpace(m.Must("systemctl", "is-active", "Tentacle.service")); got != "active" {
		t.Errorf("after reinstalling, Tentacle.service is %q", got)
	}
	t.Logf("whole deb test: %s", time.Since(start).Round(time.Millisecond))
}

// supervisorPath is where the deb and rpm install tentacle-supervisor.
const supervisorPath = "/usr/libexec/tentacle/tentacle-supervisor"

// agentLog is what the Tentacle.service agent logged: the journal (its
// stderr) and its log files.
func agentLog(m *nspawntest.Machine) string {
	out, _ := m.Run("sh", "-c", "journalctl -u Tentacle.service --no-pager -o cat; find /etc/octopus /var/lib/tentacle -name '*.txt' -path '*Logs*' -exec cat {} +")
	return out
}

// scriptSupervisor waits for a running script's sleep and returns the pid
// of its nearest ancestor that runs supervisor (read from /proc), or fails
// the test with the ancestors' executables.
func scriptSupervisor(t *testing.T, m *nspawntest.Machine, supervisor string) string {
	t.Helper()
	script := `for i in $(seq 100); do s=$(pgrep -x sleep | head -1); [ -n "$s" ] && break; sleep 0.05; done
[ -n "$s" ] || { echo "no script is sleeping"; exit 1; }
p=$s
for i in 1 2 3 4 5; do
	p=$(ps -o ppid= -p "$p" | tr -d ' ')
	[ -n "$p" ] && [ "$p" != 0 ] || break
	echo "$p $(readlink /proc/$p/exe)"
done`
	// A sleep of 0.1 s may end while its ancestors are read: try again.
	var out string
	for try := 0; try < 20; try++ {
		var err error
		out, err = m.Run("sh", "-c", script)
		if err != nil {
			t.Fatalf("the running script's ancestors: %v\n%s", err, out)
		}
		for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
			if pid, exe, ok := strings.Cut(l, " "); ok && exe == supervisor {
				t.Logf("the script runs under pid %s, %s", pid, exe)
				return pid
			}
		}
	}
	t.Fatalf("no ancestor of the running script runs %s (pid, executable):\n%s", supervisor, out)
	return ""
}

// upstreamShapedDeb builds a `tentacle` package with upstream's paths
// (/opt/octopus/tentacle/Tentacle, /usr/bin/Tentacle) into dir.
func upstreamShapedDeb(t *testing.T, dir string) string {
	t.Helper()
	root := t.TempDir()
	for name, body := range map[string]string{
		"DEBIAN/control":                             "Package: tentacle\nVersion: 8.1.2000\nArchitecture: amd64\nMaintainer: test <test@example.com>\nDescription: upstream-shaped Tentacle package\n",
		"DEBIAN/postinst":                            "#!/bin/sh\necho 'To configure: sudo /opt/octopus/tentacle/configure-tentacle.sh'\n",
		"opt/octopus/tentacle/Tentacle":              "#!/bin/sh\necho upstream-shaped 8.1.2000\n",
		"opt/octopus/tentacle/configure-tentacle.sh": "#!/bin/sh\necho configure\n",
	} {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		mode := os.FileMode(0o755)
		if name == "DEBIAN/control" {
			mode = 0o644
		}
		if err := os.WriteFile(p, []byte(body), mode); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(filepath.Join(root, "usr/bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/opt/octopus/tentacle/Tentacle", filepath.Join(root, "usr/bin/Tentacle")); err != nil {
		t.Fatal(err)
	}
	name := "tentacle_8.1.2000_amd64.deb"
	if out, err := exec.Command("dpkg-deb", "--root-owner-group", "-b", root, filepath.Join(dir, name)).CombinedOutput(); err != nil {
		t.Fatalf("dpkg-deb -b: %v\n%s", err, out)
	}
	return name
}

func copyInto(t *testing.T, src, dir string) string {
	t.Helper()
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, filepath.Base(src)), data, 0o644); err != nil {
		t.Fatal(err)
	}
	return filepath.Base(src)
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// waitListening waits for a (re)started agent to accept connections.
func waitListening(t *testing.T, port int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the agent does not listen on %d", port)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func startCommand(ticket, body string) contracts.StartScriptCommandV2 {
	mutex := "PackageTest"
	return contracts.StartScriptCommandV2{ScriptTicket: contracts.ScriptTicket{TaskID: ticket}, ScriptBody: body, TaskID: "ServerTasks-" + ticket,
		Isolation: contracts.NoIsolation, ScriptIsolationMutexTimeout: contracts.NoMutexTimeout, IsolationMutexName: &mutex,
		Scripts: map[string]string{}, Files: []contracts.ScriptFile{}, Arguments: []string{}}
}

// runToCompletion follows a script as an Octopus Server does and returns
// its output lines (without the agent's verbose preamble) and exit code.
func runToCompletion(t *testing.T, s contracts.ScriptServiceV2Client, ticket string) ([]string, int32) {
	t.Helper()
	return scripttest.RunToCompletion(t, s, ticket, 0)
}
