package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/tentacle-go/tentacle/agent/config"
	"github.com/tentacle-go/tentacle/provision/release"
)

// ReleaseCmd reads release feeds: lists, downloads (verified) and mirrors
// versions (provision/release).
type ReleaseCmd struct {
	List     ReleaseListCmd     `cmd:"" name:"list" help:"List the versions of a release feed"`
	Download ReleaseDownloadCmd `cmd:"" name:"download" help:"Download a release artifact for this machine, verified against the feed's signed checksums"`
	Mirror   ReleaseMirrorCmd   `cmd:"" name:"mirror" help:"Copy versions of a feed, verified, into a directory that is itself a feed (for air-gapped sites)"`
	Install  ReleaseInstallCmd  `cmd:"" name:"install" help:"Install a downloaded, verified release artifact the way this tentacle was installed (package manager or binary)"`
}

// releaseFeedFlags choose the feed and the versions.
type releaseFeedFlags struct {
	Feed       string `name:"feed" help:"Release feed: a directory, file:// or https:// URL (http:// to loopback only), or github:OWNER/REPO. Default: $TENTACLE_RELEASES_FEED, else the instance's (configure --releases-feed)" placeholder:"FEED"`
	Version    string `name:"version" default:"latest" help:"latest, an exact version, or a constraint such as '~> 1.4' or '>= 1.2, < 2'" placeholder:"CONSTRAINT"`
	Prerelease bool   `name:"prerelease" help:"Include pre-releases (a constraint naming a pre-release includes them too)"`
}

// releaseDefaults are the feed and public key an instance's configuration
// names (configure --releases-feed/--releases-public-key), and which
// configuration file that is, for messages.
type releaseDefaults struct {
	Feed, PublicKey, From string
}

// instanceReleaseDefaults reads the selected instance's release defaults.
// Without --instance or --config the default instance is read when there is
// one; having none is not an error, as release commands also run on a
// machine with no instance yet (a fresh install).
func instanceReleaseDefaults(e *Env, f InstanceFlags) (releaseDefaults, error) {
	var s *config.Settings
	if f.Instance != "" || f.Config != "" {
		_, loaded, err := f.load(e)
		if err != nil {
			return releaseDefaults{}, err
		}
		s = loaded
	} else {
		sel, err := f.selection(e)
		if err != nil {
			return releaseDefaults{}, nil
		}
		if s, err = config.LoadSettings(sel.ConfigPath); err != nil {
			return releaseDefaults{}, nil
		}
	}
	var d releaseDefaults
	d.Feed, _ = s.Get(config.KeyReleasesFeed)
	d.PublicKey, _ = s.Get(config.KeyReleasesPublicKey)
	d.From = s.Path()
	return d, nil
}

// open opens the feed: --feed, else $TENTACLE_RELEASES_FEED, else the
// instance's.
func (f *releaseFeedFlags) open(e *Env, d releaseDefaults) (release.Feed, error) {
	spec := f.Feed
	if spec == "" {
		spec = e.Getenv("TENTACLE_RELEASES_FEED")
	}
	if spec == "" {
		spec = d.Feed
	}
	feed, err := release.Open(spec, release.Options{GitHubToken: e.Getenv("GITHUB_TOKEN")})
	return feed, releaseError(err)
}

// releaseTrustFlags say how checksums.txt is trusted.
type releaseTrustFlags struct {
	PubKey                string `name:"pubkey" help:"minisign public key (RW…) the feed's checksums.txt must be signed with. Default: $TENTACLE_RELEASES_PUBKEY, else the instance's (configure --releases-public-key), else the key built into release binaries" placeholder:"KEY"`
	InsecureSkipSignature bool   `name:"insecure-skip-signature" help:"Do not check the signature of checksums.txt (the SHA-256 of each file is still checked). Dangerous"`
}

// trust is the key to check with, and says loudly when none is checked.
func (f *releaseTrustFlags) trust(e *Env, d releaseDefaults) release.Trust {
	t := release.Trust{PublicKey: release.ChooseKey(f.PubKey, e.Getenv("TENTACLE_RELEASES_PUBKEY"), d.PublicKey), SkipSignature: f.InsecureSkipSignature}
	switch {
	case t.SkipSignature:
		e.Errorf("WARNING: --insecure-skip-signature: the signature of checksums.txt is NOT checked; anyone who can change the feed can change what you install.")
	case t.PublicKey == "":
		e.Errorf("WARNING: no release public key (--pubkey, TENTACLE_RELEASES_PUBKEY or configure --releases-public-key) and none built in: the signature of checksums.txt is NOT checked, only the SHA-256 of each file against it.")
	}
	return t
}

// releaseError makes a release error a user error (exit 1) with its
// one-sentence message.
func releaseError(err error) error {
	if err == nil || errors.Is(err, context.Canceled) {
		return err
	}
	return config.Userf("%s", upperFirst(err.Error()))
}

// ReleaseListCmd is `release list`.
type ReleaseListCmd struct {
	InstanceFlags
	releaseFeedFlags
	formatFlag
}

type releaseListJSON struct {
	Feed     string            `json:"feed"`
	Versions []release.Version `json:"versions"`
}

func (c *ReleaseListCmd) Run(e *Env) error {
	asJSON, err := c.json()
	if err != nil {
		return err
	}
	defaults, err := instanceReleaseDefaults(e, c.InstanceFlags)
	if err != nil {
		return err
	}
	feed, err := c.open(e, defaults)
	if err != nil {
		return err
	}
	all, err := feed.Versions(context.Background())
	if err != nil {
		return releaseError(err)
	}
	sel, err := release.Select(all, c.Version, c.Prerelease)
	if err != nil {
		return releaseError(err)
	}
	if asJSON {
		if sel == nil {
			sel = []release.Version{}
		}
		return writeJSON(e, releaseListJSON{Feed: feed.String(), Versions: sel})
	}
	if len(sel) == 0 {
		_, err := release.Newest(all, c.Version, c.Prerelease)
		return releaseError(err)
	}
	tw := tabwriter.NewWriter(e.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "VERSION\tDATE\t")
	for _, v := range sel {
		pre := ""
		if v.Prerelease {
			pre = "pre-release"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", v.Version, v.Date, pre)
	}
	return tw.Flush()
}

// ReleaseDownloadCmd is `release download`.
type ReleaseDownloadCmd struct {
	InstanceFlags
	releaseFeedFlags
	releaseTrustFlags
	formatFlag
	Kind string `name:"kind" default:"archive" help:"archive (tar.gz, zip on Windows), deb, rpm, msi (windows/amd64), or image / image-static (the container images as OCI archives for podman load, linux/amd64)" placeholder:"KIND"`
	OS   string `name:"os" help:"linux, darwin or windows. Default: this machine's" placeholder:"OS"`
	Arch string `name:"arch" help:"amd64, arm64 or armv7. Default: this machine's" placeholder:"ARCH"`
	To   string `name:"to" default:"." help:"Directory to download into; a re-run continues an interrupted download there" placeholder:"DIR"`
}

type releaseDownloadJSON struct {
	Feed      string `json:"feed"`
	Version   string `json:"version"`
	File      string `json:"file"`
	Path      string `json:"path"`
	SHA256    string `json:"sha256"`
	Size      int64  `json:"size"`
	Signature string `json:"signature"` // verified, skipped or unchecked
}

func (c *ReleaseDownloadCmd) Run(e *Env) error {
	asJSON, err := c.json()
	if err != nil {
		return err
	}
	p := release.HostPlatform()
	if c.OS != "" {
		p.OS = strings.ToLower(c.OS)
	}
	if c.Arch != "" {
		p.Arch = strings.ToLower(c.Arch)
	}
	defaults, err := instanceReleaseDefaults(e, c.InstanceFlags)
	if err != nil {
		return err
	}
	feed, err := c.open(e, defaults)
	if err != nil {
		return err
	}
	ctx := context.Background()
	all, err := feed.Versions(ctx)
	if err != nil {
		return releaseError(err)
	}
	v, err := release.Newest(all, c.Version, c.Prerelease)
	if err != nil {
		return releaseError(err)
	}
	name, err := release.ArtifactName(release.Kind(strings.ToLower(c.Kind)), v.Version, p)
	if err != nil {
		return releaseError(err)
	}
	t := c.trust(e, defaults)
	sums, _, _, err := release.FetchChecksums(ctx, feed, v, t)
	if err != nil {
		return releaseError(err)
	}
	dir := c.To
	if !filepath.IsAbs(dir) {
		dir = filepath.Join(e.Cwd, dir)
	}
	path, err := release.Download(ctx, feed, v, name, sums, dir, c.progress(e, asJSON))
	if err != nil {
		return releaseError(err)
	}
	sig := "verified"
	switch {
	case t.SkipSignature:
		sig = "skipped"
	case t.PublicKey == "":
		sig = "unchecked"
	}
	if asJSON {
		info, err := os.Stat(path)
		if err != nil {
			return err
		}
		return writeJSON(e, releaseDownloadJSON{Feed: feed.String(), Version: v.Version, File: name, Path: path, SHA256: sums[name], Size: info.Size(), Signature: sig})
	}
	e.Infof("Version %s: %s (SHA-256 verified, signature %s).", v.Version, path, sig)
	return nil
}

// progress is a bar on a terminal, plain lines otherwise; with --format
// json it goes to stderr so stdout is only the JSON.
func (c *ReleaseDownloadCmd) progress(e *Env, asJSON bool) release.Progress {
	return releaseProgress(e, asJSON)
}

func releaseProgress(e *Env, onStderr bool) release.Progress {
	w, tty := e.Stdout, e.StdoutTTY
	if onStderr {
		w, tty = e.Stderr, e.StderrTTY
	}
	if tty {
		return &release.BarProgress{W: w}
	}
	return &release.LineProgress{W: w}
}

// ReleaseMirrorCmd is `release mirror`.
type ReleaseMirrorCmd struct {
	InstanceFlags
	releaseFeedFlags
	releaseTrustFlags
	To string `name:"to" required:"" help:"Directory to mirror into; it becomes a feed (index.json merged with the versions already there)" placeholder:"DIR"`
}

func (c *ReleaseMirrorCmd) Run(e *Env) error {
	defaults, err := instanceReleaseDefaults(e, c.InstanceFlags)
	if err != nil {
		return err
	}
	feed, err := c.open(e, defaults)
	if err != nil {
		return err
	}
	dir := c.To
	if !filepath.IsAbs(dir) {
		dir = filepath.Join(e.Cwd, dir)
	}
	// "latest" means every version here: a mirror copies what the feed has.
	constraint := c.Version
	if strings.EqualFold(constraint, "latest") {
		constraint = ""
	}
	copied, err := release.Mirror(context.Background(), feed, dir, constraint, c.Prerelease, c.trust(e, defaults), releaseProgress(e, false))
	for _, v := range copied {
		e.Infof("Mirrored %s (%d files) into %s.", v.Version, len(v.Files), dir)
	}
	return releaseError(err)
}
