package agent

import (
	"fmt"

	"golang.org/x/sys/windows"
)

// osDescription is what .NET's RuntimeInformation.OSDescription gives on
// Windows: "Microsoft Windows 10.0.19045".
func osDescription() string {
	v := windows.RtlGetVersion()
	return fmt.Sprintf("Microsoft Windows %d.%d.%d", v.MajorVersion, v.MinorVersion, v.BuildNumber)
}

func osIs64Bit() bool {
	var wow64 bool
	if err := windows.IsWow64Process(windows.CurrentProcess(), &wow64); err != nil {
		return false
	}
	return wow64 // a 32-bit process on a 64-bit Windows
}
