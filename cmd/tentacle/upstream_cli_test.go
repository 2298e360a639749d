package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
)

// The cases of upstream's TentacleCommandLineTests (its integration suite
// run against this binary), one test each, with upstream's expectations.

// upstreamHelpText is what upstream prints for `version --help`, `help
// version` and (with "help") `help --help`, compared byte for byte there.
const upstreamHelpText = `Usage: Tentacle %s [<options>]

Where [<options>] is any of: 

      --format=VALUE         The format of the output (text,json). Defaults 
                               to text.

Or one of the common options: 

      --help                 Show detailed help for this command
`

func TestUpstreamNoArgumentsIsGeneralHelpAndExit2(t *testing.T) {
	h := newHarness(t)
	out, errs, code := h.run()
	if code != 2 || !strings.HasPrefix(out, "Usage: Tentacle <command> [<options>]") ||
		!strings.Contains(out, "Or use <command> --help for more details.") || errs != "" {
		t.Errorf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errs)
	}
}

func TestUpstreamUnknownCommand(t *testing.T) {
	h := newHarness(t)
	out, errs, code := h.run("unknown-command")
	if code != 2 || !strings.HasPrefix(errs, "Command 'unknown-command' is not supported") || !strings.HasPrefix(out, "See 'Tentacle help'") {
		t.Errorf("exit %d\nstdout: %q\nstderr: %q", code, out, errs)
	}
}

func TestUpstreamUnknownAndInvalidArguments(t *testing.T) {
	h := newHarness(t)
	for _, tc := range []struct{ args, want []string }{
		{[]string{"version", "--unknown=argument"}, []string{"Unrecognized command line arguments: --unknown=argument"}},
		{[]string{"version", "--format=unsupported"}, []string{"The format 'unsupported' is not supported. Try text or json."}},
	} {
		out, errs, code := h.run(tc.args...)
		if code != 1 || out != "" || !strings.Contains(errs, tc.want[0]) {
			t.Errorf("%q: exit %d\nstdout: %q\nstderr: %q", tc.args, code, out, errs)
		}
	}
}

func TestUpstreamDeprecatedSwitchesAreSilentlyAccepted(t *testing.T) {
	h := newHarness(t)
	for _, sw := range []string{"--noconsolelogging", "--nologo", "--console"} {
		if _, errs, code := h.run("version", sw); code != 0 || errs != "" {
			t.Errorf("version %s: exit %d, stderr %q", sw, code, errs)
		}
	}
	for _, spelling := range []string{"version", "--version", "/version"} {
		h.must(spelling)
	}
}

// A version is SemVer, x.y.z: a development build is 0.0.0-dev with the
// commit as build metadata, a release its tag.
var semver = regexp.MustCompile(`^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(-[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?(\+[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?$`)

func TestUpstreamVersionTextAndJSON(t *testing.T) {
	h := newHarness(t)
	text := h.must("version")
	if !semver.MatchString(text) {
		t.Errorf("version %q is not x.y.z SemVer (nor without a trailing newline)", text)
	}
	var v struct {
		InformationalVersion, MajorMinorPatch, NuGetVersion, SourceBranchName *string
		IsPrerelease                                                          *bool
	}
	if err := json.Unmarshal([]byte(h.must("version", "--format=json")), &v); err != nil {
		t.Fatal(err)
	}
	if v.InformationalVersion == nil || *v.InformationalVersion != text || v.MajorMinorPatch == nil ||
		!regexp.MustCompile(`^\d+\.\d+\.\d+$`).MatchString(*v.MajorMinorPatch) || !strings.HasPrefix(text, *v.MajorMinorPatch) ||
		v.NuGetVersion == nil || v.SourceBranchName == nil || v.IsPrerelease == nil {
		t.Errorf("version --format=json: %+v", v)
	}
}

func TestVersionFromLinkerFlagsIsUsedAsGiven(t *testing.T) {
	defer func(v string) { version = v }(version)
	for in, want := range map[string]string{"v1.2.3": "1.2.3", "1.2.3": "1.2.3", "0.0.0-dev+0190edef47d6.dirty": "0.0.0-dev+0190edef47d6.dirty"} {
		version = in
		info := currentVersion()
		if info.InformationalVersion != want || !semver.MatchString(info.InformationalVersion) {
			t.Errorf("%q: %+v", in, info)
		}
	}
	version = "0.0.0-dev+abc"
	if info := currentVersion(); info.NuGetVersion != "0.0.0-dev" || info.MajorMinorPatch != "0.0.0" || !info.IsPrerelease {
		t.Errorf("dev build: %+v", info)
	}
	version = ""
	if v := buildVersion(); !semver.MatchString(v) || !strings.HasPrefix(v, "0.0.0-dev") {
		t.Errorf("a build without linker flags: %q", v)
	}
}

func TestUpstreamCommandHelpTextIsByteForByte(t *testing.T) {
	h := newHarness(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"help", "--help"}, strings.Replace(upstreamHelpText, "%s", "help", 1)},
		{[]string{"version", "--help"}, strings.Replace(upstreamHelpText, "%s", "version", 1)},
		{[]string{"help", "version"}, strings.Replace(upstreamHelpText, "%s", "version", 1)},
	} {
		out, errs, code := h.run(tc.args...)
		if code != 0 || errs != "" || out != tc.want {
			t.Errorf("%q: exit %d, stderr %q\n%s", tc.args, code, errs, lineDiff(tc.want, out))
		}
	}
}

func TestUpstreamCommandHelpJSONIsByteForByte(t *testing.T) {
	h := newHarness(t)
	want := `{
  "Name": "version",
  "Description": "Show the Tentacle version information",
  "Aliases": [],
  "Options": [
    {
      "Name": "format",
      "Description": "The format of the output (text,json). Defaults to text."
    }
  ],
  "CommonOptions": [
    {
      "Name": "help",
      "Description": "Show detailed help for this command"
    }
  ]
}`
	for _, args := range [][]string{{"version", "--help", "--format=json"}, {"help", "version", "--format=json"}, {"version", "--format", "json", "--help"}} {
		if out, errs, code := h.run(args...); code != 0 || errs != "" || out != want {
			t.Errorf("%q: exit %d, stderr %q\n%s", args, code, errs, lineDiff(want, out))
		}
	}
}

type commandHelpJSON struct {
	Name, Description      *string
	Aliases                []string
	Options, CommonOptions []struct{ Name, Description *string }
}

// Automation lists the commands with `help --format=json`, then asks each
// for its help: every one answers without an instance, in upstream's shape.
func TestUpstreamHelpForEveryCommandAlwaysWorks(t *testing.T) {
	h := newHarness(t)
	var general struct {
		Commands []struct {
			Name, Description *string
			Aliases           []string
		}
	}
	if err := json.Unmarshal([]byte(h.must("help", "--format=json")), &general); err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, c := range general.Commands {
		if c.Name == nil || c.Description == nil || c.Aliases == nil {
			t.Fatalf("a command lacks Name, Description or Aliases: %+v", c)
		}
		names[*c.Name] = true
		out, errs, code := h.run(*c.Name, "--help")
		if code != 0 || !strings.HasPrefix(out, "Usage: Tentacle "+*c.Name+" [<options>]") {
			t.Errorf("%s --help: exit %d\nstdout:\n%s\nstderr:\n%s", *c.Name, code, out, errs)
		}
		for _, args := range [][]string{{*c.Name, "--help", "--format=json"}, {"help", *c.Name, "--format=json"}} {
			var one commandHelpJSON
			out, errs, code := h.run(args...)
			if err := json.Unmarshal([]byte(out), &one); err != nil || code != 0 || errs != "" {
				t.Errorf("%q: exit %d, %v\n%s%s", args, code, err, out, errs)
				continue
			}
			if one.Name == nil || *one.Name != *c.Name || one.Description == nil || one.Aliases == nil || one.Options == nil || len(one.CommonOptions) != 1 {
				t.Errorf("%q: not upstream's shape: %s", args, out)
			}
			for _, o := range one.Options {
				if o.Name == nil || o.Description == nil || *o.Name == "" {
					t.Errorf("%q: option without Name or Description: %s", args, out)
				}
			}
		}
	}
	// Upstream's test also expects "run" (agent's alias here and upstream)
	// and "show-master-key" (an Octopus Server command): upstream fails
	// those two too.
	for _, n := range []string{"configure", "help", "agent", "version", "show-thumbprint"} {
		if !names[n] {
			t.Errorf("help --format=json lacks %s", n)
		}
	}
}

func TestUpstreamInvalidInstance(t *testing.T) {
	h := newHarness(t)
	out, errs, code := h.run("show-thumbprint", "--instance=invalidinstance")
	if code != 1 || out != "" || !strings.Contains(strings.ToLower(errs), "instance invalidinstance of tentacle has not been configured") ||
		!strings.Contains(errs, "Available instances:") {
		t.Errorf("exit %d\nstdout: %q\nstderr: %q", code, out, errs)
	}
}

func TestUpstreamListInstances(t *testing.T) {
	h := newHarness(t)
	cfg := filepath.Join(h.tmp, "home", "X.cfg")
	h.must("create-instance", "--instance=X", "--config="+cfg)
	if out := h.must("list-instances", "--format=text"); !strings.Contains(out, "Instance 'X' uses configuration '"+cfg+"'.") {
		t.Errorf("text: %q", out)
	}
	out := h.must("list-instances", "--format=json")
	if !strings.Contains(out, `"InstanceName": "X"`) || !strings.Contains(out, `"ConfigurationFilePath": "`+strings.ReplaceAll(cfg, `\`, `\\`)+`"`) {
		t.Errorf("json: %q", out)
	}
}

// Every command on an instance writes upstream's start-up diagnostics to
// the instance's log, and none of it to the console; secrets are masked.
func TestUpstreamStartupDiagnosticsGoToTheInstanceLogOnly(t *testing.T) {
	h := newHarness(t)
	home := filepath.Join(h.tmp, "home")
	h.must("create-instance", "--instance=X", "--config="+filepath.Join(home, "X.cfg"))
	h.must("new-certificate", "--instance=X")
	logPath := filepath.Join(home, "Logs", "OctopusTentacle.txt")
	before, _ := os.ReadFile(logPath)
	out, errs, code := h.run("show-thumbprint", "--instance=X")
	if code != 0 || errs != "" {
		t.Fatalf("exit %d, %s", code, errs)
	}
	h.must("proxy", "--instance=X", "--proxyEnable=true", "--proxyHost=proxy.example", "--proxyPort=3128", "--proxyUsername=me", "--proxyPassword", "s3cret-value")
	data, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	log := strings.TrimPrefix(string(data), string(before))
	host, _ := os.Hostname()
	tmp := os.TempDir()
	if !strings.HasSuffix(tmp, string(filepath.Separator)) {
		tmp += string(filepath.Separator)
	}
	wants := []string{
		"CommandLine: ", "show-thumbprint --instance=X", "==== show-thumbprint ====",
		"Tentacle version " + currentVersion().NuGetVersion + " (" + currentVersion().InformationalVersion + ") instance X",
		"OperatingSystem: " + osDescriptionForTest(t), "OsBitVersion: x64", "Is64BitProcess: True",
		"MachineName: " + host, "ProcessorCount: ", "CurrentDirectory: " + h.cwd, "TempDirectory: " + tmp, "HostProcessName: ", "PID: ",
		"--proxyPassword ********",
	}
	for _, w := range wants {
		if !strings.Contains(log, w) {
			t.Errorf("the instance log lacks %q:\n%s", w, log)
		}
	}
	if strings.Contains(log, "s3cret-value") {
		t.Error("a secret from the command line is in the log")
	}
	if strings.Contains(out, "OperatingSystem") || strings.Contains(out, "CommandLine") {
		t.Errorf("diagnostics on stdout: %q", out)
	}
}

// osDescriptionForTest is what upstream prints there, from outside the code
// under test: `uname -srv` on Unix.
func osDescriptionForTest(t *testing.T) string {
	if runtime.GOOS == "windows" {
		return "Microsoft Windows "
	}
	data, err := os.ReadFile("/proc/sys/kernel/osrelease")
	if err != nil {
		t.Skip("no /proc: cannot check the OS description independently")
	}
	return "Linux " + strings.TrimSpace(string(data)) + " "
}
