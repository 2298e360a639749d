package main

import (
	"bufio"
	"fmt"
	"strings"
)

// terminalPrompt asks yes/no questions of the person at the terminal, on
// stderr so that stdout stays what a command prints for scripts.
type terminalPrompt struct{ e *Env }

// CanPrompt is false when standard input is not a terminal (cloud-init, a
// pipeline, CI): there is nobody to answer, as upstream's console prompt.
func (p terminalPrompt) CanPrompt() bool { return p.e.StdinTTY && p.e.Stdin != nil }

func (p terminalPrompt) Confirm(context, question string) (bool, error) {
	fmt.Fprintf(p.e.Stderr, "\n%s\n%s [y/N]: ", context, question)
	line, err := bufio.NewReader(p.e.Stdin).ReadString('\n')
	if err != nil && line == "" {
		return false, err
	}
	switch strings.ToLower(strings.TrimSpace(line)) {
	case "y", "yes":
		return true, nil
	}
	return false, nil
}
