package service

import (
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden unit files under testdata")

// The binary path in golden units; systemd-analyze verify needs one that
// exists, so it checks the same text with this replaced.
const goldenExecutable = "/usr/local/bin/tentacle"

var unitCases = []struct {
	name string
	spec Spec
	opts UnitOptions
}{
	{"default-instance", Spec{Instance: "Tentacle", ConfigPath: "/etc/octopus/Tentacle/tentacle.config", Executable: goldenExecutable}, UnitOptions{}},
	{"named-instance-dependon", Spec{Instance: "My Web/01", ConfigPath: "/etc/octopus/web/tentacle.config", Executable: goldenExecutable, DependOn: "docker"}, UnitOptions{}},
	{"special-characters", Spec{Instance: `100% "$HOME"`, ConfigPath: "/srv/t/tentacle.config", Executable: "/opt/tentacle dir/tentacle"}, UnitOptions{}},
	{"run-as-user", Spec{Instance: "Tentacle", ConfigPath: "/var/lib/tentacle/Tentacle/tentacle.config", Executable: goldenExecutable, Username: "octopus"}, UnitOptions{}},
	{"rootless-system", Spec{ConfigPath: "/srv/app/Tentacle.config", Executable: goldenExecutable}, UnitOptions{}},
	{"rootless-user-unit", Spec{ConfigPath: "/home/dev/t/Tentacle.config", Executable: "/home/dev/bin/tentacle"}, UnitOptions{Scope: UserScope}},
	{"systemd-254", Spec{Instance: "Tentacle", ConfigPath: "/etc/octopus/Tentacle/tentacle.config", Executable: goldenExecutable}, UnitOptions{SystemdVersion: 254}},
	{"systemd-239", Spec{Instance: "Tentacle", ConfigPath: "/etc/octopus/Tentacle/tentacle.config", Executable: goldenExecutable}, UnitOptions{SystemdVersion: 239}},
}

func TestUnitGolden(t *testing.T) {
	for _, c := range unitCases {
		t.Run(c.name, func(t *testing.T) {
			got, err := RenderUnit(c.spec, c.opts)
			if err != nil {
				t.Fatal(err)
			}
			checkGolden(t, filepath.Join("testdata", "unit-"+c.name+".service"), got)
		})
	}
}

// checkGolden compares a generated unit with its golden file (-update
// rewrites it).
func checkGolden(t *testing.T, path, got string) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run `go test ./agent/service -update` to create it)", err)
	}
	if got != string(want) {
		t.Errorf("unit differs from %s (rerun with -update if intended):\n%s", path, got)
	}
}

// Every golden unit must pass `systemd-analyze verify` with no complaint at
// all: an unknown key is only a warning to systemd, but a silently ignored
// directive is a bug here.
func TestUnitsPassSystemdAnalyzeVerify(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("SKIP: systemd-analyze is not installed (apt-get install systemd; `make deps` does it)")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range unitCases {
		if c.opts.SystemdVersion > localSystemdVersion(t) {
			continue // directives this systemd does not know yet
		}
		t.Run(c.name, func(t *testing.T) {
			spec := c.spec
			spec.Executable = exe // must exist for verify
			text, err := RenderUnit(spec, c.opts)
			if err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			path := filepath.Join(dir, UnitName(spec.Instance))
			if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
				t.Fatal(err)
			}
			args := []string{"verify", "--man=no"}
			if c.opts.Scope == UserScope {
				args = append(args, "--user")
			}
			cmd := exec.Command(analyze, append(args, path)...)
			// A user-scope verify needs a runtime directory; give it one.
			cmd.Env = append(os.Environ(), "XDG_RUNTIME_DIR="+dir, "XDG_CONFIG_HOME="+dir)
			out, err := cmd.CombinedOutput()
			if err != nil || strings.TrimSpace(string(out)) != "" {
				t.Errorf("systemd-analyze verify %s: %v\n%s\n--- unit ---\n%s", path, err, out, text)
			}
		})
	}
}

func localSystemdVersion(t *testing.T) int {
	out, err := exec.Command("systemd-analyze", "--version").Output()
	if err != nil {
		return 0
	}
	if m := systemdVersionPattern().FindStringSubmatch(string(out)); m != nil {
		var v int
		for _, c := range m[1] {
			v = v*10 + int(c-'0')
		}
		return v
	}
	return 0
}

func TestUnitName(t *testing.T) {
	for in, want := range map[string]string{
		"Tentacle":       "Tentacle.service",
		"My Web/01":      "My-Web01.service",
		"a\tb  c":        "a-b--c.service",
		"":               "OctopusDeploy-Tentacle.service",
		"tentacle-other": "tentacle-other.service",
		`100% "$HOME"`:   `100\x25-\x22\x24HOME\x22.service`,
		"web@1":          `web\x401.service`,
	} {
		if got := UnitName(in); got != want {
			t.Errorf("UnitName(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestQuoteExecArg(t *testing.T) {
	for in, want := range map[string]string{
		"/usr/bin/tentacle":      "/usr/bin/tentacle",
		"--instance=Tentacle":    "--instance=Tentacle",
		"--instance=My Web":      `"--instance=My Web"`,
		`--instance=a"b`:         `"--instance=a\"b"`,
		`C:\x`:                   `"C:\\x"`,
		"--instance=100%":        "--instance=100%%",
		"--instance=$HOME":       "--instance=$$HOME",
		";":                      `";"`,
		"":                       `""`,
		"--instance=it's ${x} %": `"--instance=it's $${x} %%"`,
	} {
		if got := quoteExecArg(in); got != want {
			t.Errorf("quoteExecArg(%q) = %s, want %s", in, got, want)
		}
	}
}

func TestExecArgs(t *testing.T) {
	for _, c := range []struct {
		spec Spec
		want []string
	}{
		{Spec{Instance: "Tentacle", ConfigPath: "/c"}, []string{"run", "--instance=Tentacle", "--noninteractive"}},
		{Spec{Instance: "Tentacle", ConfigPath: "/c", Username: "root"}, []string{"run", "--instance=Tentacle", "--noninteractive"}},
		// Another user cannot read root's instance index: the config is named too.
		{Spec{Instance: "Tentacle", ConfigPath: "/c", Username: "octopus"}, []string{"run", "--instance=Tentacle", "--config=/c", "--noninteractive"}},
		{Spec{ConfigPath: "/srv/Tentacle.config"}, []string{"run", "--config=/srv/Tentacle.config", "--noninteractive"}},
	} {
		if got := ExecArgs(c.spec); !reflect.DeepEqual(got, c.want) {
			t.Errorf("ExecArgs(%+v) = %q, want %q", c.spec, got, c.want)
		}
	}
}

func TestRenderUnitRejects(t *testing.T) {
	for name, spec := range map[string]Spec{
		"relative binary":   {Instance: "T", Executable: "tentacle"},
		"relative rootless": {ConfigPath: "Tentacle.config", Executable: "/bin/tentacle"},
		"user with space":   {Instance: "T", Executable: "/bin/tentacle", Username: "a b"},
		"dependOn quote":    {Instance: "T", Executable: "/bin/tentacle", DependOn: `x"y`},
	} {
		if _, err := RenderUnit(spec, UnitOptions{}); err == nil {
			t.Errorf("%s: RenderUnit accepted %+v", name, spec)
		}
	}
}

func TestStepsFollowUpstreamOrder(t *testing.T) {
	all := Actions{Start: true, Credentials: true, Reconfigure: true, Install: true, Uninstall: true, Stop: true, Restart: true}
	want := []Step{StepRestart, StepStop, StepUninstall, StepInstall, StepReconfigure, StepCredentials, StepStart}
	if got := all.Steps(); !reflect.DeepEqual(got, want) {
		t.Errorf("Steps = %v, want %v", got, want)
	}
	if got := (Actions{Start: true, Install: true}).Steps(); !reflect.DeepEqual(got, []Step{StepInstall, StepStart}) {
		t.Errorf("install+start = %v", got)
	}
	for _, a := range []Actions{{Start: true, Stop: true, Restart: true}, {Stop: true, Uninstall: true}, {Uninstall: true}} {
		if !a.EveryInstanceAllowed() {
			t.Errorf("%+v is refused for every instance", a)
		}
	}
	for _, a := range []Actions{{Start: true, Install: true}, {Reconfigure: true}, {Stop: true, Credentials: true}} {
		if a.EveryInstanceAllowed() {
			t.Errorf("%+v is allowed for every instance", a)
		}
	}
}
