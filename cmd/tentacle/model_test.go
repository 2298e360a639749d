package main

import (
	"bytes"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/alecthomas/kong"
)

// TestCommandModelMatchesWholeModel: a command built alone (parseModel's
// fast path) must have exactly the options, sub-commands and help it has in
// the whole model, or the same command line would mean different things.
func TestCommandModelMatchesWholeModel(t *testing.T) {
	e := &Env{Stdout: &bytes.Buffer{}, Stderr: &bytes.Buffer{}, Getenv: func(string) string { return "" }}
	var whole CLI
	full, err := newParser(&whole, e)
	if err != nil {
		t.Fatal(err)
	}
	ct := reflect.TypeFor[CLI]()
	built := 0
	for i := range ct.NumField() {
		f := ct.Field(i)
		if _, ok := f.Tag.Lookup("cmd"); !ok {
			continue
		}
		name := f.Tag.Get("name")
		var cli CLI
		parser, args, err := parseModel(&cli, e, []string{strings.ToUpper(name)})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if args[0] != name {
			t.Errorf("%s: normalised to %q", name, args)
		}
		if f.Name == "Help" || f.Name == "Completion" {
			if len(parser.Model.Children) != len(full.Model.Children) {
				t.Errorf("%s must be given the whole model, got %d commands", name, len(parser.Model.Children))
			}
			continue
		}
		if len(parser.Model.Children) != 1 {
			t.Errorf("%s: built %d commands, want only it", name, len(parser.Model.Children))
			continue
		}
		built++
		want := dumpNode(findChild(full.Model.Node, name))
		got := dumpNode(parser.Model.Children[0])
		if got != want {
			t.Errorf("%s built alone differs from the whole model:\n--- alone\n%s\n--- whole\n%s", name, got, want)
		}
		if g, w := dumpFlags(parser.Model.Node), dumpFlags(full.Model.Node); g != w {
			t.Errorf("%s: global options differ:\n%s\nvs\n%s", name, g, w)
		}
	}
	if built < 20 {
		t.Fatalf("only %d commands were compared", built)
	}
}

// TestHelpInsideACommandUsesTheWholeModel: --help anywhere still renders the
// same text as `help <command>`.
func TestHelpInsideACommandUsesTheWholeModel(t *testing.T) {
	for _, args := range [][]string{{"configure", "--help"}, {"remote", "exec", "/?"}, {"firewall", "aws", "open", "-h"}} {
		a := runCLI(t, args...)
		b := runCLI(t, append([]string{"help"}, args[:len(args)-1]...)...)
		if a != b || !strings.Contains(a, "Usage: Tentacle "+strings.Join(args[:len(args)-1], " ")) {
			t.Errorf("%q printed:\n%s\nwant:\n%s", args, a, b)
		}
	}
}

func runCLI(t *testing.T, args ...string) string {
	t.Helper()
	var out bytes.Buffer
	e := &Env{Stdout: &out, Stderr: &out, Getenv: func(string) string { return "" }, Cwd: t.TempDir()}
	if code := run(args, e); code != 0 {
		t.Fatalf("%q exited %d: %s", args, code, out.String())
	}
	return out.String()
}

func dumpNode(n *kong.Node) string {
	var b strings.Builder
	var walk func(n *kong.Node)
	walk = func(n *kong.Node) {
		fmt.Fprintf(&b, "%s aliases=%q help=%q detail=%q group=%v hidden=%v\n", commandPath(n), n.Aliases, n.Help, n.Detail, n.Group, n.Hidden)
		b.WriteString(dumpFlags(n))
		for _, p := range n.Positional {
			fmt.Fprintf(&b, "  arg %s required=%v default=%q help=%q\n", p.Name, p.Required, p.Default, p.Help)
		}
		for _, c := range n.Children {
			walk(c)
		}
	}
	walk(n)
	return b.String()
}

func dumpFlags(n *kong.Node) string {
	var b strings.Builder
	for _, f := range n.Flags {
		fmt.Fprintf(&b, "  --%s aliases=%q short=%q default=%q help=%q placeholder=%q required=%v hidden=%v enum=%q env=%q\n",
			f.Name, f.Aliases, f.Short, f.Default, f.Help, f.PlaceHolder, f.Required, f.Hidden, f.Enum, f.Envs)
	}
	return b.String()
}
