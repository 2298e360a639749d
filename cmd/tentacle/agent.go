package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/tentacle-go/tentacle/agent"
	"github.com/tentacle-go/tentacle/agent/config"
	"github.com/tentacle-go/tentacle/agent/halibut"
	"github.com/tentacle-go/tentacle/agent/service"
)

// AgentCmd is upstream's agent (alias run): the long-running Tentacle.
type AgentCmd struct {
	InstanceFlags
	Wait int `name:"wait" help:"Milliseconds to wait before starting (applies from 20 ms)" placeholder:"MS"`
	// WindowsService is in the command line `service --install` gives the
	// SCM (service.ServiceFlag).
	WindowsService bool `name:"windows-service" hidden:"" help:"Started by the Windows Service Control Manager (set in the installed service's command line)"`
}

func (c *AgentCmd) Run(e *Env, g *Globals) error {
	if c.Wait >= 20 {
		time.Sleep(time.Duration(c.Wait) * time.Millisecond)
	}
	sel, err := c.selection(e)
	if err != nil {
		return err
	}
	// Like upstream, the agent makes its certificate on first start.
	if _, err := config.Update(sel.ConfigPath, func(s *config.Settings) error {
		if s.Thumbprint() != "" {
			if _, ok := s.Get(config.KeyCertificate); ok {
				return nil
			}
		}
		cert, err := config.GenerateCertificate()
		if err != nil {
			return err
		}
		_, err = s.SetCertificate(cert, e.MachineKey())
		return err
	}); err != nil {
		return err
	}
	s, err := config.LoadSettings(sel.ConfigPath)
	if err != nil {
		return err
	}
	exe, _ := os.Executable()
	overridden, dotEnv, err := config.ApplyEnvironment(s, e.Getenv, config.DotEnvPath(exe))
	if err != nil {
		return err
	}
	cert, err := s.Certificate(e.MachineKey())
	if err != nil {
		return err
	}
	logFile := openInstanceLog(s)
	defer logFile.Close()
	// As upstream: the log on the console too (Info and Warn on stdout,
	// errors on stderr), so containers and foreground runs show it;
	// --noconsolelogging keeps stdout quiet, errors still reach stderr.
	logOpts := &agent.LogHandlerOptions{File: logFile, Stderr: e.Stderr, Level: logLevel(e.Getenv("OCTOPUS__TENTACLE__LOGLEVEL"))}
	if !g.NoConsoleLogging {
		logOpts.Stdout = e.Stdout
	}
	counter := agent.NewLogCounter(agent.NewLogHandler(logOpts))
	logger := slog.New(counter)
	if dotEnv != "" {
		logger.Info("read settings from "+dotEnv, "file", dotEnv)
	}
	if len(overridden) > 0 {
		logger.Info("settings taken from the environment ("+config.ContributeEnvironmentVariable+")", "keys", overridden)
	}
	a, err := agent.New(agent.Options{
		InstanceName: sel.Name,
		Settings:     s,
		Certificate:  cert,
		MachineKey:   e.MachineKey(),
		Logger:       logger,
		Limits:       halibut.DefaultLimits(),
		Getenv:       e.Getenv,
		Version:      currentVersion().InformationalVersion,
		Executable:   exe,
		LogCounter:   counter,
		// The machine key and the instance index are checked with the configuration.
		MachineConfigRoot: e.Root(),
	})
	if err != nil {
		return err
	}
	// Under the Windows Service Control Manager the SCM, not a signal, stops
	// the agent; elsewhere this does nothing. --console (upstream's) keeps
	// the agent in the foreground whatever started it.
	if !g.Console {
		handled, err := service.RunAsWindowsServiceIfNeeded(service.WindowsServiceName(sel.Name), c.WindowsService, a.Run)
		if handled {
			return err
		}
		if err != nil {
			e.Warnf("%v", err)
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	logger.Info("starting", "version", currentVersion().InformationalVersion, "instance", sel.Name, "config", sel.ConfigPath, "mode", a.Describe())
	if e.StderrTTY && !g.NonInteractive {
		fmt.Fprintf(e.Stderr, "Tentacle is running (%s). Press Ctrl+C to stop; running scripts keep running.\n", a.Describe())
	}
	return a.Run(ctx)
}

func logLevel(s string) slog.Level {
	switch s {
	case "Trace", "Verbose", "Debug", "trace", "verbose", "debug":
		return slog.LevelDebug
	case "Warn", "warn", "Warning", "warning":
		return slog.LevelWarn
	case "Error", "error", "Fatal", "fatal":
		return slog.LevelError
	}
	return slog.LevelInfo
}
