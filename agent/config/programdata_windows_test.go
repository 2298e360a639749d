package config

import (
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/windows"
)

// The machine-wide root is the shell's ProgramData folder, not whatever
// %ProgramData% a service manager handed the process (Wine's services.exe
// hands its services C:\users\Public).
func TestMachineConfigRootIgnoresAnotherProgramDataVariable(t *testing.T) {
	want, err := windows.KnownFolderPath(windows.FOLDERID_ProgramData, 0)
	if err != nil {
		t.Fatal(err)
	}
	got := MachineConfigRoot(func(k string) string {
		if k == "ProgramData" {
			return `C:\users\Public`
		}
		return ""
	})
	if got != filepath.Join(want, "Octopus") || strings.HasPrefix(strings.ToLower(got), `c:\users\public`) {
		t.Fatalf("MachineConfigRoot = %q, want %q", got, filepath.Join(want, "Octopus"))
	}
}
