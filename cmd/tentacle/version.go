package main

import (
	"strings"
)

// Set at build time by -ldflags "-X main.version=... -X main.branch=...".
var (
	version = "0.0.0-local"
	branch  = "main"
)

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
	v := strings.TrimPrefix(version, "v")
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
