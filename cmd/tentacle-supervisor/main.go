// Command tentacle-supervisor runs script supervisors for the tentacle agent, the way
// `tentacle internal-script-supervisor` does, without the rest of the program: no CLI,
// no TLS, no cloud SDKs. An agent starts one per running script (agent/scripts), so what
// a process of this program costs is paid once per script: here ~1.1 MB of anonymous
// memory and ~6 ms to start, against ~2.4 MB and ~23 ms for the whole tentacle binary,
// whose cloud SDKs do work and allocate tables at start-up that Go cannot defer.
//
// It is optional: an agent uses it only when it lies beside its own executable (or in
// ../libexec/tentacle) and comes from the same build, and otherwise re-executes itself
// (scripts.FindSupervisor).
package main

import (
	"fmt"
	"os"

	"github.com/tentacle-go/tentacle/agent/scripts"
	"github.com/tentacle-go/tentacle/internal/buildversion"
)

// Set at build time by -ldflags "-X main.version=...", as for tentacle.
var version = ""

func main() {
	switch {
	case len(os.Args) > 1 && os.Args[1] == scripts.SupervisorArg:
		os.Exit(scripts.Supervise(os.Args[2:]))
	case len(os.Args) == 2 && os.Args[1] == "version":
		fmt.Println(buildversion.Of(version))
	default:
		fmt.Fprintf(os.Stderr, "%s runs script supervisors for the tentacle agent; it is not meant to be run by hand.\n"+
			"usage: %[1]s version | %[1]s %[2]s <workspace> <token>\n", scripts.SupervisorProgram, scripts.SupervisorArg)
		os.Exit(2)
	}
}
