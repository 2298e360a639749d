//go:build !windows

package scripts

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// BenchmarkEchoRoundTrip measures what one short remote command costs the agent: Start
// with a wait (workspace, state, supervisor process, bash) until Complete, then Complete.
func BenchmarkEchoRoundTrip(b *testing.B) {
	m, err := NewManager(Config{Home: b.TempDir(), Environment: []string{leakMarker}})
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	i := 0
	for b.Loop() {
		i++
		ticket := fmt.Sprintf("Echo%d", i)
		st, err := m.Start(context.Background(), StartRequest{Ticket: ticket, ScriptBody: "echo hi", WaitForFinish: 10 * time.Second})
		if err != nil || st.State != Complete || st.ExitCode != 0 {
			b.Fatal(err, st.State, st.ExitCode)
		}
		if err := m.Complete(ticket); err != nil {
			b.Fatal(err)
		}
	}
}
