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

func printGeneralHelp(w io.Writer, app *kong.Application) {
	fmt.Fprintln(w, "Usage: tentacle <command> [<options>]")
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

func printCommandHelp(w io.Writer, n *kong.Node) {
	if subs := subcommands(n); len(subs) > 0 {
		fmt.Fprintf(w, "Usage: tentacle %s <command> [<options>]\n\n%s\n\nCommands:\n", commandPath(n), n.Help)
		for _, c := range subs {
			fmt.Fprintf(w, "  %-34s %s\n", c.Name, c.Help)
		}
		fmt.Fprintf(w, "\nRun `tentacle help %s <command>` for a command's options.\n", commandPath(n))
		return
	}
	fmt.Fprintf(w, "Usage: tentacle %s [<options>]\n\n", commandPath(n))
	fmt.Fprintln(w, n.Help)
	if len(n.Aliases) > 0 {
		fmt.Fprintf(w, "Aliases: %s\n", strings.Join(n.Aliases, ", "))
	}
	if fl := commandFlags(n); len(fl) > 0 {
		fmt.Fprintln(w, "\nWhere [<options>] is any of:")
		fmt.Fprintln(w)
		for _, f := range fl {
			syn := flagSynopsis(f)
			if len(syn) > 34 {
				fmt.Fprintf(w, "  %s\n  %-34s %s\n", syn, "", f.Help)
				continue
			}
			fmt.Fprintf(w, "  %-34s %s\n", syn, f.Help)
		}
	}
	for _, a := range n.Positional {
		fmt.Fprintf(w, "\nArgument:\n  %-34s %s\n", "<"+a.Name+">", a.Help)
	}
	fmt.Fprintln(w, "\nOr one of the common options:")
	fmt.Fprintln(w)
	for _, o := range commonOptions {
		fmt.Fprintf(w, "  %-34s %s\n", "--"+o.Name, o.Description)
	}
}

func flagSynopsis(f *kong.Flag) string {
	s := "--" + f.Name
	if f.Short != 0 {
		s = fmt.Sprintf("-%c, %s", f.Short, s)
	}
	for _, a := range f.Aliases {
		s += ", --" + a
	}
	if !f.IsBool() {
		ph := f.PlaceHolder
		if ph == "" {
			ph = "VALUE"
		}
		s += "=" + ph
	}
	if f.IsSlice() {
		s += " ..."
	}
	return s
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
