package main

import (
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
//   - --help, -h, -? and /? anywhere become `help <command>`.
//
// Anything it does not recognise is passed through for kong to reject with a
// clear message.
func normalizeArgs(app *kong.Application, args []string) ([]string, error) {
	if len(args) == 0 {
		return []string{"help"}, nil
	}
	name := strings.ToLower(strings.TrimLeft(args[0], "-/"))
	cmd := findCommand(app, name)
	if cmd == nil {
		return nil, &unknownCommandError{name: args[0]}
	}
	rest := args[1:]
	if cmd.Name == "help" {
		// help takes a command name and --format; other arguments are ignored,
		// as upstream.
		out := []string{"help"}
		var targets []string
		for i := 0; i < len(rest); i++ {
			n, v, hasValue, isOption := splitOption(rest[i])
			switch {
			case isOption && strings.EqualFold(n, "format"):
				if !hasValue && i+1 < len(rest) {
					i++
					v = rest[i]
				}
				out = append(out, "--format="+v)
			case !isOption:
				targets = append(targets, rest[i])
			}
		}
		out = append(out, targets...)
		return out, nil
	}
	flags := flagIndex(cmd)
	out := []string{cmd.Name}
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
			out = append(out, a)
			continue
		}
		ln := strings.ToLower(n)
		f, known := flags[ln]
		if ln == "help" || (ln == "h" || ln == "?") && !known {
			return append([]string{"help"}, strings.Fields(commandPath(cmd))...), nil
		}
		if !known {
			// kong reports an unknown option; a /path stays positional.
			out = append(out, a)
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
				return nil, &missingValueError{flag: f.Name, command: cmd.Name}
			}
			i++
			v = rest[i]
		}
		out = append(out, "--"+f.Name+"="+v)
	}
	return out, nil
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
