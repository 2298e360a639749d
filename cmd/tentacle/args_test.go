package main

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestNormalizeArgsAcceptsUpstreamSpellings(t *testing.T) {
	var cli CLI
	parser, err := newParser(&cli, &Env{Stdout: &bytes.Buffer{}, Stderr: &bytes.Buffer{}})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		in, want []string
	}{
		{[]string{"--version"}, []string{"version"}},
		{[]string{"/?"}, []string{"help"}},
		{[]string{"-h"}, []string{"help"}},
		{[]string{"Create-Instance", "--INSTANCE", "A"}, []string{"create-instance", "--instance=A"}},
		{[]string{"configure", "/instance:A", "-port=1", "--NoListen", "True"}, []string{"configure", "--instance=A", "--port=1", "--noListen=True"}},
		{[]string{"configure", "--homedir", "/x"}, []string{"configure", "--home=/x"}},
		{[]string{"configure", "--listen-ip=::1"}, []string{"configure", "--listenIpAddress=::1"}},
		{[]string{"configure", "--config", "C:\\x.config"}, []string{"configure", "--config=C:\\x.config"}},
		// A value that starts with a dash is still the value.
		{[]string{"proxy", "--proxyPassword", "-secret-"}, []string{"proxy", "--proxyPassword=-secret-"}},
		{[]string{"configure", "--trust", "A", "--trust=B"}, []string{"configure", "--trust=A", "--trust=B"}},
		{[]string{"new-certificate", "-b"}, []string{"new-certificate", "--if-blank"}},
		{[]string{"import-certificate", "-f", "x.pfx", "--pw", "p"}, []string{"import-certificate", "--from-file=x.pfx", "--pfx-password=p"}},
		{[]string{"configure", "--help"}, []string{"help", "configure"}},
		{[]string{"configure", "-?"}, []string{"help", "configure"}},
		{[]string{"help", "configure", "--format", "json"}, []string{"help", "--format=json", "configure"}},
		{[]string{"version", "--help", "--format=json"}, []string{"help", "--format=json", "version"}},
		{[]string{"version", "--format", "json", "--help"}, []string{"help", "--format=json", "version"}},
		{[]string{"show-thumbprint", "--help", "--format=json"}, []string{"help", "--format=json", "show-thumbprint"}},
		{[]string{"help", "--help"}, []string{"help", "help"}},
		{[]string{"help", "--format=json", "--help"}, []string{"help", "--format=json", "help"}},
		{[]string{"configure", "--", "--port"}, []string{"configure", "--", "--port"}},
	} {
		got, err := normalizeArgs(parser.Model, tc.in)
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%q -> %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
	if _, err := normalizeArgs(parser.Model, nil); !errors.Is(err, errNoCommand) {
		t.Errorf("no arguments: %v, want errNoCommand (general help, exit 2)", err)
	}
	for _, tc := range []struct {
		in   []string
		want string
	}{
		{[]string{"version", "--unknown=argument"}, "Unrecognized command line arguments: --unknown=argument"},
		{[]string{"configure", "--unknown", "1", "-x"}, "Unrecognized command line arguments: --unknown 1 -x"},
		{[]string{"list-instances", "extra"}, "Unrecognized command line arguments: extra"},
		{[]string{"show-thumbprint", "--format=json", "--help-me"}, "Unrecognized command line arguments: --help-me"},
		{[]string{"configure", "--format", "json"}, "Unrecognized command line arguments: --format json"},
	} {
		var unrecognized *unrecognizedError
		if _, err := normalizeArgs(parser.Model, tc.in); !errors.As(err, &unrecognized) || err.Error() != tc.want {
			t.Errorf("%q: %v, want %q", tc.in, err, tc.want)
		}
	}
	var unknown *unknownCommandError
	if _, err := normalizeArgs(parser.Model, []string{"frob"}); !errors.As(err, &unknown) {
		t.Errorf("unknown command: %v", err)
	}
	if _, err := normalizeArgs(parser.Model, []string{"configure", "--port"}); err == nil || !strings.Contains(err.Error(), "needs a value") {
		t.Errorf("missing value: %v", err)
	}
}

func TestColourOnlyOnATerminalAndNeverWithNoColor(t *testing.T) {
	for _, tc := range []struct {
		tty     bool
		noColor string
		want    bool
	}{{false, "", false}, {true, "1", false}, {true, "", true}} {
		var errb bytes.Buffer
		e := &Env{Stdout: &bytes.Buffer{}, Stderr: &errb, StderrTTY: tc.tty, Getenv: func(k string) string {
			if k == "NO_COLOR" {
				return tc.noColor
			}
			return ""
		}}
		e.Errorf("boom")
		if got := strings.Contains(errb.String(), "\x1b["); got != tc.want {
			t.Errorf("tty=%v NO_COLOR=%q: colour=%v, want %v (%q)", tc.tty, tc.noColor, got, tc.want, errb.String())
		}
	}
}
