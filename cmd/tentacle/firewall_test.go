package main

import (
	"bytes"
	"fmt"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/alecthomas/kong"
)

// firewallOnlyCLI stands in for CLI until its Firewall field is added
// (cli.go is edited by one hand at a time); runFirewall then uses the real
// run, so these tests need no change.
type firewallOnlyCLI struct {
	Globals
	Firewall FirewallCmd `cmd:"" name:"firewall"`
}

func runFirewall(args []string, e *Env) int {
	if _, ok := reflect.TypeOf(CLI{}).FieldByName("Firewall"); ok {
		return run(args, e)
	}
	var cli firewallOnlyCLI
	parser, err := kong.New(&cli, kong.Name("tentacle"), kong.Writers(e.Stdout, e.Stderr), kong.NoDefaultHelp(),
		kong.Exit(func(int) {}), kong.Bind(e, &cli.Globals))
	if err != nil {
		panic(err)
	}
	args, err = normalizeArgs(parser.Model, args)
	if err != nil {
		e.Errorf("%v", err)
		return exitUserError
	}
	ctx, err := parser.Parse(args)
	if err != nil {
		e.Errorf("%s", upperFirst(err.Error()))
		return exitUserError
	}
	if err := ctx.Run(e); err != nil {
		return reportError(e, err)
	}
	return exitOK
}

// fw runs a firewall command in the harness, recording it for the golden
// file as harness.run does.
func (h *harness) fw(want int, args ...string) string {
	h.t.Helper()
	var out, errb bytes.Buffer
	e := &Env{Stdout: &out, Stderr: &errb, Getenv: func(k string) string { return h.env[k] }, Cwd: h.cwd}
	code := runFirewall(args, e)
	fmt.Fprintf(&h.log, "$ tentacle %s\n", strings.Join(args, " "))
	if out.Len() > 0 {
		fmt.Fprintf(&h.log, "%s\n", strings.TrimSuffix(out.String(), "\n"))
	}
	if errb.Len() > 0 {
		fmt.Fprintf(&h.log, "[stderr] %s\n", strings.ReplaceAll(strings.TrimSuffix(errb.String(), "\n"), "\n", "\n[stderr] "))
	}
	fmt.Fprintf(&h.log, "[exit %d]\n\n", code)
	if code != want {
		h.t.Fatalf("tentacle %v: exit %d, want %d\n%s%s", args, code, want, out.String(), errb.String())
	}
	if code == exitUserError && strings.Count(strings.TrimSpace(errb.String()), "\n") != 0 {
		h.t.Errorf("tentacle %v: the error is not one line: %q", args, errb.String())
	}
	return out.String()
}

// TestFirewallUserErrors: every mistake is one sentence and exit 1, found
// before any firewall, cloud or credential is touched.
func TestFirewallUserErrors(t *testing.T) {
	h := newHarness(t)
	h.fw(1, "firewall", "open", "--port", "70000", "--backend", "nftables")
	h.fw(1, "firewall", "open", "--port", "20010-20000", "--backend", "nftables")
	h.fw(1, "firewall", "open", "--port", "10933", "--source", "10.0.0.300/24", "--backend", "nftables")
	h.fw(1, "firewall", "open", "--port", "10933", "--source", "10.0.0.5/24", "--backend", "nftables")
	h.fw(1, "firewall", "open", "--port", "10933", "--name", `Tentacle "x"`, "--backend", "nftables")
	h.fw(1, "firewall", "open", "--port", "10933", "--backend", "pf")
	h.fw(1, "firewall", "aws", "open", "--port", "10933", "--security-group", "web-servers")
	h.fw(1, "firewall", "aws", "open", "--port", "10933", "--security-group", "sg-0123456789abcdef0", "--self")
	h.fw(1, "firewall", "azure", "open", "--port", "10933", "--resource-group", "rg", "--nsg", "web")
	h.fw(1, "firewall", "azure", "open", "--port", "10933", "--subscription", "s", "--resource-group", "rg", "--nsg", "web", "--priority", "99")
	h.fw(1, "firewall", "list", "--format", "yaml")

	// The default port comes from the instance; a polling one has none.
	cfg := filepath.Join(h.tmp, "etc", "Tentacle", "tentacle.config")
	h.must("create-instance", "--instance", "Tentacle", "--config", cfg)
	h.must("configure", "--instance", "Tentacle", "--noListen", "True")
	h.fw(1, "firewall", "open", "--instance", "Tentacle", "--backend", "nftables")
	h.golden("firewall-errors")
}
