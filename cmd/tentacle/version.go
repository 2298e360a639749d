package main

import (
	"strings"

	"github.com/tentacle-go/tentacle/internal/buildversion"
)

// Set at build time by -ldflags "-X main.version=... -X main.branch=...":
// a release is its tag without the v (1.2.3); the Makefile gives any other
// build 0.0.0-dev+<commit>[.dirty]. Without ldflags, buildversion.Of says the
// same from what the Go toolchain stamped into the binary.
var (
	version = ""
	branch  = "main"
)

// buildVersion is always SemVer, x.y.z with optional pre-release and build
// metadata, as upstream's version command prints and automation parses.
func buildVersion() string { return buildversion.Of(version) }

// VersionCmd is upstream's version.
type VersionCmd struct {
	formatFlag
}

// versionInfo is upstream's JSON shape.
type versionInfo struct {
	InformationalVersion string
	MajorMinorPatch      string
	NuGetVersion         string
	SourceBranchName     string
	IsPrerelease         bool
}

func currentVersion() versionInfo {
	v := buildVersion()
	nuget, _, _ := strings.Cut(v, "+")
	mmp, _, _ := strings.Cut(nuget, "-")
	return versionInfo{
		InformationalVersion: v,
		MajorMinorPatch:      mmp,
		NuGetVersion:         nuget,
		SourceBranchName:     branch,
		IsPrerelease:         strings.Contains(nuget, "-"),
	}
}

func (c *VersionCmd) Run(e *Env) error {
	asJSON, err := c.json()
	if err != nil {
		return err
	}
	info := currentVersion()
	if asJSON {
		return writeJSON(e, info)
	}
	_, err = e.Stdout.Write([]byte(info.InformationalVersion + newlineIfTTY(e)))
	return err
}
