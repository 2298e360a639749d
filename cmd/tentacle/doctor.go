package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"strings"

	"github.com/fatih/color"

	"github.com/tentacle-go/tentacle/agent/config"
	"github.com/tentacle-go/tentacle/agent/service"
	"github.com/tentacle-go/tentacle/firewall/host"
	"github.com/tentacle-go/tentacle/provision/doctor"
)

// DoctorCmd tells an operator why a Tentacle cannot talk to its server.
type DoctorCmd struct {
	InstanceFlags
	formatFlag
	Server string `name:"server" help:"The Octopus Server's web address, to compare clocks with its Date header (optional)" placeholder:"URL"`
}

// newServiceInspector reads service state without changing anything (so it
// needs neither root nor sudo on Linux); "" and a reason when there is no
// service manager to ask. Tests replace it.
var newServiceInspector = func(e *Env, sel config.Selection) (service.Inspector, string) {
	switch runtime.GOOS {
	case "windows":
		m, err := service.NewSCM(e.Infof, e.Warnf)
		if err != nil {
			return nil, err.Error()
		}
		if in, ok := m.(service.Inspector); ok {
			return in, ""
		}
		return nil, "the Windows service manager cannot be read"
	case "linux":
	default:
		return nil, "services are checked on Linux (systemd) and Windows only"
	}
	if _, err := os.Stat("/run/systemd/system"); err != nil {
		return nil, "systemd is not running here (a container runs the agent in the foreground)"
	}
	scope := service.SystemScope
	if sel.Rootless && os.Geteuid() != 0 {
		scope = service.UserScope
	}
	m, err := service.NewSystemd(scope, service.Direct{})
	if err != nil {
		return nil, err.Error()
	}
	return m, ""
}

func (c *DoctorCmd) Run(e *Env) error {
	asJSON, err := c.json()
	if err != nil {
		return err
	}
	sel, err := c.selection(e)
	if err != nil {
		return err
	}
	ctx := context.Background()
	opts, err := doctorOptions(ctx, e, sel)
	if err != nil {
		return err
	}
	opts.ServerURL = c.Server
	results := doctor.Run(ctx, opts)
	if asJSON {
		data, _ := json.MarshalIndent(struct {
			Instance string          `json:"instance,omitempty"`
			Config   string          `json:"config"`
			OK       bool            `json:"ok"`
			Checks   []doctor.Result `json:"checks"`
		}{sel.Name, sel.ConfigPath, !doctor.Failed(results), results}, "", "  ")
		fmt.Fprintf(e.Stdout, "%s\n", data)
	} else {
		c.printText(e, sel, results)
	}
	if doctor.Failed(results) {
		return &exitError{code: exitUserError}
	}
	return nil
}

// doctorOptions are doctor's options for one instance, with this
// machine's service manager and OS firewall.
func doctorOptions(ctx context.Context, e *Env, sel config.Selection) (doctor.Options, error) {
	opts := doctor.Options{ConfigPath: sel.ConfigPath, Instance: sel.Name, MachineConfigRoot: e.Root(), MachineKey: e.MachineKey()}
	if sel.Rootless {
		opts.MachineConfigRoot = ""
	}
	if in, why := newServiceInspector(e, sel); in != nil {
		exe, err := serviceExecutable()
		if err != nil {
			return opts, err
		}
		spec := service.Spec{Instance: sel.Name, ConfigPath: sel.ConfigPath, Executable: exe}
		name := service.UnitName(sel.Name)
		if runtime.GOOS == "windows" {
			name = service.WindowsServiceName(sel.Name)
		}
		opts.Service = func(ctx context.Context) (doctor.ServiceState, error) {
			st, err := in.Status(ctx, spec)
			return doctor.ServiceState{Name: name, Installed: st.Installed, Enabled: st.Enabled, Active: st.Running, State: st.State}, err
		}
	} else {
		opts.ServiceWhy = why
	}
	dctx, cancel := context.WithTimeout(ctx, doctor.StepTimeout)
	fw, why, err := host.Detect(dctx, host.ExecRunner{})
	cancel()
	if err != nil {
		opts.FirewallWhy = strings.TrimSuffix(err.Error(), ".")
	} else {
		opts.Firewall, opts.FirewallWhy = fw, why
	}
	return opts, nil
}

func (c *DoctorCmd) printText(e *Env, sel config.Selection, results []doctor.Result) {
	name := sel.Name
	if name == "" {
		name = "(rootless)"
	}
	fmt.Fprintf(e.Stdout, "Checking Tentacle instance %s (%s)\n", name, sel.ConfigPath)
	tags := map[doctor.Status]*color.Color{
		doctor.OK:   e.colour(e.StdoutTTY, color.FgGreen),
		doctor.Warn: e.colour(e.StdoutTTY, color.FgYellow),
		doctor.Fail: e.colour(e.StdoutTTY, color.FgRed, color.Bold),
		doctor.Skip: e.colour(e.StdoutTTY, color.Faint),
	}
	counts := map[doctor.Status]int{}
	for _, r := range results {
		counts[r.Status]++
		check := r.Check
		if r.Server != "" {
			check += " " + r.Server
		}
		tags[r.Status].Fprintf(e.Stdout, "%-5s", strings.ToUpper(string(r.Status)))
		fmt.Fprintf(e.Stdout, " %s: %s\n", check, r.Found)
		if r.Fix != "" {
			fmt.Fprintf(e.Stdout, "      Fix: %s\n", r.Fix)
		}
	}
	fmt.Fprintf(e.Stdout, "%d ok, %d warnings, %d failed, %d not checked.\n", counts[doctor.OK], counts[doctor.Warn], counts[doctor.Fail], counts[doctor.Skip])
}
