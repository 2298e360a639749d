package scripts

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"
)

// SupervisorProgram is the name of the small program (cmd/tentacle-supervisor) that runs
// script supervisors without the rest of the tentacle binary; ".exe" is added on Windows.
const SupervisorProgram = "tentacle-supervisor"

// supervisorVersionTimeout bounds asking a supervisor program for its version.
const supervisorVersionTimeout = 10 * time.Second

// FindSupervisor returns the command that should start script supervisors
// (Config.SupervisorCommand) for an agent whose executable is exe and whose build is
// version, and a sentence for the agent's log that says which it is and why.
//
// A supervisor lives as long as its script, one per running script, so the process it
// costs matters: the tentacle-supervisor program starts in a quarter of the time of the
// whole binary and with under half its memory. It is used when it lies beside exe
// (archives, the MSI, the image) or in ../libexec/tentacle (the deb and rpm, install.sh's
// /usr/local) and answers `version` with exactly version; a missing, unrunnable or
// mismatched one (a binary copied over by hand) is passed over for exe itself, which
// can always run a supervisor.
func FindSupervisor(exe, version string) (command []string, note string) {
	if resolved, err := filepath.EvalSymlinks(exe); err == nil {
		exe = resolved
	}
	self := []string{exe, SupervisorArg}
	name := SupervisorFileName()
	var passed []string
	beside, libexec := SupervisorPlaces(exe)
	for _, candidate := range []string{beside, libexec} {
		got, err := supervisorVersion(candidate)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			continue
		case err != nil:
			passed = append(passed, fmt.Sprintf("%s cannot be run (%v)", candidate, err))
		case got != version:
			passed = append(passed, fmt.Sprintf("%s is version %s, not this agent's %s", candidate, got, version))
		default:
			return []string{candidate, SupervisorArg}, "scripts run under " + candidate
		}
	}
	if len(passed) == 0 {
		return self, fmt.Sprintf("scripts run under this binary (%s): no %s beside it or in ../libexec/tentacle", exe, name)
	}
	return self, fmt.Sprintf("scripts run under this binary (%s): %s", exe, strings.Join(passed, "; "))
}

// SupervisorFileName is SupervisorProgram's file name on this system.
func SupervisorFileName() string {
	if runtime.GOOS == "windows" {
		return SupervisorProgram + ".exe"
	}
	return SupervisorProgram
}

// SupervisorPlaces are where FindSupervisor looks for the supervisor program of the agent
// whose executable is exe (symlinks already resolved), in its order: beside exe, then in
// ../libexec/tentacle. Installers put it in one of them (provision/release).
func SupervisorPlaces(exe string) (beside, libexec string) {
	dir := filepath.Dir(exe)
	return filepath.Join(dir, SupervisorFileName()), filepath.Join(filepath.Dir(dir), "libexec", "tentacle", SupervisorFileName())
}

// supervisorVersion runs `program version`; fs.ErrNotExist means there is no such file.
func supervisorVersion(program string) (string, error) {
	fi, err := os.Stat(program)
	if err != nil {
		return "", err
	}
	if fi.IsDir() {
		return "", fmt.Errorf("%s is a directory", program)
	}
	ctx, cancel := context.WithTimeout(context.Background(), supervisorVersionTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, program, "version")
	// Windows can keep a finished child's pipe open a while (seen under Wine's service
	// manager on a loaded machine: over a second): the answer is the line it printed.
	cmd.WaitDelay = 5 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err = cmd.Run()
	if errors.Is(err, exec.ErrWaitDelay) && strings.HasSuffix(stdout.String(), "\n") {
		err = nil // it exited 0 and said its version; only the pipe outlived it
	}
	if err != nil {
		if msg := strings.TrimSpace(stderr.String()); msg != "" {
			return "", fmt.Errorf("%w: %s", err, msg)
		}
		return "", err
	}
	return strings.TrimSpace(stdout.String()), nil
}
