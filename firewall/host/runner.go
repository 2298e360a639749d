// Package host drives the machine's own firewall through its command-line
// tool: nftables (a table of its own), iptables (a chain of its own, IPv4 and
// IPv6), ufw, firewalld (permanent and runtime) and Windows Firewall (netsh).
//
// Shelling out, rather than talking netlink or D-Bus, keeps every change a
// command line that --dry-run can print exactly and a user can paste, and it
// works the same under ufw and firewalld, which keep state of their own.
package host

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"regexp"
	"strings"
	"sync"

	"github.com/tentacle-go/tentacle/firewall"
)

// Runner runs firewall tools. ExecRunner is the real one; tests run the same
// commands inside a network namespace.
type Runner interface {
	// Run runs the tool and returns its standard output. A tool that exits
	// non-zero gives a *CommandError.
	Run(ctx context.Context, name string, args ...string) ([]byte, error)
	// Installed reports whether the tool is available.
	Installed(name string) bool
}

// ExecRunner runs the tools of this machine.
type ExecRunner struct{}

func (ExecRunner) Installed(name string) bool {
	_, err := resolveTool(name)
	return err == nil
}

func (ExecRunner) Run(ctx context.Context, name string, args ...string) ([]byte, error) {
	path, err := resolveTool(name)
	if err != nil {
		return nil, firewall.Userf("%s is not installed: install it, or choose another firewall with --backend.", name)
	}
	cmd := exec.CommandContext(ctx, path, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	prepare(cmd)
	err = cmd.Run()
	if err != nil {
		ce := &CommandError{Command: Command{Name: name, Args: args}, Stderr: strings.TrimSpace(stderr.String()), Stdout: stdout.String(), Err: err}
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			ce.ExitCode = ee.ExitCode()
		}
		return stdout.Bytes(), ce
	}
	return stdout.Bytes(), nil
}

// CommandError is a tool that failed.
type CommandError struct {
	Command  Command
	ExitCode int
	Stdout   string
	Stderr   string
	Err      error
}

func (e *CommandError) Error() string {
	msg := e.Stderr
	if msg == "" {
		msg = strings.TrimSpace(e.Stdout)
	}
	if msg == "" {
		msg = e.Err.Error()
	}
	return fmt.Sprintf("`%s` failed: %s", e.Command, firstLine(msg))
}

func (e *CommandError) Unwrap() error { return e.Err }

// needsRoot recognises each tool's way of saying it lacks privileges.
var needsRoot = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`(?i)operation not permitted|permission denied|you need to be root|must be root|authorization failed|not authorized|access is denied|requires elevation|run as administrator`)
})

// explain turns a failed command into the error the user sees: lacking
// privileges is something they can fix, so it is a one-sentence UserError.
func explain(err error) error {
	var ce *CommandError
	if errors.As(err, &ce) && needsRoot().MatchString(ce.Stderr+" "+ce.Stdout) {
		return firewall.Userf("Changing the firewall needs administrator rights (`%s` was refused): run tentacle as root (sudo), or as Administrator on Windows.", ce.Command)
	}
	return err
}

// Command is one tool invocation.
type Command struct {
	Name string
	Args []string
}

// String is the command as a line that runs exactly it: a POSIX shell line,
// or for netsh (a Windows tool) a cmd.exe / PowerShell line.
func (c Command) String() string {
	quote := shellQuote
	if c.Name == "netsh" {
		quote = windowsQuote
	}
	parts := []string{quote(c.Name)}
	for _, a := range c.Args {
		parts = append(parts, quote(a))
	}
	return strings.Join(parts, " ")
}

// windowsQuote quotes as Go's os/exec does on Windows: an argument with
// spaces goes in double quotes ("name=Octopus Deploy Tentacle").
func windowsQuote(s string) string {
	if s != "" && !strings.ContainsAny(s, " \t\"") {
		return s
	}
	return `"` + strings.ReplaceAll(s, `"`, `\"`) + `"`
}

var shellSafe = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z0-9_./:=,@+%-]+$`) })

func shellQuote(s string) string {
	if shellSafe().MatchString(s) {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// step makes a plan step that runs c.
func step(r Runner, c Command) firewall.Step {
	return firewall.NewStep(c.String(), func(ctx context.Context) error {
		_, err := r.Run(ctx, c.Name, c.Args...)
		return explain(err)
	})
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return s
}
