package main

import (
	"runtime/debug"
	"strings"
)

// Set at build time by -ldflags "-X main.version=... -X main.branch=...":
// a release is its tag without the v (1.2.3); the Makefile gives any other
// build 0.0.0-dev+<commit>[.dirty]. Without ldflags, devVersion says the same
// from what the Go toolchain stamped into the binary.
var (
	version = ""
	branch  = "main"
)

// buildVersion is always SemVer, x.y.z with optional pre-release and build
// metadata, as upstream's version command prints and automation parses.
func buildVersion() string {
	if version != "" {
		return strings.TrimPrefix(version, "v")
	}
	return devVersion()
}

func devVersion() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "0.0.0-dev"
	}
	// `go install ...@v1.2.3` stamps the module's version.
	if v := info.Main.Version; strings.HasPrefix(v, "v") && v != "(devel)" {
		return strings.TrimPrefix(v, "v")
	}
	var rev string
	var dirty bool
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if rev == "" {
		return "0.0.0-dev"
	}
	v := "0.0.0-dev+" + rev[:min(len(rev), 12)]
	if dirty {
		v += ".dirty"
	}
	return v
}

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
