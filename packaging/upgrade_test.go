//go:build linux

package packaging_test

import (
	"context"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
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
	"github.com/tentacle-go/tentacle/packaging/feed"
)

// brokenVersion is a release in the test feed whose binary answers
// `version` (so an install takes it) but exits at once when run as an agent.
const brokenVersion = "9.9.9-exits-at-start"

// upgradeFeed is the two snapshots `make package` built (first unsigned
// unless TENTACLE_SIGNING_KEY was set, second signed) plus brokenVersion,
// signed with the second's key, served over HTTPS on loopback.
type upgradeFeed struct {
	URL    string
	PubKey string // RW… line
	// CA is the PEM of the server's certificate; the container's tentacle
	// trusts it through SSL_CERT_FILE.
	CA []byte
}

func newUpgradeFeed(t *testing.T, f, s *goreleaserBuild) *upgradeFeed {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "feed")
	for _, b := range []*goreleaserBuild{f, s} {
		if _, err := feed.Publish(b.Dir, dir); err != nil {
			t.Fatal(err)
		}
	}
	// The broken release: a tar.gz shaped as goreleaser's, whose Tentacle
	// is a script.
	bdir := filepath.Join(dir, brokenVersion)
	stage := t.TempDir()
	if err := os.MkdirAll(filepath.Join(stage, "tentacle"), 0o755); err != nil {
		t.Fatal(err)
	}
	script := "#!/bin/sh\nif [ \"$1\" = version ]; then echo " + brokenVersion + "; exit 0; fi\necho 'this release cannot start' >&2\nexit 1\n"
	if err := os.WriteFile(filepath.Join(stage, "tentacle", "Tentacle"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(bdir, 0o755); err != nil {
		t.Fatal(err)
	}
	archive := "tentacle_" + brokenVersion + "_linux_amd64.tar.gz"
	run(t, "tar", "czf", filepath.Join(bdir, archive), "-C", stage, "tentacle")
	sums := run(t, "sh", "-c", "cd "+nspawntest.ShellQuote(bdir)+" && sha256sum "+archive)
	if err := os.WriteFile(filepath.Join(bdir, "checksums.txt"), []byte(sums), 0o644); err != nil {
		t.Fatal(err)
	}
	key := filepath.Join(filepath.Dir(s.PublicKey), "minisign.key")
	run(t, "minisign", "-S", "-s", key, "-m", filepath.Join(bdir, "checksums.txt"))
	if _, err := feed.Rebuild(dir); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewTLSServer(http.FileServer(http.Dir(dir)))
	t.Cleanup(srv.Close)
	pub, err := os.ReadFile(s.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(pub)), "\n")
	return &upgradeFeed{
		URL:    srv.URL,
		PubKey: lines[len(lines)-1],
		CA:     pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}),
	}
}

// TestReleaseListAndInstallFromTheHTTPSFeed runs the packaged binary of the
// first snapshot on this machine against the HTTPS feed: list with
// constraints, then install the second snapshot over a copy of itself.
func TestReleaseListAndInstallFromTheHTTPSFeed(t *testing.T) {
	f, s := first(t), second(t)
	fd := newUpgradeFeed(t, f, s)
	dir := t.TempDir()
	run(t, "tar", "xzf", f.find(t, "Archive", `_linux_amd64\.tar\.gz$`), "-C", dir)
	bin := filepath.Join(dir, "tentacle", "Tentacle")
	ca := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(ca, fd.CA, 0o644); err != nil {
		t.Fatal(err)
	}
	tentacle := func(args ...string) (string, error) {
		cmd := exec.Command(bin, args...)
		// No dpkg or rpm on the PATH: this is a binary install whatever
		// the machine running the test has.
		cmd.Env = []string{"SSL_CERT_FILE=" + ca, "NO_COLOR=1", "PATH=/nonexistent", "HOME=" + dir}
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	for _, c := range []struct {
		constraint string
		want       []string
	}{
		{"latest", nil}, // snapshots are pre-releases: none without --prerelease
		{">= " + f.Version + ", <= " + s.Version, []string{s.Version, f.Version}},
		{"> " + f.Version + ", < 9", []string{s.Version}},
		{f.Version, []string{f.Version}},
	} {
		out, err := tentacle("release", "list", "--feed", fd.URL, "--version", c.constraint, "--format", "json")
		if c.want == nil {
			if err != nil || !strings.Contains(out, `"versions": []`) {
				t.Errorf("list %q: %v\n%s", c.constraint, err, out)
			}
			continue
		}
		var got []string
		for _, line := range strings.Split(out, "\n") {
			if v, ok := strings.CutPrefix(strings.TrimSpace(line), `"version": "`); ok {
				got = append(got, strings.TrimSuffix(v, `",`))
			}
		}
		if err != nil || strings.Join(got, " ") != strings.Join(c.want, " ") {
			t.Errorf("list %q: %v: got %v, want %v\n%s", c.constraint, err, got, c.want, out)
		}
	}
	target := filepath.Join(dir, "installed", "tentacle")
	if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
		t.Fatal(err)
	}
	run(t, "cp", bin, target)
	out, err := tentacle("release", "install", "--feed", fd.URL, "--version", s.Version, "--pubkey", fd.PubKey, "--target", target, "--download-dir", filepath.Join(dir, "downloads"))
	if err != nil {
		t.Fatalf("release install --feed: %v\n%s", err, out)
	}
	t.Logf("release install --feed:\n%s", out)
	if got := run(t, target, "version"); strings.TrimSpace(got) != s.Version {
		t.Errorf("after the install the target says %s, want %s", got, s.Version)
	}
	if got := run(t, target+".previous", "version"); strings.TrimSpace(got) != f.Version {
		t.Errorf("the previous binary says %s, want %s", got, f.Version)
	}
	// The archive's tentacle-supervisor beside it (not a bin folder), of
	// the new build.
	if got := run(t, filepath.Join(filepath.Dir(target), "tentacle-supervisor"), "version"); strings.TrimSpace(got) != s.Version {
		t.Errorf("the installed tentacle-supervisor says %s, want %s", got, s.Version)
	}
	// The broken release is signed with the same key, so only its binary
	// check stands between it and the target: it answers `version`, so it
	// installs; `tentacle upgrade` (below, under systemd) is what catches it.
	if out, err := tentacle("release", "install", "--feed", fd.URL, "--version", s.Version, "--pubkey", fd.PubKey, "--target", target); err != nil || !strings.Contains(out, "nothing to install") {
		t.Errorf("installing the installed version again: %v\n%s", err, out)
	}
}

// containerFeedDir holds, in the container, the feed's CA certificate and
// the first snapshot's archive.
const containerFeedDir = "/srv/feed-test"

// TestUpgradeUnderSystemd upgrades a binary install under a real systemd:
// a script running through the upgrade completes with every line and the
// agent then runs the new version; a release whose agent exits at start is
// rolled back and the service is healthy on the previous version; the
// daily timer runs the upgrade unit for real; uninstalling removes it.
func TestUpgradeUnderSystemd(t *testing.T) {
	f, s := first(t), second(t)
	start := time.Now()
	m, fd, archive := bootWithFeed(t, f, s, f.find(t, "Archive", `_linux_amd64\.tar\.gz$`))
	env := []string{"SSL_CERT_FILE=" + containerFeedDir + "/ca.pem"}
	const bin = "/opt/tentacle/Tentacle"
	m.Must("tar", "xzf", containerFeedDir+"/"+archive, "-C", "/opt")
	if got := strings.TrimSpace(m.Must(bin, "version")); got != f.Version {
		t.Fatalf("the unpacked binary says %s", got)
	}
	port, op := setUpListeningInstance(t, m, bin)
	thumb := strings.TrimSpace(m.Must(bin, "show-thumbprint", "--instance", "Tentacle"))
	scripts := scriptClient(t, op, port, thumb)
	waitListening(t, port)

	// The archive's tentacle-supervisor lies beside the binary: scripts
	// run under it.
	const supervisor = "/opt/tentacle/tentacle-supervisor"
	if log := m.Must("journalctl", "-u", "Tentacle.service", "--no-pager", "-o", "cat"); !strings.Contains(log, "scripts run under "+supervisor) {
		t.Errorf("the agent's journal does not say scripts run under %s:\n%s", supervisor, log)
	}

	// Upgrade while a script runs.
	slow := "for i in $(seq 1 30); do echo line $i; sleep 0.1; done; exit 3"
	if _, err := scripts.StartScript(context.Background(), startCommand("AcrossUpgrade", slow)); err != nil {
		t.Fatal(err)
	}
	supervisorPID := scriptSupervisor(t, m, supervisor)
	pidBefore := mainPID(t, m)
	upgradeStart := time.Now()
	out, err := m.RunEnv(env, bin, "upgrade", "--feed", fd.URL, "--version", s.Version, "--pubkey", fd.PubKey)
	if err != nil {
		t.Fatalf("tentacle upgrade: %v\n%s", err, out)
	}
	t.Logf("tentacle upgrade %s -> %s (%s):\n%s", f.Version, s.Version, time.Since(upgradeStart).Round(time.Millisecond), out)
	pidAfter := mainPID(t, m)
	if pidAfter == pidBefore || pidAfter == "0" {
		t.Errorf("the agent was not restarted (pid %s -> %s)", pidBefore, pidAfter)
	}
	if got := strings.TrimSpace(m.Must(bin, "version")); got != s.Version {
		t.Errorf("after the upgrade %s says %s", bin, got)
	}
	if exe := strings.TrimSpace(m.Must("readlink", "/proc/"+pidAfter+"/exe")); exe != bin {
		t.Errorf("the agent runs %s, not the upgraded %s", exe, bin)
	}
	// The upgrade replaced the supervisor too, by a rename: the running
	// one carries on from its old file, kept as .previous for a rollback.
	if got := strings.TrimSpace(m.Must(supervisor, "version")); got != s.Version {
		t.Errorf("after the upgrade %s says %s, want %s", supervisor, got, s.Version)
	}
	if got := strings.TrimSpace(m.Must(supervisor+".previous", "version")); got != f.Version {
		t.Errorf("after the upgrade %s.previous says %s, want %s", supervisor, got, f.Version)
	}
	if exe, _ := m.Run("readlink", "/proc/"+supervisorPID+"/exe"); strings.TrimSpace(exe) != supervisor+" (deleted)" && strings.TrimSpace(exe) != supervisor+".previous" {
		t.Errorf("the script's supervisor (pid %s) across the upgrade runs %q, want its old file", supervisorPID, strings.TrimSpace(exe))
	}
	lines, code := runToCompletion(t, scripts, "AcrossUpgrade")
	if want := numberedLines(30); strings.Join(lines, "|") != strings.Join(want, "|") || code != 3 {
		t.Errorf("the script across the upgrade: exit %d, lines %q", code, lines)
	}

	// A release whose agent exits at start: rolled back, healthy on s.
	out, err = m.RunEnv(env, bin, "upgrade", "--feed", fd.URL, "--version", brokenVersion, "--pubkey", fd.PubKey, "--health-wait", "15")
	t.Logf("tentacle upgrade to %s:\n%s", brokenVersion, out)
	var xe *exec.ExitError
	if err == nil || !strings.Contains(out, "rolled back to "+s.Version) {
		t.Errorf("the broken release was not rolled back: %v", err)
	} else if !errors.As(err, &xe) || xe.ExitCode() != 1 {
		t.Errorf("the rolled-back upgrade exited %v, want 1", err)
	}
	if got := strings.TrimSpace(m.Must(bin, "version")); got != s.Version {
		t.Errorf("after the rollback %s says %s, want %s", bin, got, s.Version)
	}
	// The broken release had no supervisor: its install removed it, the
	// rollback put the previous one back.
	if got, err := m.Run(supervisor, "version"); err != nil || strings.TrimSpace(got) != s.Version {
		t.Errorf("after the rollback %s: %v %s, want %s", supervisor, err, got, s.Version)
	}
	if got := strings.TrimSpace(m.Must("systemctl", "is-active", "Tentacle.service")); got != "active" {
		t.Errorf("after the rollback Tentacle.service is %q", got)
	}
	waitListening(t, port)
	if out, err := m.Run(bin, "livez", "--instance", "Tentacle"); err != nil {
		t.Errorf("livez after the rollback: %v\n%s", err, out)
	}
	if _, err := scripts.StartScript(context.Background(), startCommand("AfterRollback", "echo still here")); err != nil {
		t.Fatal(err)
	}
	if lines, code := runToCompletion(t, scripts, "AfterRollback"); code != 0 || strings.Join(lines, "|") != "still here" {
		t.Errorf("a script after the rollback: exit %d, %q", code, lines)
	}

	// The daily timer and its unit, run for real (the feed is already at
	// the version asked for: the run finds nothing to do and succeeds).
	m.Must("sh", "-c", "echo SSL_CERT_FILE="+containerFeedDir+"/ca.pem > /etc/octopus/tentacle-upgrade.env")
	out = m.Must(bin, "service", "--instance", "Tentacle", "--install", "--auto-upgrade", s.Version, "--auto-upgrade-feed", fd.URL, "--auto-upgrade-pubkey", fd.PubKey)
	t.Logf("service --install --auto-upgrade:\n%s", out)
	if got := strings.TrimSpace(m.Must("systemctl", "is-enabled", "tentacle-upgrade.timer")); got != "enabled" {
		t.Errorf("tentacle-upgrade.timer is %q", got)
	}
	if got := m.Must("systemctl", "show", "-p", "RandomizedDelayUSec,Persistent", "tentacle-upgrade.timer"); !strings.Contains(got, "Persistent=yes") || !strings.Contains(got, "RandomizedDelayUSec=1d") {
		t.Errorf("timer properties:\n%s", got)
	}
	if out, err := m.Run("systemctl", "start", "tentacle-upgrade.service"); err != nil {
		t.Errorf("the upgrade unit failed: %v\n%s\n%s", err, out, m.Must("journalctl", "-u", "tentacle-upgrade.service", "--no-pager", "-o", "cat"))
	}
	if journal := m.Must("journalctl", "-u", "tentacle-upgrade.service", "--no-pager", "-o", "cat"); !strings.Contains(journal, "nothing to do") {
		t.Errorf("the upgrade unit's journal:\n%s", journal)
	}
	m.Must(bin, "service", "--instance", "Tentacle", "--stop", "--uninstall")
	if out, _ := m.Run("sh", "-c", "ls /etc/systemd/system/ | grep tentacle-upgrade; systemctl list-timers --all --no-legend | grep tentacle-upgrade"); strings.TrimSpace(out) != "" {
		t.Errorf("the automatic upgrade outlived the last instance's service:\n%s", out)
	}
	t.Logf("whole upgrade test under systemd: %s", time.Since(start).Round(time.Millisecond))
}

// TestUpgradeOfTheDebUnderSystemd: `tentacle upgrade` on a deb install
// fetches the next snapshot's .deb from the feed and installs it through
// apt-get (dpkg), while a script runs; the package's own scripts restart
// the agent and the upgrade checks it is healthy.
func TestUpgradeOfTheDebUnderSystemd(t *testing.T) {
	f, s := first(t), second(t)
	start := time.Now()
	m, fd, deb1 := bootWithFeed(t, f, s, f.find(t, "Linux Package", `_amd64\.deb$`))
	m.Must("env", "DEBIAN_FRONTEND=noninteractive", "apt-get", "-y", "-q", "install", containerFeedDir+"/"+deb1)
	port, op := setUpListeningInstance(t, m, "tentacle")
	thumb := strings.TrimSpace(m.Must("tentacle", "show-thumbprint", "--instance", "Tentacle"))
	scripts := scriptClient(t, op, port, thumb)
	waitListening(t, port)

	slow := "for i in $(seq 1 30); do echo line $i; sleep 0.1; done; exit 3"
	if _, err := scripts.StartScript(context.Background(), startCommand("AcrossDebUpgrade", slow)); err != nil {
		t.Fatal(err)
	}
	pidBefore := mainPID(t, m)
	out, err := m.RunEnv([]string{"SSL_CERT_FILE=" + containerFeedDir + "/ca.pem"}, "tentacle", "upgrade", "--feed", fd.URL, "--version", s.Version, "--pubkey", fd.PubKey, "--format", "json")
	if err != nil {
		t.Fatalf("tentacle upgrade of the deb: %v\n%s", err, out)
	}
	t.Logf("tentacle upgrade (deb):\n%s", out)
	for _, want := range []string{`"method": "deb"`, `"to": "` + s.Version + `"`, `"outcome": "upgraded"`, "apt-get install -y /var/cache/tentacle/releases/"} {
		if !strings.Contains(out, want) {
			t.Errorf("the upgrade's output lacks %q", want)
		}
	}
	if got := m.Must("dpkg-query", "-W", "-f", "${Version}", "tentacle-go"); !strings.HasPrefix(got, strings.Replace(s.Version, "-", "~", 1)) {
		t.Errorf("tentacle-go is %s after the upgrade, want %s", got, s.Version)
	}
	if pidAfter := mainPID(t, m); pidAfter == pidBefore || pidAfter == "0" {
		t.Errorf("the agent was not restarted (pid %s -> %s)", pidBefore, pidAfter)
	}
	lines, code := runToCompletion(t, scripts, "AcrossDebUpgrade")
	if want := numberedLines(30); strings.Join(lines, "|") != strings.Join(want, "|") || code != 3 {
		t.Errorf("the script across the deb upgrade: exit %d, lines %q", code, lines)
	}
	t.Logf("whole deb upgrade test: %s", time.Since(start).Round(time.Millisecond))
}

// bootWithFeed serves the upgrade feed and boots a container that sees, in
// containerFeedDir, the feed's CA certificate and the artifact to start from
// (whose file name it returns).
func bootWithFeed(t *testing.T, f, s *goreleaserBuild, artifact string) (*nspawntest.Machine, *upgradeFeed, string) {
	t.Helper()
	rootfs := nspawntest.Rootfs(t)
	fd := newUpgradeFeed(t, f, s)
	share := t.TempDir()
	if err := os.Chmod(share, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(share, "ca.pem"), fd.CA, 0o644); err != nil {
		t.Fatal(err)
	}
	name := copyInto(t, artifact, share)
	start := time.Now()
	m := nspawntest.Boot(t, rootfs, nspawntest.Bind{Host: share, Container: containerFeedDir, ReadOnly: true})
	t.Logf("systemd booted in %s", time.Since(start).Round(time.Millisecond))
	return m, fd, name
}

// setUpListeningInstance creates the Tentacle instance listening on a free
// loopback port and runs it as a service, with bin.
func setUpListeningInstance(t *testing.T, m *nspawntest.Machine, bin string) (int, *config.Certificate) {
	t.Helper()
	port := freePort(t)
	op, err := config.GenerateCertificate()
	if err != nil {
		t.Fatal(err)
	}
	m.Must(bin, "create-instance", "--instance", "Tentacle", "--config", "/etc/octopus/Tentacle/tentacle.config")
	m.Must(bin, "new-certificate", "--instance", "Tentacle", "--if-blank")
	m.Must(bin, "configure", "--instance", "Tentacle", "--port", strconv.Itoa(port), "--listenIpAddress", "127.0.0.1", "--trust", op.Thumbprint())
	m.Must(bin, "service", "--instance", "Tentacle", "--install", "--start")
	return port, op
}

func scriptClient(t *testing.T, op *config.Certificate, port int, thumb string) contracts.ScriptServiceV2Client {
	t.Helper()
	tlsCert := op.TLS()
	client := &halibut.Client{Certificate: &tlsCert, Limits: halibut.DefaultLimits()}
	t.Cleanup(client.Close)
	return contracts.ScriptServiceV2Client{Caller: contracts.ListeningCaller{Client: client,
		Endpoint: halibut.Endpoint{BaseURI: fmt.Sprintf("https://127.0.0.1:%d/", port), Thumbprint: thumb}}}
}

func mainPID(t *testing.T, m *nspawntest.Machine) string {
	t.Helper()
	return strings.TrimSpace(m.Must("systemctl", "show", "-p", "MainPID", "--value", "Tentacle.service"))
}

func numberedLines(n int) []string {
	var out []string
	for i := 1; i <= n; i++ {
		out = append(out, fmt.Sprint("line ", i))
	}
	return out
}
