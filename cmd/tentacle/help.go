package main

import (
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/alecthomas/kong"
)

// HelpCmd is upstream's help, with its text and JSON forms
// (tentacle-surface §1.6). `<command> --help` is routed here by args.go.
type HelpCmd struct {
	formatFlag
	Command []string `arg:"" optional:"" help:"The command to describe"`
}

// helpOption is upstream's JSON shape for an option.
type helpOption struct {
	Name        string
	Description string
}

var commonOptions = []helpOption{
	{"help", "Show detailed help for this command"},
}

func (c *HelpCmd) Run(e *Env, k *kong.Kong) error {
	asJSON, err := c.json()
	if err != nil {
		return err
	}
	app := k.Model
	if len(c.Command) == 0 {
		if asJSON {
			type cmd struct {
				Name        string
				Description string
				Aliases     []string
			}
			var out struct{ Commands []cmd }
			for _, n := range visibleCommands(app) {
				out.Commands = append(out.Commands, cmd{n.Name, n.Help, aliases(n)})
			}
			// Sorted by name, as upstream prints them.
			sort.Slice(out.Commands, func(i, j int) bool { return out.Commands[i].Name < out.Commands[j].Name })
			return writeJSON(e, out)
		}
		printGeneralHelp(e.Stdout, app)
		return nil
	}
	n := findCommand(app, strings.ToLower(strings.TrimLeft(c.Command[0], "-/")))
	for _, sub := range c.Command[1:] {
		if n == nil {
			break
		}
		n = findChild(n, sub)
	}
	if n == nil {
		return &exitError{code: exitUserError, msg: fmt.Sprintf("Command '%s' is not supported. See 'tentacle help'.", strings.Join(c.Command, " "))}
	}
	if asJSON {
		out := struct {
			Name          string
			Description   string
			Aliases       []string
			Options       []helpOption
			CommonOptions []helpOption
		}{n.Name, n.Help, aliases(n), []helpOption{}, commonOptions}
		for _, f := range commandFlags(n) {
			out.Options = append(out.Options, helpOption{f.Name, f.Help})
		}
		return writeJSON(e, out)
	}
	printCommandHelp(e.Stdout, n)
	return nil
}

func aliases(n *kong.Node) []string {
	if n.Aliases == nil {
		return []string{}
	}
	return n.Aliases
}

func visibleCommands(app *kong.Application) []*kong.Node {
	var out []*kong.Node
	for _, n := range app.Children {
		if !n.Hidden {
			out = append(out, n)
		}
	}
	return out
}

// commandFlags are a command's own options, without the hidden global ones.
func commandFlags(n *kong.Node) []*kong.Flag {
	var out []*kong.Flag
	for _, f := range n.Flags {
		if !f.Hidden {
			out = append(out, f)
		}
	}
	return out
}

// programName is how help spells the program, as upstream's Linux build
// (its binary is Tentacle): "Usage: Tentacle <command> [<options>]".
const programName = "Tentacle"

func printGeneralHelp(w io.Writer, app *kong.Application) {
	fmt.Fprintf(w, "Usage: %s <command> [<options>]\n", programName)
	fmt.Fprintln(w)
	fmt.Fprintln(w, app.Help)
	// Commands by group, groups in order of first appearance.
	var groups []string
	byGroup := map[string][]*kong.Node{}
	for _, n := range visibleCommands(app) {
		g := ""
		if n.Group != nil {
			g = n.Group.Title
		}
		if _, seen := byGroup[g]; !seen {
			groups = append(groups, g)
		}
		byGroup[g] = append(byGroup[g], n)
	}
	for _, g := range groups {
		if g != "" {
			fmt.Fprintf(w, "\n%s:\n", g)
		}
		for _, n := range byGroup[g] {
			name := n.Name
			if len(n.Aliases) > 0 {
				name += " (" + strings.Join(n.Aliases, ", ") + ")"
			}
			fmt.Fprintf(w, "  %-30s %s\n", name, n.Help)
		}
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Or use <command> --help for more details. Options are case-insensitive and")
	fmt.Fprintln(w, "may be written --name=value, --name value, -name:value or /name=value.")
}

// printCommandHelp is upstream's layout for one command, to the byte: its
// integration tests compare `version --help` and `help --help` exactly, and
// every `<command> --help` must start "Usage: Tentacle <command> [<options>]".
// Options are listed as upstream's option parser lists them (optionColumn).
func printCommandHelp(w io.Writer, n *kong.Node) {
	fmt.Fprintf(w, "Usage: %s %s [<options>]\n\n", programName, commandPath(n))
	if subs := subcommands(n); len(subs) > 0 {
		fmt.Fprintln(w, "Where [<options>] starts with one of these commands: ")
		fmt.Fprintln(w)
		for _, c := range subs {
			writeHelpEntry(w, "      "+c.Name, c.Help)
		}
		fmt.Fprintf(w, "\nRun '%s help %s <command>' for a command's options.\n", programName, commandPath(n))
		return
	}
	fmt.Fprintln(w, "Where [<options>] is any of: ")
	fmt.Fprintln(w)
	for _, f := range commandFlags(n) {
		writeHelpEntry(w, flagPrototype(f), f.Help)
	}
	// help's argument is the command it describes, said by every hint.
	if n.Name != "help" && len(n.Positional) > 0 {
		fmt.Fprintln(w)
		fmt.Fprintln(w, "And the arguments: ")
		fmt.Fprintln(w)
		for _, a := range n.Positional {
			writeHelpEntry(w, "      <"+a.Name+">", a.Help)
		}
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Or one of the common options: ")
	fmt.Fprintln(w)
	for _, o := range commonOptions {
		writeHelpEntry(w, "      --"+o.Name, o.Description)
	}
}

// Upstream's option table: the prototype in a 29-column field (or on its
// own line when longer), the description wrapped to 49 columns, continuation
// lines indented by 31.
const (
	optionColumn     = 29
	descriptionWidth = 80 - optionColumn - 2
)

func writeHelpEntry(w io.Writer, prototype, description string) {
	if len(prototype) < optionColumn {
		fmt.Fprintf(w, "%-*s", optionColumn, prototype)
	} else {
		fmt.Fprintf(w, "%s\n%s", prototype, strings.Repeat(" ", optionColumn))
	}
	for i, line := range wrapDescription(description, descriptionWidth) {
		if i > 0 {
			fmt.Fprint(w, strings.Repeat(" ", optionColumn+2))
		}
		fmt.Fprintln(w, line)
	}
}

// flagPrototype is "      --name, --alias=VALUE", or "  -s, --name=VALUE"
// with a one-letter name, as upstream's option parser writes it.
func flagPrototype(f *kong.Flag) string {
	names := []string{f.Name}
	if f.Short != 0 {
		names = append([]string{string(f.Short)}, names...)
	}
	names = append(names, f.Aliases...)
	var b strings.Builder
	for i, name := range names {
		switch {
		case i == 0 && len(name) == 1:
			b.WriteString("  -")
		case i == 0:
			b.WriteString("      --")
		case len(name) == 1:
			b.WriteString(", -")
		default:
			b.WriteString(", --")
		}
		b.WriteString(name)
	}
	if !f.IsBool() && !f.IsCounter() {
		b.WriteString("=VALUE")
	}
	return b.String()
}

// wrapDescription breaks s into lines of at most width characters the way
// upstream's option parser does, so long descriptions look the same: a
// line ends after the last space, tab or hyphen that fits (the break
// character stays on the line), or before the last ',', '.' or ';' that
// fits, with a hyphen added; a word longer than a line is split with a
// hyphen; a newline always ends a line.
func wrapDescription(s string, width int) []string {
	if s == "" {
		return []string{""}
	}
	var lines []string
	start := 0
	for {
		end := min(start+width, len(s))
		brk := -1
		for i := start; i < end; i++ {
			if s[i] == '\n' {
				brk, end = i, i
				break
			}
			if strings.IndexByte(" \t\v-,.;", s[i]) >= 0 {
				brk = i
			}
		}
		if brk >= 0 && end < len(s) {
			end = brk
		}
		hyphen := false
		if end < len(s) {
			switch c := s[end]; {
			case c == '-' || c == ' ' || c == '\t' || c == '\v':
				end++
			case c != '\n':
				hyphen = true
				end--
			}
		}
		if end <= start { // a ',' first on a line: never go backwards
			end, hyphen = min(start+width, len(s)), false
		}
		line := s[start:end]
		if hyphen {
			line += "-"
		}
		lines = append(lines, line)
		start = end
		if start < len(s) && s[start] == '\n' {
			start++
		}
		if end >= len(s) {
			return lines
		}
	}
}

func subcommands(n *kong.Node) []*kong.Node {
	var out []*kong.Node
	for _, c := range n.Children {
		if c.Type == kong.CommandNode && !c.Hidden {
			out = append(out, c)
		}
	}
	return out
}
