//go:build linux

package scripts_test

import (
	"encoding/json"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tentacle-go/tentacle/internal/nspawntest"
)

// Exit codes install.sh documents in its header.
const (
	exitUsage     = 1
	exitNotRoot   = 10
	exitFeed      = 11
	exitArch      = 12
	exitNoVersion = 13
	exitVerify    = 14
	exitProvision = 17
)

func exitCode(err error) int {
	var xe *exec.ExitError
	if errors.As(err, &xe) {
		return xe.ExitCode()
	}
	if err != nil {
		return -1
	}
	return 0
}

// shells are the POSIX shells install.sh must run under: Debian's sh
// (dash) always, busybox's ash (Alpine's sh) when installed.
func shells(t *testing.T) [][]string {
	var out [][]string
	if p, err := exec.LookPath("dash"); err == nil {
		out = append(out, []string{p})
	}
	if p, err := exec.LookPath("busybox"); err == nil {
		out = append(out, []string{p, "sh"})
	} else {
		t.Log("busybox is not installed (apt-get install busybox): install.sh is not run under busybox sh")
	}
	if len(out) == 0 {
		t.Skip("SKIP: neither dash nor busybox is installed")
	}
	return out
}

// TestInstallShShellcheck keeps install.sh portable: shellcheck in POSIX
// mode finds bashisms and quoting mistakes.
func TestInstallShShellcheck(t *testing.T) {
	if _, err := exec.LookPath("shellcheck"); err != nil {
		t.Skip("SKIP: shellcheck is not installed (apt-get install shellcheck; `make deps` does it)")
	}
	if out, err := exec.Command("shellcheck", "--shell=sh", "install.sh").CombinedOutput(); err != nil {
		t.Errorf("shellcheck install.sh: %v\n%s", err, out)
	}
}

// TestInstallShRefusals runs install.sh on this machine for the errors it
// must give before it changes anything, under each POSIX shell.
func TestInstallShRefusals(t *testing.T) {
	feed := buildFeed(t, []string{"1.3.0"}, []string{"1.4.0-rc.1"})
	url := serveFeed(t, feed)
	// An empty feed, and a port nothing listens on.
	empty := serveFeed(t, t.TempDir())
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	unreachable := "http://" + l.Addr().String()
	l.Close()
	fakeUname := t.TempDir()
	if err := os.WriteFile(filepath.Join(fakeUname, "uname"), []byte("#!/bin/sh\necho mips64\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, sh := range shells(t) {
		cases := []struct {
			name     string
			args     []string
			path     string
			wantCode int
			wantText string
		}{
			{"unknown arch", []string{"--feed", url, "--dry-run"}, fakeUname, exitArch, "architecture 'mips64' has no tentacle build"},
			{"feed unreachable", []string{"--feed", unreachable, "--dry-run"}, "", exitFeed, "cannot connect to"},
			{"feed without index", []string{"--feed", empty, "--dry-run"}, "", exitFeed, "the server has no " + empty + "/index.json"},
			{"no such version", []string{"--feed", url, "--version", "2.0", "--dry-run"}, "", exitNoVersion, "no version in the feed " + url + " matches --version 2.0 (it has: 1.4.0-rc.1 (prerelease), 1.3.0)"},
			{"constraint syntax", []string{"--feed", url, "--version", "~> 1.3"}, "", exitUsage, "Constraints such as '~> 1.4' are for `tentacle upgrade`"},
			{"plain http off loopback", []string{"--feed", "http://example.com/feed"}, "", exitUsage, "plain http is allowed only on loopback"},
			{"unknown option", []string{"--frobnicate"}, "", exitUsage, "unknown option '--frobnicate'"},
			{"provision file missing", []string{"--feed", url, "--provision", "/nonexistent.yaml"}, "", exitUsage, "--provision /nonexistent.yaml: no such readable file"},
			{"dry run", []string{"--feed", url, "--dry-run", "--version", "1.3"}, "", 0, "dry run: nothing was changed"},
			{"dry run, directory feed", []string{"--feed", "file://" + feed, "--dry-run", "--method", "tarball"}, "", 0, "would download " + feed + "/1.3.0/tentacle_1.3.0_linux_"},
		}
		for _, c := range cases {
			t.Run(filepath.Base(sh[0])+"/"+c.name, func(t *testing.T) {
				cmd := exec.Command(sh[0], append(append(sh[1:], "install.sh"), c.args...)...)
				path := os.Getenv("PATH")
				if c.path != "" {
					path = c.path + ":" + path
				}
				cmd.Env = append(os.Environ(), "PATH="+path, "TENTACLE_RELEASES_FEED=")
				out, err := cmd.CombinedOutput()
				if code := exitCode(err); code != c.wantCode || !strings.Contains(string(out), c.wantText) {
					t.Errorf("install.sh %s: exit %d (want %d), output lacks %q:\n%s", strings.Join(c.args, " "), code, c.wantCode, c.wantText, out)
				}
			})
		}
	}
}

// TestInstallShInContainer installs for real in a Debian container booted
// with systemd (internal/nspawntest), from a feed served on loopback:
// refusals first (nothing may be installed after them), then the deb, a
// re-run, pinning, and the tarball.
func TestInstallShInContainer(t *testing.T) {
	rootfs := nspawntest.Rootfs(t)
	start := time.Now()
	feed := buildFeed(t, []string{"1.3.0", "1.2.3"}, []string{"1.4.0-rc.1"})
	url := serveFeed(t, feed)
	built := time.Now()
	scriptsDir, err := filepath.Abs(".")
	if err != nil {
		t.Fatal(err)
	}
	m := nspawntest.Boot(t, rootfs, nspawntest.Bind{Host: scriptsDir, Container: "/srv/scripts", ReadOnly: true})
	t.Logf("feed built in %s, container booted in %s", built.Sub(start).Round(time.Millisecond), time.Since(built).Round(time.Millisecond))
	install := func(args ...string) (string, int) {
		t.Helper()
		out, err := m.RunEnv([]string{"TMPDIR=/root/install-tmp"}, append([]string{"sh", "/srv/scripts/install.sh", "--feed", url}, args...)...)
		if code := exitCode(err); code < 0 {
			t.Fatalf("running install.sh: %v\n%s", err, out)
		}
		return out, exitCode(err)
	}
	m.Must("mkdir", "/root/install-tmp")
	nothingInstalled := func(when string) {
		t.Helper()
		if out, err := m.Run("sh", "-c", "dpkg-query -W -f '${Status}' tentacle-go 2>/dev/null | grep -q 'install ok'; echo dpkg=$?; ls /usr/bin/tentacle /usr/local/bin/tentacle /opt/octopus 2>&1; ls -A /root/install-tmp"); err != nil ||
			!strings.Contains(out, "dpkg=1") || strings.Count(out, "No such file or directory") != 3 || strings.Contains(out, "tentacle-install.") {
			t.Errorf("%s: something was installed or left behind:\n%s", when, out)
		}
	}

	// The container has no sudo: a user who is not root is told how to run it.
	out, err := m.Run("runuser", "-u", "nobody", "--", "sh", "/srv/scripts/install.sh", "--feed", url)
	if exitCode(err) != exitNotRoot || !strings.Contains(out, "installing needs root") {
		t.Errorf("as nobody: exit %d\n%s", exitCode(err), out)
	}

	out, code := install("--dry-run")
	t.Logf("--dry-run:\n%s", out)
	if code != 0 || !strings.Contains(out, "version 1.3.0 (--version latest)") || !strings.Contains(out, "would run DEBIAN_FRONTEND=noninteractive apt-get install") {
		t.Errorf("--dry-run: exit %d\n%s", code, out)
	}
	nothingInstalled("after --dry-run")

	// A deb whose bytes differ from checksums.txt is refused before
	// anything is installed, and the download is removed.
	tampered := copyFeed(t, feed)
	deb := filepath.Join(tampered, "1.3.0", "tentacle-go_1.3.0-1_"+debArch(t)+".deb")
	data, err := os.ReadFile(deb)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)/2] ^= 0xff
	if err := os.WriteFile(deb, data, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err = m.RunEnv([]string{"TMPDIR=/root/install-tmp"}, "sh", "/srv/scripts/install.sh", "--feed", serveFeed(t, tampered))
	if exitCode(err) != exitVerify || !strings.Contains(out, "checksum mismatch for tentacle-go_1.3.0-1_") || !strings.Contains(out, "nothing was installed") {
		t.Errorf("tampered deb: exit %d\n%s", exitCode(err), out)
	}
	nothingInstalled("after a checksum mismatch")

	// Signed checksums: a wrong key is refused, the right one accepted.
	pub, otherPub := signFeed(t, feed)
	if pub != "" {
		out, code = install("--pubkey", otherPub)
		if code != exitVerify || !strings.Contains(out, "signature of 1.3.0/checksums.txt does not match") {
			t.Errorf("wrong public key: exit %d\n%s", code, out)
		}
		nothingInstalled("after a signature mismatch")
	}

	// Fresh install: the newest stable version, as a deb.
	args := []string{}
	if pub != "" {
		args = append(args, "--pubkey", pub)
	}
	out, code = install(args...)
	t.Logf("fresh install:\n%s", out)
	if code != 0 || !strings.Contains(out, "tentacle 1.3.0 is installed: /usr/bin/tentacle") {
		t.Fatalf("fresh install: exit %d\n%s", code, out)
	}
	if pub != "" && !strings.Contains(out, "signature of checksums.txt verified") {
		t.Errorf("the signature was not checked:\n%s", out)
	}
	if got := m.Must("dpkg-query", "-W", "-f", "${Version} ${Status}", "tentacle-go"); got != "1.3.0 install ok installed" {
		t.Errorf("dpkg says %q", got)
	}
	if got := m.Must("tentacle", "version"); got != "1.3.0" {
		t.Errorf("tentacle version: %q", got)
	}

	// Again: nothing to do.
	out, code = install()
	if code != 0 || !strings.Contains(out, "tentacle 1.3.0 is already installed (/usr/bin/tentacle); nothing to do.") || strings.Contains(out, "downloading") {
		t.Errorf("re-run: exit %d\n%s", code, out)
	}

	// Pinning: a prefix picks the newest of that line (a downgrade here),
	// the exact version is then already there.
	out, code = install("--version", "1.2")
	if code != 0 || !strings.Contains(out, "tentacle 1.3.0 is installed (/usr/bin/tentacle); it will be replaced by 1.2.3") {
		t.Errorf("--version 1.2: exit %d\n%s", code, out)
	}
	if got := m.Must("dpkg-query", "-W", "-f", "${Version}", "tentacle-go"); got != "1.2.3" {
		t.Errorf("after --version 1.2 dpkg has %q", got)
	}
	out, code = install("--version", "v1.2.3")
	if code != 0 || !strings.Contains(out, "already installed") {
		t.Errorf("--version v1.2.3: exit %d\n%s", code, out)
	}

	// --provision hands over to `tentacle provision`: a declaration it
	// refuses is exit 17 with provision's reason, one it accepts converges.
	m.Must("sh", "-c", "echo 'instances: []' >/root/fleet.yaml")
	out, code = install("--version", "1.2.3", "--provision", "/root/fleet.yaml")
	if code != exitProvision || !strings.Contains(out, "declare at least one instance") || !strings.Contains(out, "tentacle provision --file /root/fleet.yaml failed") {
		t.Errorf("--provision with a refused file: exit %d\n%s", code, out)
	}
	m.Must("sh", "-c", "printf 'instances:\\n  - name: Fleet\\n    listen: {port: 10999}\\n' >/root/fleet.yaml")
	out, code = install("--version", "1.2.3", "--provision", "/root/fleet.yaml")
	if code != 0 || !strings.Contains(out, "changed      Fleet instance") {
		t.Errorf("--provision: exit %d\n%s", code, out)
	}
	if got := m.Must("tentacle", "list-instances"); !strings.Contains(got, "Instance 'Fleet' uses configuration '/etc/octopus/Fleet/tentacle.config'") {
		t.Errorf("after --provision: %s", got)
	}

	// The tarball, as on Alpine or any other Linux.
	m.Must("dpkg", "--purge", "tentacle-go")
	out, code = install("--method", "tarball", "--version", "1.2.3")
	t.Logf("tarball install:\n%s", out)
	if code != 0 || !strings.Contains(out, "tentacle 1.2.3 is installed: /usr/local/bin/tentacle") {
		t.Fatalf("tarball install: exit %d\n%s", code, out)
	}
	if got := m.Must("/opt/octopus/tentacle/Tentacle", "version"); got != "1.2.3" {
		t.Errorf("/opt/octopus/tentacle/Tentacle version: %q", got)
	}
	if got := m.Must("stat", "-c", "%a %U", "/usr/local/bin/tentacle"); strings.TrimSpace(got) != "755 root" {
		t.Errorf("/usr/local/bin/tentacle: %s", got)
	}
	// 1.2.3's tarball has no tentacle-supervisor: none is installed.
	const supervisor = "/usr/local/libexec/tentacle/tentacle-supervisor"
	if out, err := m.Run("ls", "/usr/local/libexec/tentacle"); err == nil {
		t.Errorf("a tarball without tentacle-supervisor installed one: %s", out)
	}
	out, code = install("--method", "tarball", "--version", "1.2.3")
	if code != 0 || !strings.Contains(out, "nothing to do") {
		t.Errorf("tarball re-run: exit %d\n%s", code, out)
	}
	out, code = install("--method", "tarball")
	if code != 0 || !strings.Contains(out, "tentacle 1.3.0 is installed: /usr/local/bin/tentacle") || !strings.Contains(out, "installed "+supervisor) {
		t.Errorf("tarball upgrade: exit %d\n%s", code, out)
	}
	// 1.3.0's has one: off PATH, in ../libexec/tentacle from the binary,
	// where the agent looks for it, of the same build.
	if got := m.Must("stat", "-c", "%a %U", supervisor); strings.TrimSpace(got) != "755 root" {
		t.Errorf("%s: %s", supervisor, got)
	}
	if got := strings.TrimSpace(m.Must(supervisor, "version")); got != "1.3.0" {
		t.Errorf("%s version: %q", supervisor, got)
	}
	// Back to 1.2.3 (none): the 1.3.0 one is removed, not left stale.
	out, code = install("--method", "tarball", "--version", "1.2.3")
	if code != 0 || !strings.Contains(out, "removed "+supervisor) {
		t.Errorf("tarball downgrade: exit %d\n%s", code, out)
	}
	if out, err := m.Run("ls", "/usr/local/libexec/tentacle"); err == nil {
		t.Errorf("after installing a version without it, %s is left: %s", supervisor, out)
	}
	if got := m.Must("sh", "-c", "ls -A /root/install-tmp /tmp | grep tentacle-install || true"); got != "" {
		t.Errorf("temporary files left: %s", got)
	}
	t.Logf("whole install.sh test in the container: %s", time.Since(start).Round(time.Millisecond))
}

// signFeed signs every checksums.txt of the feed with a throwaway minisign
// key and returns its public key and another key's, or "" when minisign is
// not installed here (the signature steps are then left out, said so).
func signFeed(t *testing.T, feed string) (pub, otherPub string) {
	t.Helper()
	if _, err := exec.LookPath("minisign"); err != nil {
		t.Log("minisign is not installed here (apt-get install minisign): the signature checks are left out")
		return "", ""
	}
	dir := t.TempDir()
	keys := [2]string{}
	for i := range keys {
		p, s := filepath.Join(dir, "k"+string(rune('0'+i))+".pub"), filepath.Join(dir, "k"+string(rune('0'+i))+".key")
		if out, err := exec.Command("minisign", "-G", "-W", "-p", p, "-s", s).CombinedOutput(); err != nil {
			t.Fatalf("minisign -G: %v\n%s", err, out)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSpace(string(data)), "\n")
		keys[i] = lines[len(lines)-1]
		if i == 0 {
			sums, _ := filepath.Glob(filepath.Join(feed, "*", "checksums.txt"))
			for _, f := range sums {
				if out, err := exec.Command("minisign", "-S", "-s", s, "-m", f).CombinedOutput(); err != nil {
					t.Fatalf("minisign -S: %v\n%s", err, out)
				}
			}
		}
	}
	return keys[0], keys[1]
}

// TestInstallShFromThePackagedFeed installs the real deb from the feed `make
// package` wrote (TENTACLE_PACKAGE_FEED; `make package-test` sets it), so
// install.sh and the packages agree on names, versions and checksums: the
// newest version, then a re-run that has nothing to do.
func TestInstallShFromThePackagedFeed(t *testing.T) {
	feed := os.Getenv("TENTACLE_PACKAGE_FEED")
	if feed == "" {
		t.Skip("SKIP: TENTACLE_PACKAGE_FEED is not set; `make package-test` runs this against the feed `make package` wrote")
	}
	data, err := os.ReadFile(filepath.Join(feed, "index.json"))
	if err != nil {
		t.Fatal(err)
	}
	var index struct {
		Versions []feedVersion `json:"versions"`
	}
	if err := json.Unmarshal(data, &index); err != nil || len(index.Versions) == 0 {
		t.Fatalf("%s/index.json: %v %s", feed, err, data)
	}
	newest := index.Versions[0].Version // snapshots are prereleases: pinned exactly
	rootfs := nspawntest.Rootfs(t)
	url := serveFeed(t, feed)
	scriptsDir, err := filepath.Abs(".")
	if err != nil {
		t.Fatal(err)
	}
	m := nspawntest.Boot(t, rootfs, nspawntest.Bind{Host: scriptsDir, Container: "/srv/scripts", ReadOnly: true})
	install := func() (string, int) {
		out, err := m.Run("sh", "/srv/scripts/install.sh", "--feed", url, "--version", newest)
		return out, exitCode(err)
	}
	out, code := install()
	if code != 0 {
		t.Fatalf("install.sh --version %s: exit %d\n%s", newest, code, out)
	}
	if got := m.Must("dpkg-query", "-W", "-f=${Version}", "tentacle-go"); got != strings.Replace(newest, "-", "~", 1)+"-1" {
		t.Errorf("dpkg has tentacle-go %q for the feed's %s", got, newest)
	}
	if got := strings.TrimSpace(m.Must("/opt/octopus/tentacle/Tentacle", "version")); got != newest {
		t.Errorf("the installed Tentacle says %q, the feed %s", got, newest)
	}
	if got := strings.TrimSpace(m.Must("/usr/libexec/tentacle/tentacle-supervisor", "version")); got != newest {
		t.Errorf("the installed tentacle-supervisor says %q, the feed %s", got, newest)
	}
	if out, code := install(); code != 0 || !strings.Contains(out, "already") {
		t.Errorf("a re-run: exit %d\n%s", code, out)
	}
}
