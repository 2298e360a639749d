package service

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestWindowsServiceNames(t *testing.T) {
	for in, want := range map[string]string{
		"Tentacle": "OctopusDeploy Tentacle",
		"":         "OctopusDeploy Tentacle",
		"Web 01":   "OctopusDeploy Tentacle: Web 01",
		"tentacle": "OctopusDeploy Tentacle: tentacle",
	} {
		if got := WindowsServiceName(in); got != want {
			t.Errorf("WindowsServiceName(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestWindowsConfig(t *testing.T) {
	c := WindowsConfig(Spec{Instance: "Web 01", Executable: `C:\Program Files\Octopus Deploy\Tentacle\Tentacle.exe`, DependOn: "MSSQLSERVER"})
	want := WindowsServiceConfig{
		Name:                "OctopusDeploy Tentacle: Web 01",
		DisplayName:         "OctopusDeploy Tentacle: Web 01",
		Description:         "Octopus Deploy: Tentacle deployment agent",
		BinaryPath:          `"C:\Program Files\Octopus Deploy\Tentacle\Tentacle.exe" run --instance="Web 01" --windows-service`,
		Dependencies:        []string{"LanmanWorkstation", "TCPIP", "MSSQLSERVER"},
		Recovery:            []WindowsRecoveryAction{{time.Minute}, {time.Minute}, {5 * time.Minute}},
		RecoveryResetPeriod: 24 * time.Hour,
		UnrestrictedSID:     true,
	}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("WindowsConfig =\n%+v\nwant\n%+v", c, want)
	}
	rootless := WindowsConfig(Spec{ConfigPath: `D:\t\Tentacle.config`, Executable: `C:\t\tentacle.exe`})
	if rootless.Name != "OctopusDeploy Tentacle" || rootless.BinaryPath != `"C:\t\tentacle.exe" run --config="D:\t\Tentacle.config" --windows-service` {
		t.Errorf("rootless: %+v", rootless)
	}
	if d := WindowsConfig(Spec{Instance: "Tentacle", Executable: `C:\t\Tentacle.dll`}); d.BinaryPath != `dotnet "C:\t\Tentacle.dll" run --instance="Tentacle" --windows-service` || !reflect.DeepEqual(d.Dependencies, []string{"LanmanWorkstation", "TCPIP"}) {
		t.Errorf("dll: %+v", d)
	}
}

func TestDecideWindowsAccount(t *testing.T) {
	for _, c := range []struct {
		user, password string
		want           WindowsAccount
		err            string
	}{
		{"", "", WindowsAccount{}, ""},
		{"", "secret", WindowsAccount{}, "without --username"},
		{"LocalSystem", "", WindowsAccount{StartName: "LocalSystem"}, ""},
		{`NT AUTHORITY\NetworkService`, "", WindowsAccount{StartName: `NT AUTHORITY\NetworkService`}, ""},
		{"local service", "", WindowsAccount{StartName: `NT AUTHORITY\LocalService`}, ""},
		{`NT SERVICE\Tentacle`, "", WindowsAccount{StartName: `NT SERVICE\Tentacle`}, ""},
		{`CORP\gmsa-tentacle$`, "", WindowsAccount{StartName: `CORP\gmsa-tentacle$`, GrantLogonRight: true}, ""},
		{`CORP\gmsa-tentacle$`, "pw", WindowsAccount{}, "managed service account"},
		{"deploy", "pw", WindowsAccount{StartName: `.\deploy`, Password: "pw", GrantLogonRight: true}, ""},
		{`CORP\deploy`, "pw", WindowsAccount{StartName: `CORP\deploy`, Password: "pw", GrantLogonRight: true}, ""},
		{"deploy@corp.example", "pw", WindowsAccount{StartName: "deploy@corp.example", Password: "pw", GrantLogonRight: true}, ""},
		{`CORP\deploy`, "", WindowsAccount{}, "needs its password"},
	} {
		got, err := DecideWindowsAccount(c.user, c.password)
		switch {
		case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
			t.Errorf("%q/%q: error %v, want one containing %q", c.user, c.password, err, c.err)
		case c.err == "" && err != nil:
			t.Errorf("%q/%q: %v", c.user, c.password, err)
		case c.err == "" && got != c.want:
			t.Errorf("%q/%q = %+v, want %+v", c.user, c.password, got, c.want)
		}
	}
}

// The SCM's "not implemented" answers make an optional setting a warning;
// anything else (access denied, a bad handle) does not count as one.
func TestOptionalSettingRefused(t *testing.T) {
	for code, want := range map[uintptr]bool{124: true, 50: true, 120: true, 5: false, 6: false, 87: false, 0: false} {
		if got := OptionalSettingRefused(code); got != want {
			t.Errorf("OptionalSettingRefused(%d) = %v, want %v", code, got, want)
		}
	}
}

// The program of a service's command line, as the upgrade compares it with
// the binary it replaces: quoted as install writes it, unquoted with spaces
// as Wine's msiexec and a hand-made service leave it.
func TestWindowsServiceExecutable(t *testing.T) {
	for line, want := range map[string]string{
		`"C:\Program Files\Octopus Deploy\Tentacle\Tentacle.exe" run --instance="Tentacle" --windows-service`: `C:\Program Files\Octopus Deploy\Tentacle\Tentacle.exe`,
		`C:\Program Files\Octopus Deploy\Tentacle\Tentacle.exe run --instance="Tentacle"`:                     `C:\Program Files\Octopus Deploy\Tentacle\Tentacle.exe`,
		`C:\Tools\TENTACLE.EXE`:                    `C:\Tools\TENTACLE.EXE`,
		`C:\my.exes\Tentacle.exe agent`:            `C:\my.exes\Tentacle.exe`,
		`  C:\Tools\agent run`:                     `C:\Tools\agent`,
		`"C:\Program Files\Tentacle\Tentacle.exe"`: `C:\Program Files\Tentacle\Tentacle.exe`,
		``: ``,
	} {
		if got := WindowsServiceExecutable(line); got != want {
			t.Errorf("WindowsServiceExecutable(%q) = %q, want %q", line, got, want)
		}
	}
}
