package release

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"

	goversion "github.com/hashicorp/go-version"
)

// FetchRequest says which release to fetch for an install on this machine.
type FetchRequest struct {
	Feed       Feed
	Constraint string // latest, an exact version or a constraint
	Prerelease bool
	Trust      Trust
	// Target is the binary an install would replace; "" is the running one.
	Target string
	// Dir is where the artifact is downloaded (a re-run continues a cut
	// download there); "" is DownloadDir().
	Dir      string
	Progress Progress
}

// Fetched is a release artifact downloaded and verified for this machine's
// install method, ready for Install.
type Fetched struct {
	Version Version
	// Current is the version the target reports now ("" when it does not
	// run or is not there yet).
	Current string
	Method  InstallMethod
	Package string
	Target  string
	Kind    Kind
	Name    string
	Path    string
}

// UpToDate reports whether the target already runs the fetched version.
func (f Fetched) UpToDate() bool { return SameVersion(f.Current, f.Version.Version) }

// SameVersion compares two versions by SemVer precedence (build metadata
// ignored), falling back to string equality.
func SameVersion(a, b string) bool {
	va, ea := goversion.NewSemver(a)
	vb, eb := goversion.NewSemver(b)
	if ea != nil || eb != nil {
		return a != "" && a == b
	}
	return va.Equal(vb)
}

// DownloadDir is where releases are downloaded by default: root's cache
// (/var/cache/tentacle/releases) on Linux, else the user's cache folder.
func DownloadDir() string {
	if runtime.GOOS == "linux" && os.Geteuid() == 0 {
		return "/var/cache/tentacle/releases"
	}
	if dir, err := os.UserCacheDir(); err == nil {
		return filepath.Join(dir, "tentacle", "releases")
	}
	return filepath.Join(os.TempDir(), "tentacle-releases")
}

// KindFor is the artifact an install method installs.
func KindFor(m InstallMethod) Kind {
	switch m {
	case MethodDeb:
		return KindDeb
	case MethodRPM:
		return KindRPM
	case MethodMSI:
		return KindMSI
	}
	return KindArchive
}

// FetchForInstall resolves, downloads and verifies the artifact that
// Install needs on this machine: it finds how the target was installed
// (deb, rpm, the MSI or a plain binary), picks the newest version of the feed the
// constraint allows, and downloads that version's package or archive for
// this OS and architecture, checked against the feed's signed checksums.
// Nothing is installed. The download is skipped when the target already
// runs that version (see Fetched.UpToDate).
func FetchForInstall(ctx context.Context, req FetchRequest) (Fetched, error) {
	var out Fetched
	var err error
	out.Target, err = ResolveTarget(req.Target)
	if err != nil {
		return out, err
	}
	out.Method, out.Package, err = DetectInstall(ctx, out.Target)
	if err != nil {
		return out, err
	}
	out.Current, _ = binaryVersion(ctx, out.Target)
	all, err := req.Feed.Versions(ctx)
	if err != nil {
		return out, err
	}
	out.Version, err = Newest(all, req.Constraint, req.Prerelease)
	if err != nil {
		return out, err
	}
	return out, fetchVersion(ctx, req, &out)
}

// FetchVersion downloads and verifies the artifact of exactly version v for
// the install method of f (a rollback of a package install uses it to get
// the previous package back).
func FetchVersion(ctx context.Context, req FetchRequest, f Fetched, v string) (Fetched, error) {
	all, err := req.Feed.Versions(ctx)
	if err != nil {
		return f, err
	}
	for _, x := range all {
		if SameVersion(x.Version, v) {
			f.Version = x
			f.Current = "" // download it whatever runs now
			return f, fetchVersion(ctx, req, &f)
		}
	}
	return f, fmt.Errorf("feed %s does not have version %s", req.Feed, v)
}

func fetchVersion(ctx context.Context, req FetchRequest, out *Fetched) error {
	out.Kind = KindFor(out.Method)
	var err error
	out.Name, err = ArtifactName(out.Kind, out.Version.Version, HostPlatform())
	if err != nil {
		return err
	}
	if out.UpToDate() {
		return nil
	}
	sums, _, _, err := FetchChecksums(ctx, req.Feed, out.Version, req.Trust)
	if err != nil {
		return err
	}
	dir := req.Dir
	if dir == "" {
		dir = DownloadDir()
	}
	out.Path, err = Download(ctx, req.Feed, out.Version, out.Name, sums, filepath.Join(dir, out.Version.Version), req.Progress)
	return err
}
