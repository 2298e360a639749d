package release

import (
	"fmt"
	"runtime"
	"slices"
	"strings"

	goversion "github.com/hashicorp/go-version"
)

// sortNewestFirst orders versions by SemVer precedence, newest first;
// versions that are not SemVer go last.
func sortNewestFirst(vs []Version) {
	slices.SortStableFunc(vs, func(a, b Version) int {
		va, ea := goversion.NewSemver(a.Version)
		vb, eb := goversion.NewSemver(b.Version)
		switch {
		case ea != nil && eb != nil:
			return strings.Compare(a.Version, b.Version)
		case ea != nil:
			return 1
		case eb != nil:
			return -1
		}
		return vb.Compare(va)
	})
}

// Select returns the versions of vs that constraint allows, newest first.
// constraint is "latest" or "" (every version), an exact version, or a
// hashicorp/go-version constraint ("~> 1.4", ">= 1.2, < 2"). Pre-releases
// are left out unless prerelease is set or the constraint names one; with
// prerelease set, a pre-release matches when its release would (1.5.0-rc.1
// matches "~> 1.4" as 1.5.0 does).
func Select(vs []Version, constraint string, prerelease bool) ([]Version, error) {
	constraint = strings.TrimSpace(constraint)
	var cs goversion.Constraints
	if constraint != "" && !strings.EqualFold(constraint, "latest") {
		var err error
		cs, err = goversion.NewConstraint(strings.TrimPrefix(constraint, "v"))
		if err != nil {
			return nil, fmt.Errorf("version %q is not a version or constraint; write latest, 1.4.2, '~> 1.4' or '>= 1.2, < 2'", constraint)
		}
		if strings.Contains(constraint, "-") {
			prerelease = true // the constraint names a pre-release
		}
	}
	var out []Version
	for _, v := range vs {
		sv, err := goversion.NewSemver(v.Version)
		if err != nil {
			continue
		}
		isPre := v.Prerelease || sv.Prerelease() != ""
		if isPre && !prerelease {
			continue
		}
		if cs != nil && !allow(cs, sv, isPre) {
			continue
		}
		out = append(out, v)
	}
	sortNewestFirst(out)
	return out, nil
}

// allow checks v against each part of cs. A pre-release counts as its
// release ("< 2" matches 1.5.0-rc.1, which go-version alone refuses), except
// against a part naming a pre-release of the same release, which compares
// exactly ("> 1.5.0-rc.1" does not match 1.5.0-rc.1 through 1.5.0). Against
// a pre-release of another release the release decides, as in SemVer.
func allow(cs goversion.Constraints, v *goversion.Version, isPre bool) bool {
	for _, c := range cs {
		if c.Check(v) {
			continue
		}
		if !isPre || (c.Prerelease() && sameCore(c, v)) || !c.Check(v.Core()) {
			return false
		}
	}
	return true
}

// sameCore reports whether the version c names has v's major.minor.patch.
func sameCore(c *goversion.Constraint, v *goversion.Version) bool {
	cv, err := goversion.NewVersion(strings.TrimLeft(c.String(), "<>=!~ "))
	return err != nil || cv.Core().Equal(v.Core())
}

// Newest is the newest version constraint allows, or an error saying what
// the feed has.
func Newest(vs []Version, constraint string, prerelease bool) (Version, error) {
	sel, err := Select(vs, constraint, prerelease)
	if err != nil {
		return Version{}, err
	}
	if len(sel) == 0 {
		if constraint == "" {
			constraint = "latest"
		}
		hint := "run `tentacle release list --prerelease` to see what it has"
		if len(vs) == 0 {
			hint = "the feed is empty"
		} else if !prerelease {
			hint = "pass --prerelease to include pre-releases, or run `tentacle release list --prerelease`"
		}
		return Version{}, fmt.Errorf("no version in the feed matches %q; %s", constraint, hint)
	}
	return sel[0], nil
}

// Platform is an OS and architecture as the artifact names spell them.
type Platform struct {
	OS   string // linux, darwin, windows
	Arch string // amd64, arm64, armv7
}

// HostPlatform is the machine this binary runs on (GOARCH arm is built as
// armv7).
func HostPlatform() Platform {
	arch := runtime.GOARCH
	if arch == "arm" {
		arch = "armv7"
	}
	return Platform{OS: runtime.GOOS, Arch: arch}
}

// Kind is a kind of artifact.
type Kind string

const (
	KindArchive Kind = "archive" // tar.gz (zip on Windows)
	KindDeb     Kind = "deb"
	KindRPM     Kind = "rpm"
	KindMSI     Kind = "msi" // the Windows installer, windows/amd64 only
	// The container images as OCI archives (`podman load`), linux/amd64
	// only, in releases built with TENTACLE_IMAGES=1.
	KindImage       Kind = "image"        // tentacle:VERSION, on Debian
	KindImageStatic Kind = "image-static" // tentacle:VERSION-static, FROM scratch
)

var (
	debArch = map[string]string{"amd64": "amd64", "arm64": "arm64", "armv7": "armhf"}
	rpmArch = map[string]string{"amd64": "x86_64", "arm64": "aarch64", "armv7": "armv7hl"}
)

// ArtifactName is the file name `make package` gives the artifact of kind
// for version on p (packaging/README.md).
func ArtifactName(kind Kind, version string, p Platform) (string, error) {
	arch := p.Arch
	if arch == "arm" {
		arch = "armv7"
	}
	// deb and rpm write the pre-release after ~, which sorts before the release.
	pkgVersion := strings.Replace(version, "-", "~", 1)
	switch kind {
	case KindArchive, "":
		if p.OS == "windows" {
			return fmt.Sprintf("tentacle_%s_%s_%s.zip", version, p.OS, arch), nil
		}
		return fmt.Sprintf("tentacle_%s_%s_%s.tar.gz", version, p.OS, arch), nil
	case KindMSI:
		if p.OS != "windows" || arch != "amd64" {
			return "", fmt.Errorf("the MSI is built for windows/amd64 only, not %s/%s; use --kind archive", p.OS, arch)
		}
		return fmt.Sprintf("tentacle_%s_windows_amd64.msi", version), nil
	case KindImage, KindImageStatic:
		// An image is always Linux, whatever machine downloads it to carry it.
		if arch != "amd64" {
			return "", fmt.Errorf("the container images are built for linux/amd64 only, not %s; pass --arch amd64", arch)
		}
		// The image's tag: a tag cannot hold the + of SemVer build metadata.
		tag := strings.ReplaceAll(version, "+", "-")
		if kind == KindImageStatic {
			tag += "-static"
		}
		return fmt.Sprintf("tentacle_%s_linux_amd64.oci.tar", tag), nil
	case KindDeb, KindRPM:
		if p.OS != "linux" {
			return "", fmt.Errorf("%s packages are built for linux only, not %s; use --kind archive", kind, p.OS)
		}
		if kind == KindDeb {
			a, ok := debArch[arch]
			if !ok {
				return "", fmt.Errorf("no deb is built for %s; choose --arch amd64, arm64 or armv7", arch)
			}
			return fmt.Sprintf("tentacle-go_%s-1_%s.deb", pkgVersion, a), nil
		}
		a, ok := rpmArch[arch]
		if !ok {
			return "", fmt.Errorf("no rpm is built for %s; choose --arch amd64, arm64 or armv7", arch)
		}
		return fmt.Sprintf("tentacle-go-%s-1.%s.rpm", pkgVersion, a), nil
	}
	return "", fmt.Errorf("unknown artifact kind %q; use archive, deb, rpm, msi, image or image-static", kind)
}
