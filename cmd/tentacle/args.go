package main

import (
	"errors"
	"strings"

	"github.com/alecthomas/kong"
)

// unknownCommandError is exit code 2, as upstream.
type unknownCommandError struct{ name string }

func (u *unknownCommandError) Error() string { return "unknown command " + u.name }

// normalizeArgs rewrites an upstream-style command line into the canonical
// form kong parses, so that automation written for upstream Tentacle works
// unchanged (tentacle-surface §1.1):
//   - the command name is matched case-insensitively, with leading - and /
//     stripped, so `--version`, `/?` and `Create-Instance` work;
//   - options may start with --, - or /, are matched case-insensitively
//     (--apiKey, --apikey, /APIKEY), and take their value after =, : or as
//     the next argument, which is always consumed as the value even when it
//     starts with a dash;
//   - --help, -h, -? and /? anywhere become `help <command>`, keeping a
//     --format given with them (`version --help --format=json`);
//   - anything else shaped like an option, or a word where the command takes
//     no argument, is upstream's "Unrecognized command line arguments".
func normalizeArgs(app *kong.Application, args []string) ([]string, error) {
	if len(args) == 0 {
		return nil, errNoCommand
	}
	name := strings.ToLower(strings.TrimLeft(args[0], "-/"))
	cmd := findCommand(app, name)
	if cmd == nil {
		return nil, &unknownCommandError{name: args[0]}
	}
	rest := args[1:]
	if cmd.Name == "help" {
		return normalizeHelpArgs(rest), nil
	}
	flags := flagIndex(cmd)
	out := []string{cmd.Name}
	var unrecognized []string
	helpWanted, format := false, ""
	var foreignFormat []string
	for i := 0; i < len(rest); i++ {
		a := rest[i]
		if a == "--" {
			out = append(out, rest[i:]...)
			break
		}
		n, v, hasValue, ok := splitOption(a)
		if !ok {
			// A sub-command (`diag decode-message`) selects the node whose
			// options apply from here on.
			if child := findChild(cmd, a); child != nil {
				cmd = child
				flags = flagIndex(cmd)
				out = append(out, child.Name)
				continue
			}
			if len(cmd.Positional) == 0 && !hasSubcommands(cmd) {
				unrecognized = append(unrecognized, a)
				continue
			}
			out = append(out, a)
			continue
		}
		ln := strings.ToLower(n)
		f, known := flags[ln]
		if ln == "help" || (ln == "h" || ln == "?") && !known {
			helpWanted = true
			continue
		}
		if ln == "format" && !known {
			// Help's --format, for a command without one of its own: fine
			// with --help, unrecognized without.
			if !hasValue && i+1 < len(rest) {
				i++
				v = rest[i]
			}
			format = v
			foreignFormat = append(foreignFormat, rest[i-boolToInt(!hasValue):i+1]...)
			continue
		}
		if !known {
			// A /path is an argument for a command that takes one.
			if strings.HasPrefix(a, "/") && len(cmd.Positional) > 0 {
				out = append(out, a)
				continue
			}
			unrecognized = append(unrecognized, a)
			continue
		}
		if f.IsBool() || f.IsCounter() {
			if hasValue {
				out = append(out, "--"+f.Name+"="+v)
			} else {
				out = append(out, "--"+f.Name)
			}
			continue
		}
		if !hasValue {
			if i+1 >= len(rest) {
				if helpWanted {
					continue
				}
				return nil, &missingValueError{flag: f.Name, command: commandPath(cmd)}
			}
			i++
			v = rest[i]
		}
		if ln == "format" {
			format = v
		}
		out = append(out, "--"+f.Name+"="+v)
	}
	if helpWanted {
		// As upstream, help ignores what it does not understand.
		help := []string{"help"}
		if format != "" {
			help = append(help, "--format="+format)
		}
		return append(help, strings.Fields(commandPath(cmd))...), nil
	}
	if unrecognized = append(unrecognized, foreignFormat...); len(unrecognized) > 0 {
		return nil, &unrecognizedError{args: unrecognized}
	}
	return out, nil
}

// normalizeHelpArgs: help takes command names and --format; --help among
// them shows help's own help, as upstream; other arguments are ignored.
func normalizeHelpArgs(rest []string) []string {
	out := []string{"help"}
	var targets []string
	helpOfHelp := false
	for i := 0; i < len(rest); i++ {
		n, v, hasValue, isOption := splitOption(rest[i])
		switch {
		case isOption && strings.EqualFold(n, "format"):
			if !hasValue && i+1 < len(rest) {
				i++
				v = rest[i]
			}
			out = append(out, "--format="+v)
		case isOption && (strings.EqualFold(n, "help") || n == "?" || strings.EqualFold(n, "h")):
			helpOfHelp = true
		case !isOption:
			targets = append(targets, rest[i])
		}
	}
	if helpOfHelp {
		targets = []string{"help"}
	}
	return append(out, targets...)
}

// errNoCommand is a command line with no command: upstream prints the
// general help and exits 2.
var errNoCommand = errors.New("no command given")

// unrecognizedError is upstream's exit 1 for arguments a command does not take.
type unrecognizedError struct{ args []string }

func (u *unrecognizedError) Error() string {
	return "Unrecognized command line arguments: " + strings.Join(u.args, " ")
}

func hasSubcommands(n *kong.Node) bool {
	for _, c := range n.Children {
		if c.Type == kong.CommandNode {
			return true
		}
	}
	return false
}

// splitOption splits "--name=value", "-name:value", "/name" and friends. ok
// is false for an argument that is not shaped like an option.
func splitOption(a string) (name, value string, hasValue, ok bool) {
	var body string
	switch {
	case strings.HasPrefix(a, "--"):
		body = a[2:]
	case strings.HasPrefix(a, "-") || strings.HasPrefix(a, "/"):
		body = a[1:]
	default:
		return "", "", false, false
	}
	if body == "" {
		return "", "", false, false
	}
	if i := strings.IndexAny(body, "=:"); i >= 0 {
		return body[:i], body[i+1:], true, body[:i] != ""
	}
	return body, "", false, true
}

// findCommand matches a top-level command or alias, case-insensitively.
func findCommand(app *kong.Application, name string) *kong.Node {
	if name == "?" || name == "h" {
		name = "help"
	}
	return findChild(app.Node, name)
}

// missingValueError is an option given last with no value.
type missingValueError struct{ flag, command string }

func (m *missingValueError) Error() string {
	return "The option --" + m.flag + " needs a value, e.g. --" + m.flag + "=VALUE. Run `tentacle help " + m.command + "` to see the options."
}

// flagIndex maps every spelling of a node's options (and its parents',
// which kong accepts there too), lower-cased, to the option.
func flagIndex(n *kong.Node) map[string]*kong.Flag {
	flags := map[string]*kong.Flag{}
	for _, group := range n.AllFlags(false) {
		for _, f := range group {
			flags[strings.ToLower(f.Name)] = f
			for _, a := range f.Aliases {
				flags[strings.ToLower(a)] = f
			}
			if f.Short != 0 {
				flags[strings.ToLower(string(f.Short))] = f
			}
		}
	}
	return flags
}

// findChild matches a sub-command of n, case-insensitively.
func findChild(n *kong.Node, name string) *kong.Node {
	for _, c := range n.Children {
		if c.Type != kong.CommandNode {
			continue
		}
		if strings.EqualFold(c.Name, name) {
			return c
		}
		for _, al := range c.Aliases {
			if strings.EqualFold(al, name) {
				return c
			}
		}
	}
	return nil
}

// commandPath is "diag decode-message" for a nested command.
func commandPath(n *kong.Node) string {
	var parts []string
	for ; n != nil && n.Type == kong.CommandNode; n = n.Parent {
		parts = append([]string{n.Name}, parts...)
	}
	return strings.Join(parts, " ")
}

func boolToInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
