package main

import (
	"context"
	"io"
	"os"
	"os/signal"

	"github.com/tentacle-go/tentacle/provision/release"
)

// ReleaseInstallCmd is `release install`: it puts a downloaded, verified
// release artifact in place the way this tentacle was installed (see
// provision/release.Install).
type ReleaseInstallCmd struct {
	formatFlag
	From   string `name:"from" required:"" help:"The downloaded, verified release artifact to install: the .deb or .rpm when tentacle was installed by a package, the .msi when the MSI installed it, else the release's tar.gz (zip on Windows)" placeholder:"FILE"`
	Target string `name:"target" help:"The tentacle binary to replace (default: the running one, symlinks resolved)" placeholder:"PATH"`
	DryRun bool   `name:"dry-run" help:"Check the artifact and print what would happen, changing nothing"`
}

func (c *ReleaseInstallCmd) Run(e *Env) error {
	asJSON, err := c.json()
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	// The package manager's own output goes to stderr under --format json,
	// so stdout stays one JSON document.
	var pmOutput io.Writer = e.Stdout
	if asJSON {
		pmOutput = e.Stderr
	}
	res, err := release.Install(ctx, c.From, release.InstallOptions{Target: c.Target, DryRun: c.DryRun, Output: pmOutput})
	if err != nil {
		return err
	}
	if asJSON {
		return writeJSON(e, res)
	}
	if res.DryRun {
		e.Infof("Dry run: nothing was changed. Installing %s at %s (%s install) would:", c.From, res.Target, res.Method)
		for _, s := range res.Steps {
			e.Infof("  %s", s)
		}
		return nil
	}
	switch res.Method {
	case release.MethodBinary:
		e.Infof("Installed tentacle %s at %s.", res.Version, res.Target)
		if res.Previous != "" {
			e.Infof("The previous binary (%s) is kept as %s.", orUnknownVersion(res.PreviousVersion), res.Previous)
		}
	case release.MethodMSI:
		e.Infof("Installed %s through msiexec (it replaced the MSI's product %s); %s now reports %s.", c.From, res.Package, res.Target, orUnknownVersion(res.Version))
		// The MSI stops every instance's service before it replaces the binary.
		e.Warnf("The upgrade stopped the agents' services; start them again with tentacle service --instance=* --start.")
		return nil
	default:
		e.Infof("Installed %s through the %s package manager (package %s); %s now reports %s.", c.From, res.Method, res.Package, res.Target, orUnknownVersion(res.Version))
	}
	e.Warnf("Running agents keep the old version until their services restart (tentacle service --instance NAME --restart).")
	return nil
}

func orUnknownVersion(v string) string {
	if v == "" {
		return "version unknown"
	}
	return v
}
