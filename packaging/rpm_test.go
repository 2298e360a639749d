//go:build linux

package packaging_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tentacle-go/tentacle/internal/nspawntest"
)

// upstreamPaths are where scripts written for upstream find the binary.
var upstreamPaths = []string{"/usr/bin/Tentacle", "/opt/octopus/tentacle/Tentacle"}

// TestRPMContentsAndScriptlets reads the rpm's metadata with rpm -qp.
func TestRPMContentsAndScriptlets(t *testing.T) {
	b := first(t)
	requireTools(t, "rpm")
	pkg := b.find(t, "Linux Package", `\.x86_64\.rpm$`)
	files := run(t, "rpm", "-qp", "--qf", "[%{FILENAMES} %{FILEMODES:perms} %{FILELINKTOS}\n]", pkg)
	// (nfpm gives symlinks mode 0, which Linux ignores.)
	for _, want := range []string{
		"/usr/bin/tentacle -rwxr-xr-x \n",
		"/usr/bin/Tentacle l--------- tentacle\n",
		"/opt/octopus/tentacle/Tentacle l--------- /usr/bin/tentacle\n",
		"/opt/octopus/tentacle/configure-tentacle.sh -rwxr-xr-x \n",
		"/usr/libexec/tentacle/tentacle-supervisor -rwxr-xr-x \n",
	} {
		if !strings.Contains(files, want) {
			t.Errorf("rpm files lack %q:\n%s", want, files)
		}
	}
	if list := run(t, "rpm", "-qpl", pkg); !strings.Contains(list, "/usr/bin/tentacle\n") {
		t.Errorf("rpm -qpl:\n%s", list)
	}
	scripts := run(t, "rpm", "-qp", "--scripts", pkg)
	for _, want := range []string{"postinstall scriptlet (using /bin/sh)", "preuninstall scriptlet (using /bin/sh)", "postuninstall scriptlet (using /bin/sh)", "systemctl try-restart", "[ -d /run/systemd/system ]"} {
		if !strings.Contains(scripts, want) {
			t.Errorf("rpm -qp --scripts lacks %q:\n%s", want, scripts)
		}
	}
	for query, want := range map[string]string{"--provides": "tentacle", "--conflicts": "tentacle", "--obsoletes": "tentacle"} {
		out := run(t, "rpm", "-qp", query, pkg)
		if !strings.Contains("\n"+out, "\n"+want+"\n") && !strings.Contains("\n"+out, "\n"+want+" ") {
			t.Errorf("rpm -qp %s: %q, want %s", query, out, want)
		}
	}
	if deps := run(t, "rpm", "-qpR", pkg); strings.Contains(deps, "lib") && !strings.Contains(deps, "rpmlib(") {
		t.Errorf("the rpm needs libraries (a static binary needs none):\n%s", deps)
	}
}

// TestRPMInstallsIntoAScratchRoot installs, upgrades and erases the rpm
// with `rpm --root` over a throwaway overlay of the Debian root filesystem
// the container tests use: the scriptlets really run (chrooted, with that
// root's /bin/sh), with no systemd running, as in an image build.
func TestRPMInstallsIntoAScratchRoot(t *testing.T) {
	f, s := first(t), second(t)
	requireTools(t, "rpm", "unshare")
	rootfs := nspawntest.Rootfs(t)
	work := t.TempDir()
	rpm1 := f.find(t, "Linux Package", `\.x86_64\.rpm$`)
	rpm2 := s.find(t, "Linux Package", `\.x86_64\.rpm$`)
	for _, d := range []string{"upper", "work", "root"} {
		if err := os.Mkdir(filepath.Join(work, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	root := filepath.Join(work, "root")
	q := nspawntest.ShellQuote
	rpmArgs := "rpm --root " + q(root) + " --dbpath /var/lib/rpm"
	// One mount namespace for the whole script: the overlay disappears
	// with it. Each step prints a marker so the test can tell which failed.
	script := strings.Join([]string{
		"set -e",
		"mount -t overlay overlay -o lowerdir=" + q(rootfs) + ",upperdir=" + q(filepath.Join(work, "upper")) + ",workdir=" + q(filepath.Join(work, "work")) + " " + q(root),
		rpmArgs + " --initdb",
		"echo '### install'", rpmArgs + " -i --nodeps " + q(rpm1),
		"ls -l " + q(root+"/usr/bin/tentacle") + " " + q(root+"/usr/bin/Tentacle") + " " + q(root+"/opt/octopus/tentacle/Tentacle"),
		"chroot " + q(root) + " /opt/octopus/tentacle/Tentacle version",
		"echo supervisor $(chroot " + q(root) + " /usr/libexec/tentacle/tentacle-supervisor version)",
		"echo '### upgrade'", rpmArgs + " -U --nodeps " + q(rpm2),
		"chroot " + q(root) + " /usr/bin/Tentacle version",
		"echo supervisor $(chroot " + q(root) + " /usr/libexec/tentacle/tentacle-supervisor version)",
		rpmArgs + " -q tentacle-go",
		"echo '### erase'", rpmArgs + " -e tentacle-go",
		"for p in /usr/bin/tentacle /usr/bin/Tentacle /opt/octopus/tentacle/Tentacle /usr/libexec/tentacle; do if [ -e " + q(root) + "$p ] || [ -L " + q(root) + "$p ]; then echo \"left behind: $p\"; exit 1; fi; done",
		"echo '### done'",
	}, "\n")
	out, err := exec.Command("unshare", "-m", "--propagation", "private", "sh", "-c", script).CombinedOutput()
	t.Logf("rpm --root %s (overlay of %s):\n%s", root, rootfs, out)
	if err != nil || !strings.Contains(string(out), "### done") {
		t.Fatalf("rpm install/upgrade/erase in a scratch root: %v", err)
	}
	o := string(out)
	install, upgrade := o[strings.Index(o, "### install"):strings.Index(o, "### upgrade")], o[strings.Index(o, "### upgrade"):strings.Index(o, "### erase")]
	if !strings.Contains(install, "supervisor "+f.Version+"\n") || !strings.Contains(upgrade, "supervisor "+s.Version+"\n") {
		t.Errorf("/usr/libexec/tentacle/tentacle-supervisor is not of the installed version:\n%s", o)
	}
	if !strings.Contains(install, "tentacle-go installed") || !strings.Contains(install, f.Version) {
		t.Errorf("install: no hint from %%post or wrong version:\n%s", install)
	}
	if !strings.Contains(upgrade, s.Version) || strings.Contains(upgrade, "tentacle-go installed") {
		t.Errorf("upgrade: %%post did not see an upgrade, or the version is not %s:\n%s", s.Version, upgrade)
	}
	if strings.Contains(o, "systemctl") {
		t.Errorf("a scriptlet ran systemctl with no systemd running:\n%s", o)
	}
}
