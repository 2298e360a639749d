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
	// The API key the person typed reaches the file's ${NAME} in memory,
	// never through the file or the environment.
	opts, err := provisionOptions(e, getenv)
	if err != nil {
		return err
	}
	opts.DryRun, opts.SourceName, opts.Source = true, answers.SaveTo, data
	opts.Progress = func(r plan.StepResult) { printStep(e, r) }
	fmt.Fprintf(e.Stdout, "\nThe provision file:\n\n%s\nThe plan:\n", data)
	if _, err := plan.Apply(ctx, answers.File, opts); err != nil {
		return provisionError(err)
	}
	if _, err := config.EnsurePrivateDirAll(filepath.Dir(answers.SaveTo)); err != nil {
		return config.Userf("Cannot create the folder of the provision file %s: %v. Run setup as root (sudo), or choose another path.", answers.SaveTo, errors.Unwrap(err))
	}
	if err := config.WriteSecretFileAtomic(answers.SaveTo, data); err != nil {
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
	res, err := plan.Apply(ctx, answers.File, opts)
	if err != nil {
		return provisionError(err)
	}
	fmt.Fprintf(e.Stdout, "Tentacle instance %s is set up (%d changed). Check it any time with: tentacle doctor --instance %s\n", answers.Instance, res.ChangedCount(), answers.Instance)
	return nil
}
