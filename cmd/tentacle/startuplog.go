package main

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/alecthomas/kong"

	"github.com/tentacle-go/tentacle/agent"
	"github.com/tentacle-go/tentacle/agent/config"
)

// instanceLogPath is an instance's log file, which the agent and every
// command write to.
func instanceLogPath(s *config.Settings) string {
	return filepath.Join(s.Home(), "Logs", "OctopusTentacle.txt")
}

// openInstanceLog opens an instance's log file, rolled as the agent rolls it.
func openInstanceLog(s *config.Settings) *agent.RotatingFile {
	return &agent.RotatingFile{Path: instanceLogPath(s), MaxBytes: 10 << 20, Keep: 7}
}

// instanceCommand is a command bound to an instance (it embeds InstanceFlags).
type instanceCommand interface {
	selection(e *Env) (config.Selection, error)
}

// logStartup writes upstream's start-up diagnostics (version, environment,
// the command line with secrets masked) to the instance's log only, never to
// the console, when the command works on an instance that exists. Anything
// that goes wrong here is the command's to report, so it is ignored.
func logStartup(e *Env, ctx *kong.Context, args []string) {
	node := ctx.Selected()
	if node == nil || !node.Target.CanAddr() {
		return
	}
	cmd, ok := node.Target.Addr().Interface().(instanceCommand)
	if !ok {
		return
	}
	sel, err := cmd.selection(e)
	if err != nil {
		return
	}
	s, err := config.LoadSettings(sel.ConfigPath)
	if err != nil {
		return
	}
	exe, _ := os.Executable()
	line := append([]string{exe}, maskSensitive(ctx, args)...)
	f := openInstanceLog(s)
	defer f.Close()
	log := slog.New(agent.NewLogHandler(&agent.LogHandlerOptions{File: f}))
	for _, l := range agent.StartupDiagnostics(programName, buildVersion(), sel.Name, commandPath(node), e.Cwd, line) {
		log.Log(context.Background(), slog.LevelInfo, l)
	}
}

// maskSensitive replaces the values of options tagged sensitive (passwords,
// API keys, tokens) wherever they occur in args, as upstream masks them in
// its log.
func maskSensitive(ctx *kong.Context, args []string) []string {
	var secrets []string
	for _, f := range ctx.Flags() {
		if f.Tag == nil || !f.Tag.Has("sensitive") {
			continue
		}
		if v, ok := ctx.FlagValue(f).(string); ok && v != "" {
			secrets = append(secrets, v)
		}
		if v, ok := ctx.FlagValue(f).(*string); ok && v != nil && *v != "" {
			secrets = append(secrets, *v)
		}
	}
	out := make([]string, len(args))
	for i, a := range args {
		for _, s := range secrets {
			a = strings.ReplaceAll(a, s, "********")
		}
		out[i] = a
	}
	return out
}
