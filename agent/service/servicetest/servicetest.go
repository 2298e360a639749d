// Package servicetest is a stand-in for systemctl, for tests of what
// `tentacle service` decides (which commands, in which order, which files)
// without a running systemd. Files are real (under the test's unit
// directory); only systemctl and journalctl are simulated. The real thing is
// tested under systemd in systemd-nspawn (cmd/tentacle).
package servicetest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/tentacle-go/tentacle/agent/service"
)

// Systemctl implements service.Host: file changes go to disk, systemctl
// commands change a simulated unit state, and every command is recorded.
type Systemctl struct {
	service.Direct
	// UnitDir is where the simulated manager looks for unit files.
	UnitDir string
	// OnStart runs when a unit is started or restarted (for example to
	// touch the agent's heartbeat as a real agent would).
	OnStart func(unit string)
	// FailStart makes start and restart fail with this output.
	FailStart string

	mu      sync.Mutex
	enabled map[string]bool
	active  map[string]bool
	pid     int
	log     []string
}

// New returns a simulated systemd whose units live in unitDir.
func New(unitDir string) *Systemctl {
	return &Systemctl{UnitDir: unitDir, enabled: map[string]bool{}, active: map[string]bool{}, pid: 1000}
}

// Log returns the commands run so far, one per entry, and forgets them.
func (s *Systemctl) Log() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.log
	s.log = nil
	return out
}

// Active reports whether unit runs.
func (s *Systemctl) Active(unit string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.active[unit]
}

// Enabled reports whether unit starts at boot.
func (s *Systemctl) Enabled(unit string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.enabled[unit]
}

func (s *Systemctl) loaded(unit string) bool {
	_, err := os.Stat(filepath.Join(s.UnitDir, unit))
	return err == nil
}

// Command simulates systemctl and journalctl.
func (s *Systemctl) Command(ctx context.Context, name string, args ...string) (string, error) {
	s.mu.Lock()
	s.log = append(s.log, strings.TrimSpace(name+" "+strings.Join(args, " ")))
	s.mu.Unlock()
	switch name {
	case "journalctl":
		return "-- No entries --\n", nil
	case "systemctl":
	default:
		return "", fmt.Errorf("servicetest: unexpected command %s", name)
	}
	if len(args) > 0 && args[0] == "--user" {
		args = args[1:]
	}
	if len(args) == 0 {
		return "", fmt.Errorf("servicetest: systemctl without a verb")
	}
	verb, rest := args[0], args[1:]
	unit := ""
	if len(rest) > 0 {
		unit = rest[0]
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	fail := func(out string, code int) (string, error) {
		return out, &service.CommandError{Command: "systemctl " + strings.Join(args, " "), Output: out, Err: exitError(code)}
	}
	switch verb {
	case "daemon-reload", "reset-failed":
		return "", nil
	case "show":
		st := []string{"LoadState=not-found", "ActiveState=inactive", "SubState=dead", "UnitFileState=", "User=", "MainPID=0"}
		if s.loaded(unit) {
			st[0] = "LoadState=loaded"
			st[3] = "UnitFileState=disabled"
			if s.enabled[unit] {
				st[3] = "UnitFileState=enabled"
			}
		}
		if s.active[unit] {
			st[1], st[2], st[5] = "ActiveState=active", "SubState=running", fmt.Sprintf("MainPID=%d", s.pid)
		}
		return strings.Join(st, "\n") + "\n", nil
	case "enable", "disable":
		if !s.loaded(unit) {
			return fail("Failed to "+verb+" unit: Unit file "+unit+" does not exist.\n", 1)
		}
		s.enabled[unit] = verb == "enable"
		return "", nil
	case "start", "restart":
		if !s.loaded(unit) {
			return fail("Failed to "+verb+" "+unit+": Unit "+unit+" not found.\n", 5)
		}
		if s.FailStart != "" {
			return fail(s.FailStart, 1)
		}
		s.active[unit] = true
		s.pid++
		if s.OnStart != nil {
			s.OnStart(unit)
		}
		return "", nil
	case "stop":
		s.active[unit] = false
		return "", nil
	}
	return fail("Unknown command verb "+verb+".\n", 1)
}

// exitError is an *exec.ExitError-like failure with an exit code.
type exitError int

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", int(e)) }
