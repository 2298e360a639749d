package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"

	"github.com/tentacle-go/tentacle/agent/config"
	"github.com/tentacle-go/tentacle/agent/service"
	"github.com/tentacle-go/tentacle/provision/doctor"
	"github.com/tentacle-go/tentacle/provision/plan"
)

// ProvisionCmd is `tentacle provision`: converge this machine to a
// declared state (provision/plan) from a file, the environment or flags.
type ProvisionCmd struct {
	formatFlag
	File      string `name:"file" short:"f" help:"The provision file (YAML) declaring the machine; - reads standard input" placeholder:"PATH"`
	FromEnv   bool   `name:"from-env" help:"Declare the machine with the environment variables of upstream's Tentacle container (ServerUrl, ServerApiKey, TargetEnvironment, ...); flags below override them"`
	DryRun    bool   `name:"dry-run" help:"Print the plan of every step and change nothing"`
	WriteFile string `name:"write-file" help:"Also write the declaration as a provision file (secrets stay references to variables), e.g. to keep what --from-env declared" placeholder:"PATH"`
	provisionSettingFlags
}

// provisionSettingFlags are the --from-env settings as flags, spelled as
// register-with spells them; each stands for one variable of plan.EnvVars.
type provisionSettingFlags struct {
	Server                          string   `name:"server" help:"ServerUrl: the Octopus Server" placeholder:"URL"`
	APIKey                          string   `name:"apiKey" help:"ServerApiKey (prefer the variable: flags are visible to other users)" placeholder:"API-KEY" sensitive:""`
	BearerToken                     string   `name:"bearerToken" help:"BearerToken" placeholder:"TOKEN" sensitive:""`
	Username                        string   `name:"username" help:"ServerUsername" placeholder:"USER"`
	Password                        string   `name:"password" help:"ServerPassword" placeholder:"PASSWORD" sensitive:""`
	Space                           string   `name:"space" help:"Space" placeholder:"NAME"`
	Environment                     []string `name:"environment" sep:"none" help:"TargetEnvironment (repeatable)" placeholder:"ENV"`
	Role                            []string `name:"role" sep:"none" help:"TargetRole (repeatable)" placeholder:"ROLE"`
	WorkerPool                      []string `name:"workerpool" sep:"none" help:"TargetWorkerPool (repeatable): a worker" placeholder:"POOL"`
	Name                            string   `name:"name" help:"TargetName" placeholder:"NAME"`
	Tenant                          []string `name:"tenant" sep:"none" help:"TargetTenant (repeatable)" placeholder:"TENANT"`
	TenantTag                       []string `name:"tenanttag" sep:"none" help:"TargetTenantTag (repeatable)" placeholder:"TAG"`
	TenantedDeploymentParticipation string   `name:"tenanted-deployment-participation" help:"TargetTenantedDeploymentParticipation" placeholder:"MODE"`
	Policy                          string   `name:"policy" help:"MachinePolicy" placeholder:"NAME"`
	ServerCommsAddress              string   `name:"server-comms-address" help:"ServerCommsAddress: a polling Tentacle" placeholder:"URL"`
	ServerCommsPort                 string   `name:"server-comms-port" help:"ServerPort: a polling Tentacle" placeholder:"PORT"`
	TentacleCommsPort               string   `name:"tentacle-comms-port" help:"ListeningPort: the port the server dials" placeholder:"PORT"`
	PublicHostName                  string   `name:"publicHostName" help:"CustomPublicHostName (with PublicHostNameConfiguration=Custom implied)" placeholder:"HOST"`
	PollingConnectionCount          string   `name:"pollingConnectionCount" help:"PollingConnectionCount" placeholder:"N"`
}

// variables are the flags as plan.EnvVars names; "" where not given.
func (f *provisionSettingFlags) variables() map[string]string {
	v := map[string]string{
		"ServerUrl": f.Server, "ServerApiKey": f.APIKey, "BearerToken": f.BearerToken, "ServerUsername": f.Username,
		"ServerPassword": f.Password, "Space": f.Space, "TargetEnvironment": strings.Join(f.Environment, ","),
		"TargetRole": strings.Join(f.Role, ","), "TargetWorkerPool": strings.Join(f.WorkerPool, ","), "TargetName": f.Name,
		"TargetTenant": strings.Join(f.Tenant, ","), "TargetTenantTag": strings.Join(f.TenantTag, ","),
		"TargetTenantedDeploymentParticipation": f.TenantedDeploymentParticipation, "MachinePolicy": f.Policy,
		"ServerCommsAddress": f.ServerCommsAddress, "ServerPort": f.ServerCommsPort, "ListeningPort": f.TentacleCommsPort,
		"PollingConnectionCount": f.PollingConnectionCount,
	}
	if f.PublicHostName != "" {
		v["PublicHostNameConfiguration"], v["CustomPublicHostName"] = "Custom", f.PublicHostName
	}
	for k, val := range v {
		if val == "" {
			delete(v, k)
		}
	}
	return v
}

func (c *ProvisionCmd) Run(e *Env) error {
	asJSON, err := c.json()
	if err != nil {
		return err
	}
	file, getenv, source, err := c.declaration(e)
	if err != nil {
		if asJSON {
			if werr := writeProvisionJSON(e, plan.Result{}, c.DryRun, err); werr != nil {
				return werr
			}
		}
		return err
	}
	if c.WriteFile != "" {
		data, err := plan.Marshal(file)
		if err != nil {
			return err
		}
		path := absPath(e, c.WriteFile)
		if err := config.WriteSecretFileAtomic(path, data); err != nil {
			return config.Userf("Cannot write %s: %v.", path, errors.Unwrap(err))
		}
	}
	opts, err := provisionOptions(e, getenv)
	if err != nil {
		return err
	}
	opts.DryRun, opts.SourceName, opts.Source = c.DryRun, c.File, source
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if !asJSON {
		opts.Progress = func(r plan.StepResult) { printStep(e, r) }
	}
	res, err := plan.Apply(ctx, file, opts)
	if asJSON {
		if werr := writeProvisionJSON(e, res, c.DryRun, err); werr != nil {
			return werr
		}
	} else if err == nil {
		unchanged := len(res.Steps) - res.ChangedCount()
		if c.DryRun {
			e.Infof("Dry run: %d would change, %d unchanged. Nothing was changed.", res.ChangedCount(), unchanged)
		} else {
			e.Infof("%d changed, %d unchanged.", res.ChangedCount(), unchanged)
		}
	}
	return provisionError(err)
}

// provisionError is a failed plan as the user error it is, with the step
// named (exit 1).
func provisionError(err error) error {
	var fe *plan.FileError
	if errors.As(err, &fe) {
		return config.Userf("%s", fe.Msg)
	}
	var se *plan.StepError
	if errors.As(err, &se) {
		return config.Userf("%s", se.Error())
	}
	return err
}

// provisionOptions are the machine's means for provision/plan: the service
// manager (its progress on stderr) and doctor's checks as the final health
// check.
func provisionOptions(e *Env, getenv func(string) string) (plan.Options, error) {
	exe, err := serviceExecutable()
	if err != nil {
		return plan.Options{}, fmt.Errorf("cannot find the tentacle binary: %w", err)
	}
	return plan.Options{
		Root: e.Root(), Getenv: getenv, Cwd: e.Cwd, Executable: exe,
		CurrentVersion: buildVersion(),
		ServiceManager: func(sel config.Selection) (service.Manager, error) {
			return newServiceManager(quietEnv(e), sel)
		},
		Health: doctorHealth{e: e},
	}, nil
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

// declaration is the declared machine from --file, or from the
// environment and flags, and how its ${NAME} references resolve.
func (c *ProvisionCmd) declaration(e *Env) (*plan.File, func(string) string, []byte, error) {
	flags := c.variables()
	getenv := e.Getenv
	var file *plan.File
	var source []byte
	var err error
	switch {
	case c.File != "" && (c.FromEnv || len(flags) > 0):
		return nil, nil, nil, config.Userf("--file declares the whole machine; leave out --from-env and the setting flags (or put them in the file).")
	case c.File != "":
		data, name, err := c.readFile(e)
		if err != nil {
			return nil, nil, nil, err
		}
		source = data
		if file, err = plan.Parse(name, data); err != nil {
			return nil, nil, nil, config.Userf("%s", err.Error())
		}
	case c.FromEnv || len(flags) > 0:
		getenv = func(k string) string {
			if v, ok := flags[k]; ok {
				return v
			}
			if c.FromEnv {
				return e.Getenv(k)
			}
			return ""
		}
		if file, err = plan.FromEnv(getenv); err != nil {
			return nil, nil, nil, config.Userf("%s", strings.Replace(err.Error(), "--from-env: ", "", 1))
		}
	default:
		return nil, nil, nil, config.Userf("Say what to converge to: --file machine.yaml, --from-env (upstream's container variables), or settings as flags (--server ... --environment ... --role ...). `tentacle help provision` lists them.")
	}
	return file, getenv, source, nil
}

// readFile reads --file, or standard input for -.
func (c *ProvisionCmd) readFile(e *Env) ([]byte, string, error) {
	if c.File == "-" {
		data, err := io.ReadAll(e.Stdin)
		return data, "standard input", err
	}
	path := absPath(e, c.File)
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, "", config.Userf("Cannot read the provision file %s: %v.", path, errors.Unwrap(err))
	}
	return data, c.File, nil
}

// printStep is one text line per step, and its changes and notes below it.
func printStep(e *Env, r plan.StepResult) {
	where := r.Step
	if r.Instance != "" {
		where = r.Instance + " " + r.Step
	}
	status := string(r.Status)
	if r.DryRun && r.Status == plan.Changed {
		status = "would change"
	}
	e.Infof("%-12s %s", status, where)
	for _, c := range r.Changes {
		e.Infof("             - %s", c)
	}
	for _, n := range r.Notes {
		e.Infof("             note: %s", n)
	}
}

// provisionJSON is --format json: one object per step in steps, and the
// totals Ansible's changed_when and failed_when read.
type provisionJSON struct {
	Changed      bool              `json:"changed"`
	ChangedCount int               `json:"changed_count"`
	Failed       bool              `json:"failed"`
	DryRun       bool              `json:"dry_run"`
	Error        string            `json:"error,omitempty"`
	Steps        []plan.StepResult `json:"steps"`
}

func writeProvisionJSON(e *Env, res plan.Result, dryRun bool, err error) error {
	out := provisionJSON{ChangedCount: res.ChangedCount(), DryRun: dryRun, Steps: res.Steps}
	out.Changed = out.ChangedCount > 0
	if out.Steps == nil {
		out.Steps = []plan.StepResult{}
	}
	if err != nil {
		out.Failed, out.Error = true, err.Error()
		var fe *plan.FileError
		if errors.As(err, &fe) {
			out.Error = fe.Msg
		}
	}
	data, merr := json.MarshalIndent(out, "", "  ")
	if merr != nil {
		return merr
	}
	_, werr := e.Stdout.Write(append(data, '\n'))
	return werr
}

// quietEnv is e with the service manager's progress lines sent to stderr,
// so that stdout stays the step lines (or the JSON document).
func quietEnv(e *Env) *Env {
	q := *e
	q.Stdout = e.Stderr
	q.StdoutTTY = e.StderrTTY
	return &q
}
