// Command tentacle is a wire-compatible replacement for the Octopus Deploy
// Tentacle agent and the toolkit that sets a fleet of them up. This package
// is the CLI only: flag parsing, output and exit codes; the work happens in
// agent/..., provision/... and firewall/....
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"strings"

	"github.com/alecthomas/kong"
	"github.com/fatih/color"
	"github.com/mattn/go-isatty"

	"github.com/tentacle-go/tentacle/agent/config"
	"github.com/tentacle-go/tentacle/agent/scripts"
	"github.com/tentacle-go/tentacle/provision/release"
)

// Exit codes, as upstream (tentacle-surface §1.4); automation depends on them.
const (
	exitOK             = 0
	exitUserError      = 1
	exitUnknownCommand = 2
	exitUnexpected     = 100
)

func main() {
	// A script supervisor is this binary re-executed (agent/scripts): it must
	// not go through the CLI at all.
	if len(os.Args) > 1 && os.Args[1] == scripts.SupervisorArg {
		os.Exit(scripts.Supervise(os.Args[2:]))
	}
	release.RemoveMovedAside()
	cwd, _ := os.Getwd()
	e := &Env{
		Stdin:  os.Stdin,
		Stdout: os.Stdout,
		Stderr: os.Stderr,
		Getenv: os.Getenv,
		Cwd:    cwd,
	}
	e.StdinTTY = isatty.IsTerminal(os.Stdin.Fd())
	e.StdoutTTY = isatty.IsTerminal(os.Stdout.Fd())
	e.StderrTTY = isatty.IsTerminal(os.Stderr.Fd())
	os.Exit(run(os.Args[1:], e))
}

// Env is everything a command may touch outside its arguments, so that tests
// run the whole CLI in-process with temp directories and buffers.
type Env struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	Getenv         func(string) string
	Cwd            string
	// StdoutTTY and StderrTTY enable colour (never with NO_COLOR); StdinTTY
	// says someone may answer a question.
	StdinTTY, StdoutTTY, StderrTTY bool

	root string // machine config root, from Getenv
}

// Root is the machine config root (/etc/octopus unless overridden).
func (e *Env) Root() string {
	if e.root == "" {
		e.root = config.MachineConfigRoot(e.Getenv)
	}
	return e.root
}

// Index is the instance index.
func (e *Env) Index() *config.Index { return config.NewIndex(e.Root()) }

// MachineKey encrypts secrets in configuration files, as upstream.
func (e *Env) MachineKey() config.MachineKey { return config.DefaultMachineKey(e.Root()) }

func (e *Env) colour(tty bool, attrs ...color.Attribute) *color.Color {
	c := color.New(attrs...)
	if tty && e.Getenv("NO_COLOR") == "" && e.Getenv("TERM") != "dumb" {
		c.EnableColor()
	} else {
		c.DisableColor()
	}
	return c
}

// Infof prints a progress line on stdout, as upstream's Info level does.
func (e *Env) Infof(format string, args ...any) {
	fmt.Fprintf(e.Stdout, format+"\n", args...)
}

// Warnf prints a warning on stdout (upstream's Warn level goes to stdout).
func (e *Env) Warnf(format string, args ...any) {
	e.colour(e.StdoutTTY, color.FgYellow).Fprintf(e.Stdout, format+"\n", args...)
}

// Errorf prints an error on stderr.
func (e *Env) Errorf(format string, args ...any) {
	e.colour(e.StderrTTY, color.FgRed).Fprintf(e.Stderr, format+"\n", args...)
}

// run executes one command line and returns the process exit code.
func run(args []string, e *Env) int {
	if e.Getenv == nil {
		e.Getenv = func(string) string { return "" }
	}
	var cli CLI
	commandLine := args
	parser, args, err := parseModel(&cli, e, args)
	if err != nil {
		if errors.Is(err, errNoCommand) {
			printGeneralHelp(e.Stdout, parser.Model)
			return exitUnknownCommand
		}
		var unknown *unknownCommandError
		if errors.As(err, &unknown) {
			// Upstream's exact split: the error on stderr, the hint on stdout.
			e.Errorf("Command '%s' is not supported", unknown.name)
			fmt.Fprintf(e.Stdout, "See '%s help'\n", programName)
			return exitUnknownCommand
		}
		var unrecognized *unrecognizedError
		if errors.As(err, &unrecognized) {
			e.Errorf("%s", unrecognized.Error())
			return exitUserError
		}
		var internal *modelError
		if errors.As(err, &internal) {
			e.Errorf("tentacle: internal error building the command line: %v", internal.err)
			return exitUnexpected
		}
		e.Errorf("%v", err)
		return exitUserError
	}
	ctx, err := parser.Parse(args)
	if err != nil {
		var pe *kong.ParseError
		if errors.As(err, &pe) {
			cmd := "<command>"
			if pe.Context != nil && pe.Context.Selected() != nil {
				cmd = pe.Context.Selected().Name
			}
			e.Errorf("%s. Run `tentacle help %s` to see the options.", upperFirst(err.Error()), cmd)
			return exitUserError
		}
		e.Errorf("%v", err)
		return exitUserError
	}
	logStartup(e, ctx, commandLine)
	if err := ctx.Run(e); err != nil {
		return reportError(e, err)
	}
	return exitOK
}

// reportError prints err in one clear sentence and maps it to an exit code.
func reportError(e *Env, err error) int {
	var ue *config.UserError
	if errors.As(err, &ue) {
		e.Errorf("%s", ue.Msg)
		return exitUserError
	}
	var xe *exitError
	if errors.As(err, &xe) {
		if xe.msg != "" {
			e.Errorf("%s", xe.msg)
		}
		return xe.code
	}
	e.Errorf("Unexpected error: %v", err)
	return exitUnexpected
}

// exitError ends a command with a specific exit code.
type exitError struct {
	code int
	msg  string
}

func (x *exitError) Error() string { return x.msg }

func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// parseModel builds the command line's model and normalises args against it.
// Building kong's model of every command costs ~4 ms, more than the rest of a
// short command such as `remote exec` or `livez`; so when the first argument
// names a command, only that command is built, and the whole model only for
// help, completion and unknown commands.
func parseModel(cli *CLI, e *Env, args []string) (*kong.Kong, []string, error) {
	if f, ok := selectedCommand(args); ok {
		cmd := reflect.ValueOf(cli).Elem().FieldByIndex(f.Index).Addr().Interface()
		one := kong.DynamicCommand(f.Tag.Get("name"), f.Tag.Get("help"), f.Tag.Get("group"), cmd, string(f.Tag))
		parser, err := kong.New(&cli.Globals, append(parserOptions(cli, e), one)...)
		if err != nil {
			return nil, nil, &modelError{err}
		}
		normalized, err := normalizeArgs(parser.Model, args)
		if err != nil || normalized[0] != "help" {
			return parser, normalized, err
		}
		// --help inside a command: help is rendered from the whole model.
	}
	parser, err := newParser(cli, e)
	if err != nil {
		return nil, nil, &modelError{err}
	}
	normalized, err := normalizeArgs(parser.Model, args)
	return parser, normalized, err
}

// modelError is a grammar kong refuses: a bug, exit code 100.
type modelError struct{ err error }

func (m *modelError) Error() string { return m.err.Error() }

// selectedCommand is the CLI field of the command args[0] names (matched as
// normalizeArgs matches it), unless that is help or completion, which need the
// whole model.
func selectedCommand(args []string) (reflect.StructField, bool) {
	if len(args) == 0 {
		return reflect.StructField{}, false
	}
	name := strings.TrimLeft(args[0], "-/")
	t := reflect.TypeFor[CLI]()
	for i := range t.NumField() {
		f := t.Field(i)
		if _, isCmd := f.Tag.Lookup("cmd"); !isCmd || f.Name == "Help" || f.Name == "Completion" {
			continue
		}
		names := []string{f.Tag.Get("name")}
		if a := f.Tag.Get("aliases"); a != "" {
			names = append(names, strings.Split(a, ",")...)
		}
		for _, n := range names {
			if strings.EqualFold(n, name) {
				return f, true
			}
		}
	}
	return reflect.StructField{}, false
}

// newParser builds kong over the whole CLI.
func newParser(cli *CLI, e *Env) (*kong.Kong, error) {
	return kong.New(cli, parserOptions(cli, e)...)
}

// parserOptions are kong's options for cli, built whole or one command at a
// time (parseModel).
func parserOptions(cli *CLI, e *Env) []kong.Option {
	return []kong.Option{
		kong.Name("tentacle"),
		kong.Description("A wire-compatible Octopus Deploy Tentacle agent, and the toolkit to set up a fleet of them."),
		kong.Writers(e.Stdout, e.Stderr),
		kong.NoDefaultHelp(),
		kong.Exit(func(int) {}), // we own exit codes
		kong.Bind(e, &cli.Globals),
	}
}
