package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/tentacle-go/tentacle/agent/config"
	"github.com/tentacle-go/tentacle/agent/halibut"
)

// DiagCmd groups tools for people who debug the protocol.
type DiagCmd struct {
	DecodeMessage DecodeMessageCmd `cmd:"" name:"decode-message" help:"Print one raw Halibut message (compressed envelope and data streams) as indented JSON"`
	EncodeMessage EncodeMessageCmd `cmd:"" name:"encode-message" help:"Turn the JSON that decode-message prints back into a raw Halibut message"`
}

// DecodeMessageCmd reads a capture of one message.
type DecodeMessageCmd struct {
	Input  string `arg:"" optional:"" default:"-" help:"File holding one raw message, or - for standard input" placeholder:"FILE"`
	Output string `name:"output" short:"o" help:"Write the JSON to this file instead of standard output" placeholder:"PATH"`
}

func (c *DecodeMessageCmd) Run(e *Env) error {
	in, closeIn, err := openInput(e, c.Input)
	if err != nil {
		return err
	}
	defer closeIn()
	var out bytes.Buffer
	if err := halibut.MessageToJSON(&out, bufio.NewReader(in), halibut.DefaultLimits()); err != nil {
		return config.Userf("%s is not a valid Halibut message: %v", inputName(c.Input), err)
	}
	return writeOutput(e, c.Output, out.Bytes())
}

// EncodeMessageCmd is the reverse of decode-message.
type EncodeMessageCmd struct {
	Input  string `arg:"" optional:"" default:"-" help:"JSON as decode-message prints it, or - for standard input" placeholder:"FILE"`
	Output string `name:"output" short:"o" help:"Write the raw message to this file instead of standard output" placeholder:"PATH"`
}

func (c *EncodeMessageCmd) Run(e *Env) error {
	in, closeIn, err := openInput(e, c.Input)
	if err != nil {
		return err
	}
	defer closeIn()
	var out bytes.Buffer
	if err := halibut.MessageFromJSON(&out, in, halibut.DefaultLimits()); err != nil {
		return config.Userf("%s is not a message in decode-message's JSON form: %v", inputName(c.Input), err)
	}
	return writeOutput(e, c.Output, out.Bytes())
}

func inputName(path string) string {
	if path == "-" || path == "" {
		return "standard input"
	}
	return path
}

func openInput(e *Env, path string) (io.Reader, func(), error) {
	if path == "-" || path == "" {
		return e.Stdin, func() {}, nil
	}
	f, err := os.Open(absPath(e, path))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil, config.Userf("%s does not exist.", path)
		}
		return nil, nil, config.Userf("Cannot read %s: %v.", path, errors.Unwrap(err))
	}
	return f, func() { f.Close() }, nil
}

// writeOutput writes to stdout, or to a file atomically (no half-written
// file on error).
func writeOutput(e *Env, path string, data []byte) error {
	if path == "" {
		_, err := e.Stdout.Write(data)
		return err
	}
	p := absPath(e, path)
	if err := config.WriteFileAtomic(p, data, 0o644); err != nil {
		return config.Userf("Cannot write %s: %v.", p, errors.Unwrap(err))
	}
	fmt.Fprintf(e.Stderr, "Wrote %d bytes to %s.\n", len(data), p)
	return nil
}
