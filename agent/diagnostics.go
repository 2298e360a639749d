package agent

import (
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
)

// StartupDiagnostics are the lines upstream writes to the instance log at
// the start of every command, so that a support engineer reading the log
// knows what ran, where and as whom. Nothing here is secret: the command
// line must already be masked (see the CLI).
func StartupDiagnostics(program, version, instance, command, cwd string, commandLine []string) []string {
	if instance == "" {
		instance = "Default"
	}
	env := EnvironmentInformation(cwd)
	return []string{
		fmt.Sprintf("%s version %s (%s) instance %s", program, strings.SplitN(version, "+", 2)[0], version, instance),
		"Environment Information:\n  " + strings.Join(env, "\n  "),
		"==== " + command + " ====",
		"CommandLine: " + strings.Join(commandLine, " "),
	}
}

// EnvironmentInformation is upstream's list, in upstream's order and
// spelling ("Is64BitProcess: True", a TempDirectory ending in a separator).
func EnvironmentInformation(cwd string) []string {
	is64 := strconv.IntSize == 64
	bits := "x86"
	if is64 || osIs64Bit() {
		bits = "x64"
	}
	userName := "Unable to retrieve environment information."
	if u, err := user.Current(); err == nil {
		userName = u.Username
	}
	host, err := os.Hostname()
	if err != nil {
		host = "Unable to retrieve environment information."
	}
	tmp := os.TempDir()
	if !strings.HasSuffix(tmp, string(filepath.Separator)) {
		tmp += string(filepath.Separator)
	}
	exe, _ := os.Executable()
	return []string{
		"OperatingSystem: " + osDescription(),
		"OsBitVersion: " + bits,
		"Is64BitProcess: " + pascalBool(is64),
		"CurrentUser: " + userName,
		"MachineName: " + host,
		"ProcessorCount: " + strconv.Itoa(runtime.NumCPU()),
		"CurrentDirectory: " + cwd,
		"TempDirectory: " + tmp,
		"HostProcessName: " + strings.TrimSuffix(filepath.Base(exe), ".exe"),
		"PID: " + strconv.Itoa(os.Getpid()),
	}
}

// pascalBool is .NET's bool.ToString.
func pascalBool(b bool) string {
	if b {
		return "True"
	}
	return "False"
}
