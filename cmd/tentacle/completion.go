package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/alecthomas/kong"

	"github.com/tentacle-go/tentacle/agent/config"
)

// CompletionCmd prints a completion script generated from the command model,
// so it never drifts from the real options.
type CompletionCmd struct {
	Shell string `arg:"" enum:"bash,zsh,fish" help:"bash, zsh or fish"`
}

func (c *CompletionCmd) Run(e *Env, k *kong.Kong) error {
	switch c.Shell {
	case "bash":
		writeBashCompletion(e.Stdout, k.Model)
	case "zsh":
		writeZshCompletion(e.Stdout, k.Model)
	case "fish":
		writeFishCompletion(e.Stdout, k.Model)
	default:
		return config.Userf("Unknown shell %q: use bash, zsh or fish.", c.Shell)
	}
	return nil
}

func commandNames(app *kong.Application) []string {
	var out []string
	for _, n := range visibleCommands(app) {
		out = append(out, n.Name)
	}
	return out
}

func writeBashCompletion(w io.Writer, app *kong.Application) {
	fmt.Fprintln(w, "# bash completion for tentacle; load with: source <(tentacle completion bash)")
	fmt.Fprintln(w, "_tentacle() {")
	fmt.Fprintln(w, `  local cur="${COMP_WORDS[COMP_CWORD]}" opts=""`)
	fmt.Fprintln(w, `  if [ "$COMP_CWORD" -eq 1 ]; then`)
	fmt.Fprintf(w, "    COMPREPLY=($(compgen -W %q -- \"$cur\"))\n", strings.Join(commandNames(app), " "))
	fmt.Fprintln(w, "    return")
	fmt.Fprintln(w, "  fi")
	fmt.Fprintln(w, `  case "${COMP_WORDS[1]}" in`)
	for _, n := range visibleCommands(app) {
		var opts []string
		for _, f := range commandFlags(n) {
			opts = append(opts, "--"+f.Name)
		}
		if n.Name == "help" {
			opts = append(opts, commandNames(app)...)
		}
		if n.Name == "completion" {
			opts = append(opts, "bash", "zsh", "fish")
		}
		fmt.Fprintf(w, "    %s) opts=%q ;;\n", n.Name, strings.Join(opts, " "))
	}
	fmt.Fprintln(w, "  esac")
	fmt.Fprintln(w, `  COMPREPLY=($(compgen -W "$opts" -- "$cur"))`)
	fmt.Fprintln(w, "}")
	fmt.Fprintln(w, "complete -o default -F _tentacle tentacle")
}

// zshQuote makes a description safe inside a single-quoted _arguments spec.
func zshQuote(s string) string {
	return strings.NewReplacer("'", "", "[", "(", "]", ")", ":", " -").Replace(s)
}

func writeZshCompletion(w io.Writer, app *kong.Application) {
	fmt.Fprintln(w, "#compdef tentacle")
	fmt.Fprintln(w, "# zsh completion for tentacle; load with: source <(tentacle completion zsh)")
	fmt.Fprintln(w, "_tentacle() {")
	fmt.Fprintln(w, "  local -a commands")
	fmt.Fprintln(w, "  commands=(")
	for _, n := range visibleCommands(app) {
		fmt.Fprintf(w, "    '%s:%s'\n", n.Name, zshQuote(n.Help))
	}
	fmt.Fprintln(w, "  )")
	fmt.Fprintln(w, "  if (( CURRENT == 2 )); then")
	fmt.Fprintln(w, "    _describe 'command' commands")
	fmt.Fprintln(w, "    return")
	fmt.Fprintln(w, "  fi")
	fmt.Fprintln(w, "  case $words[2] in")
	for _, n := range visibleCommands(app) {
		fmt.Fprintf(w, "    %s)\n      _arguments", n.Name)
		for _, f := range commandFlags(n) {
			spec := "--" + f.Name
			if !f.IsBool() {
				spec += "=[" + zshQuote(f.Help) + "]:" + strings.ToLower(f.PlaceHolder) + ":"
				if strings.Contains(f.PlaceHolder, "PATH") || strings.Contains(f.PlaceHolder, "DIR") {
					spec += "_files"
				}
			} else {
				spec += "[" + zshQuote(f.Help) + "]"
			}
			fmt.Fprintf(w, " \\\n        '%s'", spec)
		}
		if n.Name == "help" {
			fmt.Fprint(w, " \\\n        '1:command:("+strings.Join(commandNames(app), " ")+")'")
		}
		if n.Name == "completion" {
			fmt.Fprint(w, " \\\n        '1:shell:(bash zsh fish)'")
		}
		fmt.Fprintln(w, "\n      ;;")
	}
	fmt.Fprintln(w, "  esac")
	fmt.Fprintln(w, "}")
	fmt.Fprintln(w, `if [ "$funcstack[1]" = "_tentacle" ]; then _tentacle "$@"; else compdef _tentacle tentacle; fi`)
}

func fishQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `\'`) + "'" }

func writeFishCompletion(w io.Writer, app *kong.Application) {
	fmt.Fprintln(w, "# fish completion for tentacle; load with: tentacle completion fish | source")
	fmt.Fprintln(w, "complete -c tentacle -f")
	for _, n := range visibleCommands(app) {
		fmt.Fprintf(w, "complete -c tentacle -n __fish_use_subcommand -a %s -d %s\n", n.Name, fishQuote(n.Help))
	}
	for _, n := range visibleCommands(app) {
		for _, f := range commandFlags(n) {
			line := fmt.Sprintf("complete -c tentacle -n '__fish_seen_subcommand_from %s' -l %s", n.Name, f.Name)
			if f.Short != 0 {
				line += fmt.Sprintf(" -s %c", f.Short)
			}
			if !f.IsBool() {
				line += " -r"
				if strings.Contains(f.PlaceHolder, "PATH") || strings.Contains(f.PlaceHolder, "DIR") {
					line += " -F"
				}
			}
			fmt.Fprintln(w, line+" -d "+fishQuote(f.Help))
		}
	}
	fmt.Fprintf(w, "complete -c tentacle -n '__fish_seen_subcommand_from help' -a %s\n", fishQuote(strings.Join(commandNames(app), " ")))
	fmt.Fprintln(w, "complete -c tentacle -n '__fish_seen_subcommand_from completion' -a 'bash zsh fish'")
}
