package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/term"

	"github.com/tentacle-go/tentacle/agent/config"
	"github.com/tentacle-go/tentacle/agent/service"
	"github.com/tentacle-go/tentacle/firewall"
	"github.com/tentacle-go/tentacle/firewall/host"
	"github.com/tentacle-go/tentacle/provision/doctor"
	"github.com/tentacle-go/tentacle/provision/plan"
	"github.com/tentacle-go/tentacle/provision/setup"
)

// SetupCmd is the interactive wizard (upstream's configure-tentacle.sh).
type SetupCmd struct{}

func (c *SetupCmd) Run(e *Env) error {
	if !e.StdinTTY {
		return config.Userf("`tentacle setup` asks questions and needs a terminal. For cloud-init, CI or a container, declare the machine in a file and run `tentacle provision --file machine.yaml`.")
	}
	in := bufio.NewReader(e.Stdin)
	host, _ := os.Hostname()
	w := &setup.Wizard{
		In: in, Out: e.Stdout, Server: setup.OctopusServer{},
		Root: e.Root(), Hostname: host, DefaultApplications: config.NewSettings("").ApplicationDirectory(),
	}
	if f, ok := e.Stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		w.ReadSecret = func() (string, error) {
			b, err := term.ReadPassword(int(f.Fd()))
			return string(b), err
		}
	}
	ctx := context.Background()
	answers, err := w.Run(ctx)
	if err != nil {
		return err
	}
	data, err := plan.Marshal(answers.File)
	if err != nil {
		return err
	}
	getenv := func(k string) string {
		if k == setup.APIKeyVariable && answers.APIKey != "" {
			return answers.APIKey
		}
		return e.Getenv(k)
	}
	opts := provisionOptions(e, getenv)
	opts.DryRun = true
	// The file applied here is the one saved, except that the API key the
	// person typed is handed over in memory (getenv) instead of from the
	// environment; allowing "plaintext" for this run only lets the resolved
	// key pass the file's check. The saved file still says ${NAME}.
	applied := *answers.File
	applied.AllowPlaintextSecrets = true
	fmt.Fprintf(e.Stdout, "\nThe provision file:\n\n%s\nThe plan:\n", data)
	preview, err := plan.Apply(ctx, &applied, opts)
	printSteps(e, preview)
	if err != nil {
		return provisionError(err)
	}
	if _, err := config.EnsurePrivateDirAll(filepath.Dir(answers.SaveTo)); err != nil {
		return config.Userf("Cannot create the folder of the provision file %s: %v. Run setup as root (sudo), or choose another path.", answers.SaveTo, errors.Unwrap(err))
	}
	if err := config.WriteFileAtomic(answers.SaveTo, data, 0o600); err != nil {
		return config.Userf("Cannot save the provision file %s: %v. Run setup as root (sudo), or choose another path.", answers.SaveTo, errors.Unwrap(err))
	}
	fmt.Fprintf(e.Stdout, "Saved the answers to %s.", answers.SaveTo)
	if answers.APIKey != "" {
		fmt.Fprintf(e.Stdout, " It reads the API key from %s: set that variable to re-run it.", setup.APIKeyVariable)
	}
	fmt.Fprintln(e.Stdout)
	fmt.Fprint(e.Stdout, "Apply this plan now? [Y/n]: ")
	line, _ := in.ReadString('\n')
	if a := strings.ToLower(strings.TrimSpace(line)); a != "" && a != "y" && a != "yes" {
		fmt.Fprintf(e.Stdout, "Nothing was changed. Apply it later with: tentacle provision --file %s\n", answers.SaveTo)
		return nil
	}
	opts.DryRun = false
	res, err := plan.Apply(ctx, &applied, opts)
	printSteps(e, res)
	if err != nil {
		return provisionError(err)
	}
	fmt.Fprintf(e.Stdout, "Tentacle instance %s is set up (%d changed). Check it any time with: tentacle doctor --instance %s\n", answers.Instance, res.ChangedCount(), answers.Instance)
	return nil
}

// provisionError is a failed plan as the user error it is, with the step
// named (exit 1).
func provisionError(err error) error {
	var fe *plan.FileError
	var se *plan.StepError
	if errors.As(err, &fe) || errors.As(err, &se) {
		return config.Userf("%v", err)
	}
	return err
}

// printSteps prints one line per step and its changes.
func printSteps(e *Env, r plan.Result) {
	for _, s := range r.Steps {
		fmt.Fprintf(e.Stdout, "  %-9s %s", s.Status, s.Step)
		if s.Instance != "" {
			fmt.Fprintf(e.Stdout, " (%s)", s.Instance)
		}
		fmt.Fprintln(e.Stdout)
		for _, c := range s.Changes {
			fmt.Fprintf(e.Stdout, "            - %s\n", c)
		}
		if s.Error != "" {
			fmt.Fprintf(e.Stdout, "            ! %s\n", s.Error)
		}
	}
}

// provisionOptions are the machine's means for provision/plan: the
// service manager, the host firewall and doctor's checks as the final
// health check.
func provisionOptions(e *Env, getenv func(string) string) plan.Options {
	exe, _ := serviceExecutable()
	return plan.Options{
		Root: e.Root(), Getenv: getenv, Cwd: e.Cwd, Executable: exe,
		ServiceManager: func(sel config.Selection) (service.Manager, error) { return newServiceManager(e, sel) },
		HostFirewall: func(ctx context.Context, backend string) (firewall.Firewall, string, error) {
			if backend == "" || strings.EqualFold(backend, "auto") {
				return host.Detect(ctx, host.ExecRunner{})
			}
			fw, err := host.New(backend, host.ExecRunner{})
			return fw, "--backend " + backend, err
		},
		CurrentVersion: version,
		Health:         doctorHealth{e: e},
		Infof:          e.Infof,
	}
}

// doctorHealth is provision's final health check: doctor's checks of the
// instance, failing on what doctor calls a failure.
type doctorHealth struct{ e *Env }

func (h doctorHealth) Check(ctx context.Context, in plan.InstanceState) error {
	opts, err := doctorOptions(ctx, h.e, config.Selection{Name: in.Name, ConfigPath: in.ConfigPath})
	if err != nil {
		return err
	}
	return doctor.Healthy(ctx, opts)
}
