package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestTerminalPrompt(t *testing.T) {
	for _, c := range []struct {
		tty   bool
		input string
		can   bool
		yes   bool
	}{
		{tty: false, input: "y\n", can: false},
		{tty: true, input: "y\n", can: true, yes: true},
		{tty: true, input: " YES \r\n", can: true, yes: true},
		{tty: true, input: "\n", can: true, yes: false},
		{tty: true, input: "n\n", can: true, yes: false},
		{tty: true, input: "yep\n", can: true, yes: false},
	} {
		var errb bytes.Buffer
		p := terminalPrompt{&Env{Stdin: strings.NewReader(c.input), Stderr: &errb, StdinTTY: c.tty}}
		if p.CanPrompt() != c.can {
			t.Errorf("tty=%v: CanPrompt %v", c.tty, !c.can)
			continue
		}
		if !c.can {
			continue
		}
		yes, err := p.Confirm("context", "Trust it?")
		if err != nil || yes != c.yes {
			t.Errorf("%q: %v %v, want %v", c.input, yes, err, c.yes)
		}
		if !strings.Contains(errb.String(), "Trust it? [y/N]: ") {
			t.Errorf("question not asked on stderr: %q", errb.String())
		}
	}
	// End of input without an answer is an error, not a yes.
	p := terminalPrompt{&Env{Stdin: strings.NewReader(""), Stderr: &bytes.Buffer{}, StdinTTY: true}}
	if yes, err := p.Confirm("c", "q"); yes || err == nil {
		t.Errorf("EOF: %v %v", yes, err)
	}
}
