package scripts

import (
	"fmt"
	"path"
	"path/filepath"
	"strings"
)

// maxTicketLength keeps a workspace path well inside every platform's limits.
const maxTicketLength = 200

// ValidateTicket checks that a ticket can name a workspace directory: 1 to 200 characters
// from A-Z, a-z, 0-9, '-', '_' and '.', not starting with '.'. Every ticket upstream
// creates fits (V2: base64 letters and digits; V1: "20240101120000-123-1"); anything
// else could escape Home/Work or collide with this package's own entries there.
func ValidateTicket(ticket string) error {
	if ticket == "" {
		return fmt.Errorf("script ticket is empty")
	}
	if len(ticket) > maxTicketLength {
		return fmt.Errorf("script ticket %.40q... is %d characters long; at most %d are allowed", ticket, len(ticket), maxTicketLength)
	}
	if ticket[0] == '.' {
		return fmt.Errorf("script ticket %q starts with '.'; tickets must start with a letter, digit, '-' or '_'", ticket)
	}
	for _, r := range ticket {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return fmt.Errorf("script ticket %q contains %q; only letters, digits, '-', '_' and '.' are allowed", ticket, r)
		}
	}
	return nil
}

// Names of the files this package keeps in a workspace. Script files may not use them.
const (
	bashBootstrapName       = "Bootstrap.sh"
	powerShellBootstrapName = "Bootstrap.ps1"
	logFileName             = "Output.seqlog"
	stateFileName           = "scriptstate.json"
	supervisorLockName      = "Supervisor.lock"
	supervisorErrName       = "Supervisor.err"
	cancelRequestName       = "Cancel.request"
	completeRequestName     = "Complete.request"
)

// upstreamLogFileName is the log upstream Tentacle keeps in a workspace; this package
// never writes it, but the workspace cleaner reads its age in workspaces upstream left.
const upstreamLogFileName = "Output.log"

var reservedWorkspaceNames = []string{
	bashBootstrapName, powerShellBootstrapName, logFileName, stateFileName,
	supervisorLockName, supervisorErrName, cancelRequestName, completeRequestName,
}

// scriptFilePath turns a ScriptFile name into a path relative to the workspace. Both '/'
// and '\' separate directories (the server may be on Windows); the result may not be
// absolute, contain "..", or name one of this package's own files.
func scriptFilePath(name string) (string, error) {
	if name == "" {
		return "", fmt.Errorf("script file name is empty")
	}
	if strings.ContainsRune(name, 0) {
		return "", fmt.Errorf("script file name %q contains a NUL character", name)
	}
	slashed := strings.ReplaceAll(name, `\`, "/")
	if path.IsAbs(slashed) || filepath.IsAbs(name) || filepath.VolumeName(name) != "" {
		return "", fmt.Errorf("script file name %q is absolute; it must be relative to the workspace", name)
	}
	cleaned := path.Clean(slashed)
	local := filepath.FromSlash(cleaned)
	if !filepath.IsLocal(local) {
		return "", fmt.Errorf("script file name %q leaves the workspace; use a path inside it without \"..\"", name)
	}
	for _, reserved := range reservedWorkspaceNames {
		if strings.EqualFold(cleaned, reserved) {
			return "", fmt.Errorf("script file name %q is reserved for Tentacle's own use in the workspace", name)
		}
	}
	return local, nil
}
