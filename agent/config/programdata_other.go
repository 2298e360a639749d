//go:build !windows

package config

// programData is only asked on Windows; elsewhere it is the variable, for
// code that computes Windows paths on another platform.
func programData(getenv func(string) string) string {
	if pd := getenv("ProgramData"); pd != "" {
		return pd
	}
	return `C:\ProgramData`
}
