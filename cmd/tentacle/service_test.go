package main

import (
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/tentacle-go/tentacle/agent/config"
	"github.com/tentacle-go/tentacle/agent/service"
	"github.com/tentacle-go/tentacle/agent/service/servicetest"
)

// fakeSystemd makes `tentacle service` in this process manage units in a
// temp directory through a simulated systemctl (agent/service/servicetest),
// and records every systemctl call in the golden transcript. The real
// systemd is exercised by service_nspawn_test.go.
func fakeSystemd(t *testing.T, h *harness) (*servicetest.Systemctl, string) {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Skip("SKIP: the systemd golden test describes Linux")
	}
	unitDir := filepath.Join(h.tmp, "systemd", "system")
	fake := servicetest.New(unitDir)
	oldMgr, oldExe := newServiceManager, serviceExecutable
	t.Cleanup(func() { newServiceManager, serviceExecutable = oldMgr, oldExe })
	serviceExecutable = func() (string, error) { return "/usr/local/bin/tentacle", nil }
	// "octo" is a non-root account this test may give files to: itself, or
	// an unused uid when the test runs as root.
	me, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	octo := &user.User{Username: "octo", Uid: me.Uid, Gid: me.Gid}
	if os.Getuid() == 0 {
		octo.Uid, octo.Gid = "4242", "4242"
	}
	newServiceManager = func(e *Env, sel config.Selection) (service.Manager, error) {
		// A real agent touches its heartbeat as soon as it serves.
		fake.OnStart = func(unit string) {
			if s, err := config.LoadSettings(sel.ConfigPath); err == nil {
				p := filepath.Join(s.Home(), "livez.heartbeat")
				os.WriteFile(p, nil, 0o600)
				now := time.Now()
				os.Chtimes(p, now, now)
			}
		}
		return &service.Systemd{
			Scope: service.SystemScope, UnitDir: unitDir, Host: fake, SystemdVersion: 252,
			Infof: e.Infof, Warnf: e.Warnf, StartupWait: 2 * time.Second,
			LookupUser: func(name string) (*user.User, error) {
				if name == "octo" {
					return octo, nil
				}
				return nil, user.UnknownUserError(name)
			},
		}, nil
	}
	os.MkdirAll(unitDir, 0o755)
	return fake, unitDir
}

// runLogged runs a command and adds the systemctl calls it made to the
// transcript.
func runLogged(h *harness, fake *servicetest.Systemctl, args ...string) (string, int) {
	h.t.Helper()
	out, _, code := h.run(args...)
	for _, c := range fake.Log() {
		fmt.Fprintf(&h.log, "  [ran] %s\n", c)
	}
	if code != 0 || len(fake.Log()) > 0 {
		h.log.WriteString("\n")
	}
	return out, code
}

func TestServiceCommandWithSimulatedSystemd(t *testing.T) {
	h := newHarness(t)
	fake, unitDir := fakeSystemd(t, h)
	cfg := filepath.Join(h.tmp, "var", "Tentacle", "tentacle.config")
	h.must("create-instance", "--instance", "Tentacle", "--config", cfg)
	unit := filepath.Join(unitDir, "Tentacle.service")

	h.fail(exitUserError, "service", "--instance", "Tentacle")
	h.fail(exitUserError, "service", "--instance", "Tentacle", "--start")
	h.fail(exitUserError, "service", "--instance=*", "--install")
	h.fail(exitUserError, "service", "--instance", "Nope", "--install")

	// Flags in any order run in upstream's: install before start.
	runLogged(h, fake, "service", "--start", "--install", "--instance", "Tentacle", "--dependOn", "docker")
	if !fake.Active("Tentacle.service") || !fake.Enabled("Tentacle.service") {
		t.Fatal("--install --start left the unit inactive or disabled")
	}
	if st, err := os.Stat(unit); err != nil || st.Mode().Perm() != 0o644 {
		t.Errorf("unit file: %v %v, want mode 0644", st, err)
	}
	text, _ := os.ReadFile(unit)
	for _, want := range []string{"ExecStart=/usr/local/bin/tentacle run --instance=Tentacle --noninteractive", "User=root", "KillMode=process", "After=network.target docker.service"} {
		if !strings.Contains(string(text), want) {
			t.Errorf("unit lacks %q", want)
		}
	}
	// Idempotent: nothing is rewritten or reloaded.
	before := h.snapshot()
	runLogged(h, fake, "service", "--instance", "Tentacle", "--install", "--start", "--dependOn", "docker")
	if h.snapshot() != before {
		t.Error("a second --install --start changed files")
	}
	// A changed definition of a running service is applied by a restart.
	runLogged(h, fake, "service", "--instance", "Tentacle", "--reconfigure")
	runLogged(h, fake, "service", "--instance", "Tentacle", "--restart")
	runLogged(h, fake, "service", "--instance=*", "--stop")
	runLogged(h, fake, "service", "--instance", "Tentacle", "--stop")
	runLogged(h, fake, "service", "--instance", "Tentacle", "--stop", "--uninstall")
	if _, err := os.Stat(unit); err == nil {
		t.Error("--uninstall left the unit file")
	}
	runLogged(h, fake, "service", "--instance", "Tentacle", "--uninstall")

	// Failing to start says why and how to look further.
	runLogged(h, fake, "service", "--instance", "Tentacle", "--install")
	fake.FailStart = "Job for Tentacle.service failed because the control process exited with error code.\n"
	runLogged(h, fake, "service", "--instance", "Tentacle", "--start")
	fake.FailStart = ""
	runLogged(h, fake, "service", "--instance", "Tentacle", "--uninstall")

	// --instance=* --uninstall removes every instance's service (what the
	// MSI runs on uninstall); an instance without one is not an error.
	h.must("create-instance", "--instance", "Second", "--config", filepath.Join(h.tmp, "var", "Second", "tentacle.config"))
	h.must("create-instance", "--instance", "Third", "--config", filepath.Join(h.tmp, "var", "Third", "tentacle.config"))
	runLogged(h, fake, "service", "--instance", "Tentacle", "--install", "--start")
	runLogged(h, fake, "service", "--instance", "Second", "--install")
	runLogged(h, fake, "service", "--instance=*", "--uninstall")
	for _, u := range []string{"Tentacle.service", "Second.service", "Third.service"} {
		if _, err := os.Stat(filepath.Join(unitDir, u)); err == nil {
			t.Errorf("--instance=* --uninstall left %s", u)
		}
		if fake.Active(u) || fake.Enabled(u) {
			t.Errorf("--instance=* --uninstall left %s active or enabled", u)
		}
	}
	h.golden("service-systemd")
}

func TestServiceRunAsUser(t *testing.T) {
	h := newHarness(t)
	fake, unitDir := fakeSystemd(t, h)
	// The default layout keeps the instance index inside the home: handing
	// that home to another user would let it redirect other instances.
	h.must("create-instance", "--instance", "Tentacle", "--config", filepath.Join(h.tmp, "etc", "Tentacle", "tentacle.config"))
	h.fail(exitUserError, "service", "--instance", "Tentacle", "--install", "--username", "octo")
	// A configuration outside the home could not be updated by the agent.
	h.must("create-instance", "--instance", "Split", "--config", filepath.Join(h.tmp, "conf", "split.config"), "--home", filepath.Join(h.tmp, "srv", "split"))
	h.fail(exitUserError, "service", "--instance", "Split", "--install", "--username", "octo")
	h.fail(exitUserError, "service", "--instance", "Split", "--install", "--username", "nosuchuser")

	// An instance in a directory of its own is handed over; the agent's
	// user must be able to reach it.
	for d := h.tmp; d != "/"; d = filepath.Dir(d) {
		if strings.HasPrefix(d, os.TempDir()+"/") {
			os.Chmod(d, 0o755)
		}
	}
	home := filepath.Join(h.tmp, "lib", "Svc")
	h.must("create-instance", "--instance", "Svc", "--config", filepath.Join(home, "tentacle.config"))
	os.WriteFile(filepath.Join(home, "tentacle.config"), mustRead(t, filepath.Join(home, "tentacle.config")), 0o644) // as a umask would leave it
	os.Chmod(filepath.Join(home, "tentacle.config"), 0o644)
	h.env["OCTOPUS_SERVICE_USERNAME"] = "octo"
	runLogged(h, fake, "service", "--instance", "Svc", "--install", "--start")
	delete(h.env, "OCTOPUS_SERVICE_USERNAME")
	text := string(mustRead(t, filepath.Join(unitDir, "Svc.service")))
	if !strings.Contains(text, "User=octo") || !strings.Contains(text, "run --instance=Svc --config="+filepath.Join(home, "tentacle.config")+" --noninteractive") {
		t.Errorf("unit for --username:\n%s", text)
	}
	for p, want := range map[string]os.FileMode{home: 0o700, filepath.Join(home, "tentacle.config"): 0o600} {
		if st, err := os.Stat(p); err != nil || st.Mode().Perm() != want {
			t.Errorf("%s: %v %v, want %v", p, st, err, want)
		}
	}
	// Automation that does not repeat --username keeps the account.
	runLogged(h, fake, "service", "--instance", "Svc", "--install")
	if !strings.Contains(string(mustRead(t, filepath.Join(unitDir, "Svc.service"))), "User=octo") {
		t.Error("a second --install without --username changed the account")
	}
	h.golden("service-username")
}

func mustRead(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestLivez(t *testing.T) {
	h := newHarness(t)
	now := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	old := livezNow
	livezNow = func() time.Time { return now }
	t.Cleanup(func() { livezNow = old })
	cfg := filepath.Join(h.tmp, "var", "Tentacle", "tentacle.config")
	h.must("create-instance", "--instance", "Tentacle", "--config", cfg)
	heartbeat := filepath.Join(filepath.Dir(cfg), "livez.heartbeat")

	h.fail(exitUserError, "livez", "--instance", "Tentacle")
	os.WriteFile(heartbeat, nil, 0o600)
	for _, age := range []int{3, 59, 60, 61, 600} {
		mt := now.Add(-time.Duration(age) * time.Second)
		os.Chtimes(heartbeat, mt, mt)
		_, _, code := h.run("livez", "--instance", "Tentacle")
		if want := map[bool]int{true: 0, false: exitUserError}[age <= 60]; code != want {
			t.Errorf("heartbeat %d s old: exit %d, want %d", age, code, want)
		}
	}
	mt := now.Add(-90 * time.Second)
	os.Chtimes(heartbeat, mt, mt)
	h.must("livez", "--instance", "Tentacle", "--max-age=120")
	h.must("Livez", "/instance:Tentacle", "--MAX-AGE", "120")
	h.fail(exitUserError, "livez", "--instance", "Tentacle", "--max-age", "0")
	h.fail(exitUserError, "livez", "--instance", "Nope")
	h.golden("livez")
}
