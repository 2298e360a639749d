// Package buildversion says which build of the project a binary is, the same way in
// every program of it (tentacle and tentacle-supervisor), so that one can check that
// the other comes from the same build.
package buildversion

import (
	"runtime/debug"
	"strings"
)

// Of is the SemVer version of this build (x.y.z, optional pre-release and build
// metadata), as upstream's version command prints and automation parses. stamped is
// what the build set with -ldflags "-X main.version=...": a release is its tag without
// the v (1.2.3); the Makefile gives any other build 0.0.0-dev+<commit>[.dirty]. Without
// it, the version comes from what the Go toolchain stamped into the binary.
func Of(stamped string) string {
	if stamped != "" {
		return strings.TrimPrefix(stamped, "v")
	}
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
