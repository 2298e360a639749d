package main

import (
	"context"
	"io"
	"os"
	"os/signal"
	"path/filepath"

	"github.com/tentacle-go/tentacle/agent/config"
	"github.com/tentacle-go/tentacle/provision/release"
)

// ReleaseInstallCmd is `release install`: it puts a release artifact in
// place the way this tentacle was installed (see provision/release.Install):
// a file already downloaded (--from), or the right artifact of a version of
// a feed, downloaded and verified first (--feed, --version).
type ReleaseInstallCmd struct {
	formatFlag
	InstanceFlags
	releaseFeedFlags
	releaseTrustFlags
	From        string `name:"from" help:"A downloaded, verified release artifact to install: the .deb or .rpm when tentacle was installed by a package, the .msi when the MSI installed it, else the release's tar.gz (zip on Windows). Without it, the artifact comes from --feed" placeholder:"FILE"`
	DownloadDir string `name:"download-dir" help:"Where an artifact from the feed is downloaded (a re-run continues a cut download). Default: /var/cache/tentacle/releases as root, else your cache folder" placeholder:"DIR"`
	Target      string `name:"target" help:"The tentacle binary to replace (default: the running one, symlinks resolved)" placeholder:"PATH"`
	DryRun      bool   `name:"dry-run" help:"Check the artifact and print what would happen, changing nothing"`
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
	from := c.From
	if from == "" {
		fetched, err := c.fetch(ctx, e, asJSON)
		if err != nil {
			return err
		}
		if fetched.UpToDate() {
			if asJSON {
				return writeJSON(e, release.InstallResult{Method: fetched.Method, Target: fetched.Target, Package: fetched.Package, Version: fetched.Current, DryRun: c.DryRun, Steps: []string{}})
			}
			e.Infof("%s is already version %s, the newest of %s matching %q; nothing to install.", fetched.Target, fetched.Current, c.feedName(e), c.Version)
			return nil
		}
		from = fetched.Path
	} else if c.Feed != "" {
		return config.Userf("Give either --from FILE or --feed FEED, not both.")
	} else if !filepath.IsAbs(from) {
		from = filepath.Join(e.Cwd, from)
	}
	res, err := release.Install(ctx, from, release.InstallOptions{Target: c.Target, DryRun: c.DryRun, Output: pmOutput})
	if err != nil {
		return err
	}
	if asJSON {
		return writeJSON(e, res)
	}
	if res.DryRun {
		e.Infof("Dry run: nothing was changed. Installing %s at %s (%s install) would:", from, res.Target, res.Method)
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
		if res.Supervisor != "" {
			if _, err := os.Stat(res.Supervisor); err == nil {
				e.Infof("Its script supervisor program is %s.", res.Supervisor)
			} else {
				e.Infof("Removed %s: this release has no tentacle-supervisor.", res.Supervisor)
			}
		}
	case release.MethodMSI:
		e.Infof("Installed %s through msiexec (it replaced the MSI's product %s); %s now reports %s.", from, res.Package, res.Target, orUnknownVersion(res.Version))
		// The MSI stops every instance's service before it replaces the binary.
		e.Warnf("The upgrade stopped the agents' services; start them again with tentacle service --instance=* --start.")
		return nil
	default:
		e.Infof("Installed %s through the %s package manager (package %s); %s now reports %s.", from, res.Method, res.Package, res.Target, orUnknownVersion(res.Version))
	}
	e.Warnf("Running agents keep the old version until their services restart (tentacle service --instance NAME --restart); `tentacle upgrade` installs and restarts them in one step.")
	return nil
}

// fetch downloads and verifies, from the feed, the artifact this machine's
// install method needs.
func (c *ReleaseInstallCmd) fetch(ctx context.Context, e *Env, asJSON bool) (release.Fetched, error) {
	defaults, err := instanceReleaseDefaults(e, c.InstanceFlags)
	if err != nil {
		return release.Fetched{}, err
	}
	if c.Feed == "" && e.Getenv("TENTACLE_RELEASES_FEED") == "" && defaults.Feed == "" {
		return release.Fetched{}, config.Userf("Nothing to install: give --from FILE (a downloaded artifact) or --feed FEED (with --version) to download one; TENTACLE_RELEASES_FEED or `tentacle configure --releases-feed` sets a default feed.")
	}
	feed, err := c.open(e, defaults)
	if err != nil {
		return release.Fetched{}, err
	}
	fetched, err := release.FetchForInstall(ctx, release.FetchRequest{
		Feed: feed, Constraint: c.Version, Prerelease: c.Prerelease, Trust: c.trust(e, defaults),
		Target: c.Target, Dir: absFrom(e, c.DownloadDir), Progress: releaseProgress(e, asJSON),
	})
	return fetched, releaseError(err)
}

func (c *ReleaseInstallCmd) feedName(e *Env) string {
	if c.Feed != "" {
		return c.Feed
	}
	return e.Getenv("TENTACLE_RELEASES_FEED")
}

// absFrom makes a path given on the command line absolute ("" stays "").
func absFrom(e *Env, p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(e.Cwd, p)
}

func orUnknownVersion(v string) string {
	if v == "" {
		return "version unknown"
	}
	return v
}
