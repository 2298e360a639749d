package config

import "golang.org/x/sys/windows"

// programData is the machine's ProgramData folder, asked of the shell's
// known folders as upstream does (CommonApplicationData), not read from
// %ProgramData%: a process started by a service manager can have another
// environment (Wine's services.exe hands its services
// ProgramData=C:\users\Public), and the agent under the SCM must find the
// instances that `create-instance` made in a console. The variable, then
// C:\ProgramData, only when the shell cannot say.
func programData(getenv func(string) string) string {
	if dir, err := windows.KnownFolderPath(windows.FOLDERID_ProgramData, 0); err == nil && dir != "" {
		return dir
	}
	if pd := getenv("ProgramData"); pd != "" {
		return pd
	}
	return `C:\ProgramData`
}
