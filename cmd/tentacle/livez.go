package main

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"github.com/tentacle-go/tentacle/agent/config"
	"github.com/tentacle-go/tentacle/agent/service"
)

// LivezCmd is upstream's livez: a liveness probe that exits 0 only while the
// instance's agent keeps touching <home>/livez.heartbeat (every 10 s). It
// reads one file's time and nothing else, so it is cheap enough for a
// systemd watchdog script or a container HEALTHCHECK every few seconds.
type LivezCmd struct {
	InstanceFlags
	MaxAge int `name:"max-age" default:"60" help:"Seconds since the agent's last heartbeat after which it counts as not live" placeholder:"SECONDS"`
}

// livezNow is the clock livez compares with (tests fix it).
var livezNow = time.Now

func (c *LivezCmd) Run(e *Env) error {
	if c.MaxAge <= 0 {
		return config.Userf("--max-age must be a positive number of seconds, not %d.", c.MaxAge)
	}
	sel, s, err := c.load(e)
	if err != nil {
		return err
	}
	path := filepath.Join(s.Home(), "livez.heartbeat")
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return config.Userf("Not live: %s does not exist, so the agent of %s has not run since its home was created. Start it: %s.", path, describeInstance(sel), startAdvice(sel))
	}
	if err != nil {
		return config.Userf("Not live: cannot read %s: %v. Run livez as the agent's user or root.", path, errors.Unwrap(err))
	}
	maxAge := time.Duration(c.MaxAge) * time.Second
	age := livezNow().Sub(fi.ModTime()).Truncate(time.Second)
	if age > maxAge {
		return config.Userf("Not live: the agent of %s last touched %s %s ago (at %s), more than --max-age %d s: it is stopped, hung, or cannot write to its home. Check its log %s, then %s.",
			describeInstance(sel), path, age, fi.ModTime().UTC().Format(time.RFC3339), c.MaxAge, filepath.Join(s.Home(), "Logs", "OctopusTentacle.txt"), startAdvice(sel))
	}
	if age < 0 {
		age = 0
	}
	e.Infof("Live: the agent of %s touched its heartbeat %s ago.", describeInstance(sel), age)
	return nil
}

func describeInstance(sel config.Selection) string {
	if sel.Rootless {
		return "the instance at " + sel.ConfigPath
	}
	return "instance " + sel.Name
}

// startAdvice is how to (re)start the agent of sel as a service.
func startAdvice(sel config.Selection) string {
	if sel.Rootless {
		return "`tentacle service --config " + sel.ConfigPath + " --stop --start` or `tentacle agent --config " + sel.ConfigPath + "`"
	}
	unit := ""
	if runtime.GOOS == "linux" {
		unit = " (systemd unit " + service.UnitName(sel.Name) + ")"
	}
	return "`tentacle service --instance " + sel.Name + " --stop --start`" + unit + " or `tentacle agent --instance " + sel.Name + "`"
}
