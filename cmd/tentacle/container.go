package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/tentacle-go/tentacle/agent/config"
	"github.com/tentacle-go/tentacle/agent/containerinit"
	"github.com/tentacle-go/tentacle/provision/plan"
)

// ContainerCmd is the container image's entrypoint: `provision --from-env`,
// then the agent, with this process as the container's PID 1
// (agent/containerinit: orphans reaped, SIGTERM handled without losing a
// script). Not an upstream command: upstream's image runs a shell script.
type ContainerCmd struct{}

// defaultStopGrace leaves half of podman's default stop timeout (10 s) for
// cancelling what is still running and stopping the agent.
const defaultStopGrace = 5 * time.Second

func (c *ContainerCmd) Run(e *Env) error {
	grace, err := stopGrace(e.Getenv("TENTACLE_STOP_GRACE"))
	if err != nil {
		return err
	}
	busy := func() bool { return false }
	in, err := containerinit.Start(containerinit.Options{Grace: grace, Log: e.Stderr, Busy: func() bool { return busy() }})
	if err != nil {
		return err
	}
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	env := os.Environ()
	step := func(args ...string) error {
		code, err := in.Run(exe, append([]string{"tentacle"}, args...), env)
		if err != nil {
			return err
		}
		if code != 0 {
			return &exitError{code: code, msg: fmt.Sprintf("tentacle %s exited %d; the container stops.", args[0], code)}
		}
		return nil
	}
	if err := ensureLinkTarget(plan.EnvApplications); err != nil {
		return err
	}
	if e.Getenv("ServerUrl") != "" {
		if err := step("provision", "--from-env"); err != nil {
			return err
		}
	} else if _, err := e.Index().Select(plan.EnvInstance, "", e.Cwd); err != nil {
		return config.Userf("ServerUrl is not set and %s holds no instance %s to run: set ServerUrl, ServerApiKey and TargetEnvironment with TargetRole, or TargetWorkerPool (tentacle help provision lists every variable), or mount the volume of a container that registered.", e.Root(), plan.EnvInstance)
	}
	if addr := e.Getenv("TENTACLE_METRICS_LISTEN"); addr != "" && !in.Stopping() {
		if err := step("configure", "--instance", plan.EnvInstance, "--metrics-listen", addr); err != nil {
			return err
		}
	}
	if in.Stopping() {
		return nil
	}
	if _, s, err := (&InstanceFlags{Instance: plan.EnvInstance}).load(e); err == nil {
		work := filepath.Join(s.Home(), "Work")
		busy = func() bool { return uncollectedScripts(work) }
	}
	err = step("agent", "--instance", plan.EnvInstance)
	in.Close(2 * time.Second)
	return err
}

// stopGrace reads TENTACLE_STOP_GRACE: a Go duration (30s, 1m30s) or a
// number of seconds.
func stopGrace(v string) (time.Duration, error) {
	if v == "" {
		return defaultStopGrace, nil
	}
	if n, err := strconv.Atoi(v); err == nil && n >= 0 {
		return time.Duration(n) * time.Second, nil
	}
	if d, err := time.ParseDuration(v); err == nil && d >= 0 {
		return d, nil
	}
	return 0, config.Userf("TENTACLE_STOP_GRACE=%q is not a duration: give seconds (30) or a Go duration (30s, 2m).", v)
}

// ensureLinkTarget creates the folder a symbolic link points to when it is
// missing. The image links the application folder into the state volume
// (/etc/octopus/Applications), and a volume that starts empty (a
// Kubernetes PVC, a bind mount) does not have that folder yet.
func ensureLinkTarget(path string) error {
	target, err := os.Readlink(path)
	if errors.Is(err, os.ErrNotExist) || (err != nil && strings.Contains(err.Error(), "invalid argument")) {
		return nil // not there, or not a link: provision makes it
	}
	if err != nil {
		return err
	}
	if !filepath.IsAbs(target) {
		target = filepath.Join(filepath.Dir(path), target)
	}
	if err := os.MkdirAll(target, 0o755); err != nil {
		return config.Userf("Cannot create %s (where %s points): %v. Mount a writable volume at %s.", target, path, errors.Unwrap(err), filepath.Dir(target))
	}
	return nil
}

// uncollectedScripts reports whether work holds a script workspace: the
// server removes one (CompleteScript) once it has the script's end; names
// starting with a dot are workspaces already being deleted.
func uncollectedScripts(work string) bool {
	entries, _ := os.ReadDir(work)
	for _, d := range entries {
		if d.IsDir() && !strings.HasPrefix(d.Name(), ".") {
			return true
		}
	}
	return false
}
