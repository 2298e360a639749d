//go:build linux

package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"aead.dev/minisign"

	"github.com/tentacle-go/tentacle/agent/contracts"
	"github.com/tentacle-go/tentacle/agent/halibut"
	"github.com/tentacle-go/tentacle/internal/nspawntest"
	"github.com/tentacle-go/tentacle/internal/winetest"
	"github.com/tentacle-go/tentacle/provision/release"
	"github.com/tentacle-go/tentacle/provision/upgrade"
)

// Two snapshots of one X.Y.Z, as `make package` stamps them: their MSIs
// share a ProductVersion and replace each other.
const (
	wineUpgradeFrom = "1.2.3-snapshot.20261203100000.a1b2c3d"
	wineUpgradeTo   = "1.2.3-snapshot.20261203110000.a1b2c3d"
)

// TestWindowsUpgradeUnderWine: the MSI of one snapshot installed with
// Wine's msiexec into a fresh prefix, its agent run as a service under
// Wine's SCM and reached from the Linux build; then `Tentacle.exe upgrade`
// from a feed on loopback moves it to the next snapshot through msiexec
// and the SCM while a script runs, the agent comes back healthy on the new
// version and the script completes; uninstalling leaves nothing of ours but
// instance data.
func TestWindowsUpgradeUnderWine(t *testing.T) {
	t.Parallel()
	start := time.Now()
	w := newWineTentacle(t, "-X main.version="+wineUpgradeFrom)
	if _, err := exec.LookPath("wixl"); err != nil {
		t.Skip("SKIP: wixl is not installed (apt-get install wixl msitools; `make test-windows` does it)")
	}
	if err := w.prefix.KeepServer(); err != nil {
		t.Fatal(err)
	}
	exe2 := w.tc.BuildExe(t, "./cmd/tentacle", "-X main.version="+wineUpgradeTo)
	sup1 := w.tc.BuildExe(t, "./cmd/tentacle-supervisor", "-X main.version="+wineUpgradeFrom)
	sup2 := w.tc.BuildExe(t, "./cmd/tentacle-supervisor", "-X main.version="+wineUpgradeTo)
	msi1, msi2 := buildMSIWithScript(t, w.exe, sup1, wineUpgradeFrom), buildMSIWithScript(t, exe2, sup2, wineUpgradeTo)

	// The feed: both snapshots' MSIs, signed, over HTTP on loopback (the
	// Windows build verifies TLS with the system's certificate store, which
	// a test cannot add a certificate to under Wine).
	pub, priv, err := minisign.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	feedDir := filepath.Join(w.dir, "feed")
	var versions []release.Version
	for v, msi := range map[string]string{wineUpgradeFrom: msi1, wineUpgradeTo: msi2} {
		data, err := os.ReadFile(msi)
		if err != nil {
			t.Fatal(err)
		}
		versions = append(versions, writeFeedVersion(t, feedDir, v, map[string][]byte{filepath.Base(msi): data}, priv))
	}
	writeFeedIndex(t, feedDir, versions)
	srv := httptest.NewServer(http.FileServer(http.Dir(feedDir)))
	t.Cleanup(srv.Close)
	key, _ := pub.MarshalText()
	t.Logf("built the two snapshots, their MSIs and the feed in %s", time.Since(start).Round(time.Millisecond))

	// Install the first snapshot and run its agent as a service.
	phase := time.Now()
	before := w.prefix.DriveFiles()
	w.wine("msiexec", "/i", winetest.WindowsPath(msi1), "/qn")
	w.exe = `C:\Program Files\Octopus Deploy\Tentacle\Tentacle.exe`
	if got := strings.TrimSpace(w.run("version")); got != wineUpgradeFrom {
		t.Fatalf("the installed Tentacle.exe says %q, want %s", got, wineUpgradeFrom)
	}
	port := freePort(t)
	w.setUp(port)
	w.run("service", "--instance", "E2E", "--install", "--start")
	const name = "OctopusDeploy Tentacle: E2E"
	if query, _ := w.sc("query", name); !strings.Contains(query, "RUNNING") {
		t.Fatalf("after --install --start, sc query:\n%s", query)
	}
	waitListening(t, port, wineDeadline)
	if out, errs, code := w.remote(append(append([]string{"exec"}, w.endpoint(port)...), "--", "echo on the first snapshot")...); strings.TrimSpace(out) != "on the first snapshot" || code != 0 {
		t.Fatalf("exec before the upgrade: exit %d, stdout %q, stderr %q", code, out, errs)
	}
	t.Logf("installed the MSI and started the service in %s", time.Since(phase).Round(time.Millisecond))
	// The agent runs scripts under the MSI's tentacle-supervisor.exe.
	installDir := filepath.Join(w.prefix.DriveC(), "Program Files", "Octopus Deploy", "Tentacle")
	if log := w.agentLog(); !strings.Contains(log, `scripts run under C:\Program Files\Octopus Deploy\Tentacle\tentacle-supervisor.exe`) {
		t.Errorf("the agent's log does not say scripts run under the installed tentacle-supervisor.exe:\n%s", log)
	}

	// A script in flight across the upgrade: it waits for a file the test
	// writes once the upgrade is done.
	releaseFile := filepath.Join(w.prefix.DriveC(), "Octopus", "release-the-script")
	scripts := w.scriptClient(port)
	body := "echo started\r\n:wait\r\nif exist C:\\Octopus\\release-the-script goto done\r\nping -n 2 127.0.0.1 >nul\r\ngoto wait\r\n:done\r\necho finished\r\nexit /b 3\r\n"
	if _, err := scripts.StartScript(context.Background(), startCmd("AcrossUpgrade", body, contracts.NoIsolation)); err != nil {
		t.Fatal(err)
	}

	phase = time.Now()
	out := w.run("upgrade", "--feed", srv.URL, "--version", wineUpgradeTo, "--pubkey", string(key),
		"--download-dir", winetest.WindowsPath(filepath.Join(w.dir, "downloads")), "--format", "json")
	t.Logf("Tentacle.exe upgrade (%s):\n%s", time.Since(phase).Round(time.Millisecond), out)
	// Progress went to stderr, which shares the file with stdout here: the
	// JSON document is the last thing printed, from a line that is "{".
	var res upgrade.Result
	doc := out[max(strings.LastIndex(out, "\n{\n"), strings.LastIndex(out, "\n{\r\n"), 0):]
	if err := json.Unmarshal([]byte(doc), &res); err != nil {
		t.Fatalf("upgrade --format json: %v", err)
	}
	want := []upgrade.InstanceResult{{Name: "E2E", Outcome: upgrade.OutcomeUpgraded}}
	if res.Method != release.MethodMSI || res.From != wineUpgradeFrom || res.To != wineUpgradeTo || res.RolledBack || !slices.Equal(res.Instances, want) {
		t.Errorf("upgrade result %+v, want msi %s -> %s, instance E2E upgraded", res, wineUpgradeFrom, wineUpgradeTo)
	}

	// The script's supervisor still runs from the old tentacle-supervisor.exe,
	// moved aside so that msiexec could put the new one in place.
	if _, err := os.Stat(filepath.Join(installDir, "tentacle-supervisor.exe.old")); err != nil {
		t.Errorf("no tentacle-supervisor.exe.old while the script's supervisor runs: %v", err)
	}

	// The service runs the new version and serves.
	if query, _ := w.sc("query", name); !strings.Contains(query, "RUNNING") {
		t.Errorf("after the upgrade, sc query:\n%s", query)
	}
	if got := strings.TrimSpace(w.run("version")); got != wineUpgradeTo {
		t.Errorf("after the upgrade Tentacle.exe says %q, want %s", got, wineUpgradeTo)
	}
	if got := w.lastStartedVersion(); got != wineUpgradeTo {
		t.Errorf("the agent last started as version %q, want %s", got, wineUpgradeTo)
	}
	w.run("livez", "--instance", "E2E")
	waitListening(t, port, wineDeadline)
	if out, errs, code := w.remote(append(append([]string{"exec"}, w.endpoint(port)...), "--", "echo on the second snapshot")...); strings.TrimSpace(out) != "on the second snapshot" || code != 0 {
		t.Errorf("exec after the upgrade: exit %d, stdout %q, stderr %q", code, out, errs)
	}

	// The script outlived its agent; the new agent follows it to its end.
	if err := os.WriteFile(releaseFile, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	lines, code := runToCompletion(t, scripts, "AcrossUpgrade", 0)
	if code != 3 || !slices.Contains(lines, "started") || !slices.Contains(lines, "finished") {
		t.Errorf("the script across the upgrade: exit %d, lines %q", code, lines)
	}
	os.Remove(releaseFile)

	// Uninstall: no service, nothing of ours left but instance data.
	phase = time.Now()
	w.wine("msiexec", "/x", winetest.WindowsPath(msi2), "/qn")
	if query, code := w.sc("query", name); code == 0 {
		t.Errorf("after uninstall, sc query: exit 0\n%s", query)
	}
	if left := w.prefix.LeftOnDrive(before); len(left) > 0 {
		t.Errorf("uninstall left on C:\n%s", strings.Join(left, "\n"))
	}
	t.Logf("uninstalled in %s; whole test %s", time.Since(phase).Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
}

// buildMSIWithScript builds version's MSI from exe and supervisor with
// packaging/msi.sh, as goreleaser's two hooks do (one per binary, under
// the names goreleaser gives them), into a folder of its own.
func buildMSIWithScript(t *testing.T, exe, supervisor, version string) string {
	t.Helper()
	out, bins := t.TempDir(), t.TempDir()
	for from, name := range map[string]string{supervisor: "tentacle-supervisor.exe", exe: "Tentacle.exe"} {
		data, err := os.ReadFile(from)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(bins, name), data, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{"tentacle-supervisor.exe", "Tentacle.exe"} {
		cmd := exec.Command("sh", "packaging/msi.sh", "windows", "amd64", filepath.Join(bins, name), version, out)
		cmd.Dir = nspawntest.RepoRoot(t)
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("msi.sh %s %s: %v\n%s", name, version, err, b)
		}
	}
	return filepath.Join(out, "tentacle_"+version+"_windows_amd64.msi")
}

// wine runs one of Wine's programs (msiexec, reg) in the prefix; it fails
// the test on a non-zero exit.
func (w *wineTentacle) wine(program string, args ...string) string {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wineDeadline)
	defer cancel()
	out, code := w.output(w.prefix.Command(ctx, program, args...))
	if code != 0 {
		w.t.Fatalf("%s %s: exit %d\n%s", program, strings.Join(args, " "), code, out)
	}
	return out
}

// scriptClient is the operator's script service client of the agent
// listening on port.
func (w *wineTentacle) scriptClient(port int) contracts.ScriptServiceV2Client {
	tlsCert := w.operator.TLS()
	client := &halibut.Client{Certificate: &tlsCert, Limits: halibut.DefaultLimits()}
	w.t.Cleanup(client.Close)
	return contracts.ScriptServiceV2Client{Caller: contracts.ListeningCaller{Client: client,
		Endpoint: halibut.Endpoint{BaseURI: fmt.Sprintf("https://127.0.0.1:%d/", port), Thumbprint: w.thumb}}}
}

// lastStartedVersion is the version the instance's agent logged when it
// last started ("" when it never did).
// agentLog is the E2E instance's log files, concatenated.
func (w *wineTentacle) agentLog() string {
	logs, _ := filepath.Glob(filepath.Join(w.prefix.DriveC(), "Octopus", "E2E", "Logs", "*"))
	var all strings.Builder
	for _, l := range logs {
		data, _ := os.ReadFile(l)
		all.Write(data)
	}
	return all.String()
}

func (w *wineTentacle) lastStartedVersion() string {
	last := ""
	for _, line := range strings.Split(w.agentLog(), "\n") {
		// "<time>  <pid>   INFO  Tentacle version X (X) instance E2E"
		if _, v, ok := strings.Cut(line, " INFO  Tentacle version "); ok {
			last, _, _ = strings.Cut(strings.TrimSpace(v), " ")
		}
	}
	return last
}
