package main

import (
	"bytes"
	"crypto/sha256"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/golden")

const fixtures = "../../testdata/config"

// harness runs the whole CLI in-process against a temp machine: its own
// instance index root and working directory, nothing machine-wide.
type harness struct {
	t    *testing.T
	tmp  string
	cwd  string
	env  map[string]string
	log  strings.Builder
	code int
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	tmp, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, tmp: tmp, cwd: filepath.Join(tmp, "work")}
	os.MkdirAll(h.cwd, 0o755)
	h.env = map[string]string{"TentacleMachineConfigurationHomeDirectory": filepath.Join(tmp, "etc")}
	return h
}

// run executes one command line and records it for the golden file.
func (h *harness) run(args ...string) (stdout, stderr string, code int) {
	h.t.Helper()
	var out, errb bytes.Buffer
	e := &Env{Stdout: &out, Stderr: &errb, Getenv: func(k string) string { return h.env[k] }, Cwd: h.cwd}
	code = run(args, e)
	fmt.Fprintf(&h.log, "$ tentacle %s\n", strings.Join(args, " "))
	if out.Len() > 0 {
		fmt.Fprintf(&h.log, "%s\n", strings.TrimSuffix(out.String(), "\n"))
	}
	if errb.Len() > 0 {
		fmt.Fprintf(&h.log, "[stderr] %s\n", strings.ReplaceAll(strings.TrimSuffix(errb.String(), "\n"), "\n", "\n[stderr] "))
	}
	fmt.Fprintf(&h.log, "[exit %d]\n\n", code)
	return out.String(), errb.String(), code
}

// must runs a command that has to succeed.
func (h *harness) must(args ...string) string {
	h.t.Helper()
	out, errs, code := h.run(args...)
	if code != 0 {
		h.t.Fatalf("tentacle %v: exit %d\n%s%s", args, code, out, errs)
	}
	return out
}

// fail runs a command that has to fail with code, leaving every file as it was.
func (h *harness) fail(code int, args ...string) string {
	h.t.Helper()
	before := h.snapshot()
	_, errs, got := h.run(args...)
	if got != code {
		h.t.Errorf("tentacle %v: exit %d, want %d\n%s", args, got, code, errs)
	}
	if after := h.snapshot(); after != before {
		h.t.Errorf("tentacle %v failed but changed files:\nbefore:\n%s\nafter:\n%s", args, before, after)
	}
	if strings.TrimSpace(errs) == "" {
		h.t.Errorf("tentacle %v failed without saying why on stderr", args)
	}
	return errs
}

// snapshot lists every file under the temp machine with its mode and hash,
// except instance logs: every command, failed or not, writes its start-up
// diagnostics there, as upstream.
func (h *harness) snapshot() string {
	var b strings.Builder
	filepath.WalkDir(h.tmp, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if d.IsDir() && d.Name() == "Logs" {
			return filepath.SkipDir
		}
		info, _ := d.Info()
		rel, _ := filepath.Rel(h.tmp, p)
		if d.IsDir() {
			fmt.Fprintf(&b, "%s/ %v\n", rel, info.Mode().Perm())
			return nil
		}
		data, _ := os.ReadFile(p)
		fmt.Fprintf(&b, "%s %v %x\n", rel, info.Mode().Perm(), sha256.Sum256(data))
		return nil
	})
	return b.String()
}

var (
	subscriptionPattern = regexp.MustCompile(`poll://[a-z2-9]{20}/`)
	// windowsPathTail is a path under $TMP or $REPO written with backslashes
	// (doubled in JSON).
	windowsPathTail = regexp.MustCompile(`\$(TMP|REPO)(\\[^\s"',;]*)+`)
)

// golden compares everything run so far with testdata/golden/<name>.txt.
func (h *harness) golden(name string) {
	h.t.Helper()
	got := h.log.String()
	repo, _ := filepath.Abs("../..")
	for dir, name := range map[string]string{h.tmp: "$TMP", repo: "$REPO"} {
		got = strings.ReplaceAll(got, dir, name)
		if runtime.GOOS == "windows" { // as JSON writes it
			got = strings.ReplaceAll(got, strings.ReplaceAll(dir, `\`, `\\`), name)
		}
	}
	if runtime.GOOS == "windows" {
		// The golden files spell paths under $TMP and $REPO the Unix way.
		got = windowsPathTail.ReplaceAllStringFunc(got, func(p string) string {
			return strings.ReplaceAll(strings.ReplaceAll(p, `\\`, "/"), `\`, "/")
		})
	}
	got = subscriptionPattern.ReplaceAllString(got, "poll://<subscription>/")
	path := filepath.Join("testdata", "golden", name+".txt")
	// A Windows variant holds what Windows says differently (no systemd, the
	// registry); -update on Windows writes one only where the output differs.
	winPath := filepath.Join("testdata", "golden", name+".windows.txt")
	if runtime.GOOS == "windows" {
		if _, err := os.Stat(winPath); err == nil || *update {
			if shared, err := os.ReadFile(path); !*update || err != nil || string(shared) != got {
				path = winPath
			}
		}
	}
	if *update {
		os.MkdirAll(filepath.Dir(path), 0o755)
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			h.t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		h.t.Fatalf("%v (run `go test ./cmd/tentacle -update` to create it)", err)
	}
	if got != string(want) {
		h.t.Errorf("output differs from %s (rerun with -update if intended):\n%s", path, lineDiff(string(want), got))
	}
}

func lineDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	var b strings.Builder
	for i := 0; i < len(w) || i < len(g); i++ {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			fmt.Fprintf(&b, "line %d:\n  want: %q\n  got:  %q\n", i+1, wl, gl)
		}
	}
	return b.String()
}

func fixturePFX(t *testing.T) string {
	p, err := filepath.Abs(filepath.Join(fixtures, "tentacle.pfx"))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func fixtureThumbprint(t *testing.T) string {
	b, err := os.ReadFile(filepath.Join(fixtures, "thumbprint"))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

const serverThumb = "9A1F2E3D4C5B6A7988776655443322110FFEEDDC"

func TestHelpAndVersion(t *testing.T) {
	h := newHarness(t)
	h.must("help")
	h.must("help", "--format=json")
	h.must("help", "configure", "--format", "json")
	h.must("configure", "--help")
	h.must("/?")
	h.must("version")
	h.must("--version", "--format=json")
	h.fail(exitUserError, "version", "--format=xml")
	h.golden("help-version")
}

func TestInstanceLifecycle(t *testing.T) {
	h := newHarness(t)
	h.must("list-instances")
	h.must("list-instances", "--format=json")
	cfg := filepath.Join(h.tmp, "octopus", "Tentacle", "tentacle.config")
	h.must("create-instance", "--instance", "Tentacle", "--config", cfg)
	// The same command again changes nothing and says so.
	before := h.snapshot()
	out := h.must("create-instance", "--instance", "Tentacle", "--config", cfg)
	if h.snapshot() != before || !strings.Contains(out, "nothing changed") {
		t.Errorf("second create-instance was not a visible no-op:\n%s", out)
	}
	h.must("Create-Instance", "/instance:Second", "-CONFIG="+filepath.Join(h.tmp, "second", "t.config"), "--Home", filepath.Join(h.tmp, "second-home"))
	h.must("list-instances")
	h.must("list-instances", "--format", "json")
	h.fail(exitUserError, "show-thumbprint", "--instance", "Nope")
	h.must("delete-instance", "--instance", "second")
	h.must("delete-instance", "--instance", "second")
	h.must("list-instances")
	h.golden("instance-lifecycle")

	if runtime.GOOS == "windows" {
		return // no modes: agent/config's tests assert the owner-only ACL its writes set
	}
	for _, p := range []string{cfg, filepath.Join(h.tmp, "etc", "Tentacle", "Instances", "tentacle.config")} {
		if st, err := os.Stat(p); err != nil || st.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v %v, want mode 0600", p, st, err)
		}
	}
	if st, err := os.Stat(filepath.Dir(cfg)); err != nil || st.Mode().Perm() != 0o700 {
		t.Errorf("home: %v %v, want mode 0700", st, err)
	}
}

func TestRootlessInstance(t *testing.T) {
	h := newHarness(t)
	h.must("create-instance")
	if _, err := os.Stat(filepath.Join(h.cwd, "Tentacle.config")); err != nil {
		t.Fatal("rootless create-instance must write ./Tentacle.config")
	}
	if _, err := os.Stat(filepath.Join(h.tmp, "etc")); err == nil {
		t.Error("rootless create-instance touched the machine-wide index")
	}
	h.must("configure", "--port", "10999")
	h.must("list-instances")
	h.golden("rootless")
}

func TestConfigureAndTrust(t *testing.T) {
	h := newHarness(t)
	cfg := filepath.Join(h.tmp, "t", "tentacle.config")
	h.must("create-instance", "--instance", "Tentacle", "--config", cfg)
	args := []string{"configure", "--instance=Tentacle", "--port=10934", "--noListen", "False", "--listen-ip", "127.0.0.1",
		"--app", filepath.Join(h.tmp, "apps"), "--trust", strings.ToLower(serverThumb), "--pollingConnectionCount=3"}
	h.must(args...)
	before := h.snapshot()
	if out := h.must(args...); !strings.Contains(out, "No changes were made") || h.snapshot() != before {
		t.Errorf("identical configure was not a no-op:\n%s", out)
	}
	h.fail(exitUserError, "configure", "--trust", "not-a-thumbprint")
	h.fail(exitUserError, "configure", "--port", "70000")
	h.fail(exitUserError, "configure", "--noListen")
	h.fail(exitUserError, "configure", "--noListen=maybe")
	h.fail(exitUserError, "configure", "--listenIpAddress", "300.1.1.1")
	h.fail(exitUserError, "configure", "--bogus=1")
	h.fail(exitUserError, "set-polling-connection-count", "--pollingConnectionCount=0")
	h.fail(exitUserError, "set-polling-connection-count", "--pollingConnectionCount=abc")
	h.must("set-polling-connection-count", "--pollingConnectionCount=5")
	h.must("server-comms", "--style", "TentacleActive", "--host", "Octopus.Example")
	h.must("server-comms", "--style", "TentacleActive", "--host", "Octopus.Example")
	h.fail(exitUserError, "server-comms", "--style", "Sideways")
	h.fail(exitUserError, "server-comms", "--style", "TentacleActive", "--host", "a", "--web-socket", "wss://a/")
	h.must("update-trust", "--oldThumbprint", serverThumb, "--newThumbprint", "1111111111111111111111111111111111111111")
	h.must("update-trust", "--oldThumbprint", serverThumb, "--newThumbprint", "1111111111111111111111111111111111111111")
	h.fail(exitUserError, "update-trust", "--oldThumbprint", "2222222222222222222222222222222222222222", "--newThumbprint", "3333333333333333333333333333333333333333")
	h.fail(exitUserError, "update-trust", "--newThumbprint", "3333333333333333333333333333333333333333")
	h.must("configure", "--listenIpAddress=any", "--remove-trust", "1111111111111111111111111111111111111111")
	h.must("configure", "--trust", serverThumb)
	h.must("server-comms", "--thumbprint", serverThumb, "--style", "TentacleActive", "--web-socket", "https://octopus.example/OctopusComms")
	h.must("show-configuration")
	h.must("clear-trusted-servers", "--keep", "http://octopus.example:10943")
	h.must("show-configuration")
	h.must("configure", "--reset-trust")
	h.fail(exitUserError, "server-comms", "--style", "TentacleActive", "--host", "x")
	h.golden("configure-trust")
}

func TestCertificates(t *testing.T) {
	h := newHarness(t)
	cfg := filepath.Join(h.tmp, "t", "tentacle.config")
	h.must("create-instance", "--instance", "Tentacle", "--config", cfg)
	h.must("show-thumbprint")
	h.must("show-thumbprint", "--format=json")
	pfx := fixturePFX(t)
	h.fail(exitUserError, "import-certificate", "--from-file", pfx, "--pw", "wrong")
	h.fail(exitUserError, "import-certificate", "--from-file", pfx)
	h.fail(exitUserError, "import-certificate", "--from-file", filepath.Join(h.tmp, "missing.pfx"))
	notPFX, _ := filepath.Abs(filepath.Join(fixtures, "machine-id"))
	h.fail(exitUserError, "import-certificate", "--from-file", notPFX)
	nokey, _ := filepath.Abs(filepath.Join(fixtures, "nokey.pfx"))
	h.fail(exitUserError, "import-certificate", "--from-file", nokey, "--pfx-password", "secret")
	h.fail(exitUserError, "import-certificate", "--from-registry")
	h.fail(exitUserError, "import-certificate")
	h.fail(exitUserError, "import-certificate", "--from-file", pfx, "--from-base64", "AAAA")
	h.must("import-certificate", "--from-file", pfx, "--pw", "Secret123")
	h.must("import-certificate", "-f", pfx, "--pfx-password=Secret123")
	if got := h.must("show-thumbprint"); got != fixtureThumbprint(t) {
		t.Errorf("show-thumbprint = %q, want %q (no trailing newline)", got, fixtureThumbprint(t))
	}
	h.must("show-thumbprint", "--format", "json")
	h.must("new-certificate", "--if-blank")
	h.fail(exitUserError, "new-certificate", "--if-blank", "--export-pfx", "x.pfx", "--pfx-password", "a")
	h.fail(exitUserError, "new-certificate", "--export-pfx", "x.pfx")
	h.golden("certificates")

	// Exported PFX and base64 files import again; new-certificate replaces.
	out := h.must("new-certificate", "--export-pfx", "out.pfx", "--password", "pw")
	exported := strings.Split(strings.TrimSpace(out), "\n")[1]
	h.must("import-certificate", "--from-file", "out.pfx", "--pfx-password", "pw")
	if got := h.must("show-thumbprint"); got != exported {
		t.Errorf("imported %s, exported %s", got, exported)
	}
	out = h.must("new-certificate", "-e", "out.txt")
	exported = strings.Split(strings.TrimSpace(out), "\n")[1]
	h.must("import-certificate", "--from-file", "out.txt")
	if got := h.must("show-thumbprint"); got != exported {
		t.Errorf("imported %s, exported %s", got, exported)
	}
	h.must("new-certificate")
	if got := h.must("show-thumbprint"); got == exported || len(got) != 40 {
		t.Errorf("new-certificate did not replace the certificate: %s", got)
	}
	h.must("show-thumbprint", "--export-file", "thumb.txt")
	if b, _ := os.ReadFile(filepath.Join(h.cwd, "thumb.txt")); len(b) != 40 {
		t.Errorf("exported thumbprint %q", b)
	}
}

func TestCorruptAndMissingConfig(t *testing.T) {
	h := newHarness(t)
	cfg := filepath.Join(h.tmp, "t", "tentacle.config")
	h.must("create-instance", "--instance", "Tentacle", "--config", cfg)
	os.WriteFile(cfg, []byte("<octopus-settings><set key='a'>"), 0o600)
	h.fail(exitUserError, "configure", "--port", "1")
	h.fail(exitUserError, "show-configuration")
	// Unreadable: a directory where the file should be (root reads any mode).
	os.Remove(cfg)
	os.Mkdir(cfg, 0o700)
	h.fail(exitUserError, "show-configuration")
	os.Remove(cfg)
	h.fail(exitUserError, "configure", "--port", "1")
	h.fail(exitUnknownCommand, "frobnicate")
	h.golden("corrupt-config")
}

func TestProxyCommands(t *testing.T) {
	h := newHarness(t)
	cfg := filepath.Join(h.tmp, "t", "tentacle.config")
	h.must("create-instance", "--instance", "Tentacle", "--config", cfg)
	h.must("proxy", "--proxyEnable=true", "--proxyHost", "http://proxy.example:3128/path", "--proxyPort", "3128", "--proxyUsername", "me", "--proxyPassword", "s3cret")
	h.must("proxy", "--proxyEnable=true", "--proxyHost", "http://proxy.example:3128/path", "--proxyPort", "3128", "--proxyUsername", "me", "--proxyPassword", "s3cret")
	h.must("polling-proxy", "--proxyEnable=True")
	h.must("polling-proxy", "--proxyEnable=False")
	h.fail(exitUserError, "proxy", "--proxyEnable=perhaps")
	h.fail(exitUserError, "proxy", "--proxyEnable=true", "--proxyPort", "0")
	h.golden("proxy")
	data, _ := os.ReadFile(cfg)
	if strings.Contains(string(data), "s3cret") {
		t.Error("the proxy password is stored in clear text")
	}
	if !strings.Contains(string(data), `<set key="Octopus.Proxy.ProxyHost">proxy.example</set>`) {
		t.Errorf("proxy host not stored as upstream:\n%s", data)
	}
}

func TestCompletionScriptsParse(t *testing.T) {
	h := newHarness(t)
	for _, sh := range []string{"bash", "zsh", "fish"} {
		out := h.must("completion", sh)
		if !strings.Contains(out, "create-instance") || !strings.Contains(out, "reset-trust") {
			t.Errorf("%s completion lacks commands or options", sh)
		}
		checkShellSyntax(t, sh, out)
	}
	h.fail(exitUserError, "completion", "powershell")
}

func TestDiagDecodeAndEncode(t *testing.T) {
	h := newHarness(t)
	capture, _ := filepath.Abs("../../testdata/halibut/start-script-v2-request.bin")
	h.must("diag", "decode-message", capture)
	h.must("diag", "decode-message", capture, "--output", "msg.json")
	h.must("diag", "encode-message", "msg.json", "-o", "msg.bin")
	orig, _ := os.ReadFile(capture)
	back, _ := os.ReadFile(filepath.Join(h.cwd, "msg.bin"))
	if !bytes.Equal(orig, back) {
		t.Error("decode-message then encode-message did not give the original bytes back")
	}
	notAMessage, _ := filepath.Abs(filepath.Join(fixtures, "machine-id"))
	h.fail(exitUserError, "diag", "decode-message", notAMessage)
	h.fail(exitUserError, "diag", "encode-message", "missing.json")
	h.must("help", "diag")
	h.golden("diag")
}
