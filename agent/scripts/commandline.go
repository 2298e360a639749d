package scripts

import (
	"path/filepath"
	"strings"
)

// shellFlavor is how a workspace's bootstrap script is written and run. It is chosen by
// the agent's OS, but both flavours build on every OS so they can be tested anywhere.
type shellFlavor int

const (
	bashFlavor shellFlavor = iota
	powerShellFlavor
)

const utf8BOM = "\uFEFF"

// bootstrapScript returns the bootstrap file's name and bytes for req (upstream §7.2/7.3).
func (f shellFlavor) bootstrapScript(req *StartRequest) (name string, data []byte) {
	if f == powerShellFlavor {
		return powerShellBootstrapName, []byte(utf8BOM + req.ScriptBody)
	}
	body := req.ScriptBody
	if bash, ok := req.Scripts["Bash"]; ok {
		body = bash
	}
	return bashBootstrapName, []byte(strings.ReplaceAll(body, "\r\n", "\n"))
}

// bashArgv is the argv that runs a bootstrap script with bash. Unlike upstream, which joins
// the arguments into one unquoted string (so an argument with a space becomes two), each
// argument stays one argument.
func bashArgv(bash, bootstrap string, args []string) []string {
	return append([]string{bash, bootstrap}, args...)
}

// powerShellCommandLine is the raw Windows command line upstream uses to run a bootstrap
// script: the arguments are spliced into the -Command text as they are, so the server's
// quoting reaches PowerShell unchanged, and a quote in the path is doubled for the
// single-quoted PowerShell string. Unlike upstream, PowerShell first prints startMarker
// (powerShellStartMarker): a PowerShell.exe that exits without printing it never ran the
// script (a stub, like Wine's), and the supervisor fails the script instead of reporting
// the stub's exit code as the script's.
func powerShellCommandLine(powerShell, bootstrap, startMarker string, args []string) string {
	var b strings.Builder
	b.WriteString(`"`)
	b.WriteString(powerShell)
	b.WriteString(`" -NonInteractive -NoProfile -NoLogo -ExecutionPolicy Unrestricted -Command "$ErrorActionPreference = 'Stop'; Write-Output '`)
	b.WriteString(startMarker)
	b.WriteString(`'; . {. '`)
	b.WriteString(strings.ReplaceAll(bootstrap, "'", "''"))
	b.WriteString(`' `)
	b.WriteString(strings.Join(args, " "))
	b.WriteString(`; if ((test-path variable:global:lastexitcode)) { exit $LastExitCode }}"`)
	return b.String()
}

// powerShellStartMarker is the line PowerShell prints before it runs the bootstrap of the
// launch with token: the supervisor takes it out of the log.
func powerShellStartMarker(token string) string {
	return "##tentacle[powershell-started " + token + "]"
}

// defaultPowerShellPath finds Windows PowerShell as upstream does: the System32 copy under
// systemRoot when it exists, else whatever PowerShell.exe is on PATH.
func defaultPowerShellPath(systemRoot string, exists func(string) bool) string {
	if systemRoot != "" {
		p := filepath.Join(systemRoot, "System32", "WindowsPowerShell", "v1.0", "PowerShell.exe")
		if exists(p) {
			return p
		}
	}
	return "PowerShell.exe"
}
