// Package scripttest follows scripts on an agent the way an Octopus Server
// does, for the end-to-end tests of several packages (cmd/tentacle,
// packaging) that drive a real agent.
package scripttest

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/tentacle-go/tentacle/agent/contracts"
)

// RunToCompletion follows a script from log sequence from until it is
// complete and returns its output lines (without the agent's verbose
// preamble and debug lines) and its exit code.
func RunToCompletion(t testing.TB, s contracts.ScriptServiceV2Client, ticket string, from int64) ([]string, int32) {
	t.Helper()
	var out Output
	seq := from
	deadline := time.Now().Add(60 * time.Second)
	for {
		st, err := s.GetStatus(context.Background(), contracts.ScriptStatusRequestV2{Ticket: contracts.ScriptTicket{TaskID: ticket}, LastLogSequence: seq})
		if err != nil {
			t.Fatal(err)
		}
		out.Add(st.Logs)
		seq = st.NextLogSequence
		if st.State == contracts.StateComplete {
			return out.Lines, st.ExitCode
		}
		if time.Now().After(deadline) {
			t.Fatalf("script %s did not finish", ticket)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Output collects a script's own output lines from GetStatus pages, leaving out
// the agent's verbose preamble and debug lines.
type Output struct {
	Lines   []string
	verbose bool // inside ##octopus[stdout-verbose] ... ##octopus[stdout-default]
}

// Add takes the records of one page.
func (o *Output) Add(logs []contracts.ProcessOutput) {
	for _, l := range logs {
		switch {
		case strings.HasPrefix(l.Text, "##octopus[stdout-verbose]"):
			o.verbose = true
		case strings.HasPrefix(l.Text, "##octopus[stdout-"):
			o.verbose = false
		case l.Source != contracts.SourceDebug && !o.verbose:
			o.Lines = append(o.Lines, l.Text)
		}
	}
}
