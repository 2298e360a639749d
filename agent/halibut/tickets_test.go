package halibut

import (
	"crypto/tls"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

// resumes dials ep afresh, as a new process would, and reports whether TLS
// resumed a session.
func resumes(t *testing.T, ep Endpoint, own *tls.Certificate, tickets *TicketFiles, expected ...string) bool {
	t.Helper()
	u, _ := url.Parse(ep.BaseURI)
	if len(expected) == 0 {
		expected = []string{ep.Thumbprint}
	}
	c, err := dialHalibut(t.Context(), u.Host, u.Hostname(), expected, own, nil, tickets, testLimits())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.Conn.(*tls.Conn).ConnectionState().DidResume
}

func TestTicketsResumeTLSAcrossProcesses(t *testing.T) {
	_, cli, stranger := certs(t)
	_, ep := startListener(t, echoService(), Thumbprint(cli.Leaf), Thumbprint(stranger.Leaf))
	tickets := &TicketFiles{Dir: filepath.Join(t.TempDir(), "sessions")}
	if resumes(t, ep, cli, tickets) {
		t.Fatal("resumed with no ticket stored")
	}
	// A first "process": one call, which also reads the ticket the Tentacle sends.
	c1 := &Client{Certificate: cli, Limits: testLimits(), Tickets: tickets}
	if got, err := c1.Call(t.Context(), ep, "IEchoService", "Say", []any{"one"}, nil); err != nil || got != "you said: one" {
		t.Fatalf("%v %v", got, err)
	}
	c1.Close()
	files, _ := filepath.Glob(filepath.Join(tickets.Dir, "*.ticket"))
	if len(files) != 1 {
		t.Fatalf("ticket files: %v", files)
	}
	// Windows has no mode bits: the tickets inherit the ACL of the folder
	// they are in (beside the operator's PFX, in the user's profile).
	if runtime.GOOS != "windows" {
		if st, _ := os.Stat(files[0]); st.Mode().Perm() != 0o600 {
			t.Errorf("ticket file mode %v", st.Mode())
		}
		if st, _ := os.Stat(tickets.Dir); st.Mode().Perm() != 0o700 {
			t.Errorf("ticket directory mode %v", st.Mode())
		}
	}

	if !resumes(t, ep, cli, tickets) {
		t.Error("the next process did not resume the session")
	}
	// Another identity, or other expectations of the peer, never get this session.
	if resumes(t, ep, stranger, tickets) {
		t.Error("a session was resumed with another client certificate")
	}
	if resumes(t, ep, cli, tickets, ep.Thumbprint, Thumbprint(stranger.Leaf)) {
		t.Error("a session was resumed for other expected thumbprints")
	}
	// A damaged ticket file is a full handshake, not an error.
	os.WriteFile(files[0], []byte("TTK1\x00\x00\x00\x05garbage"), 0o600)
	if resumes(t, ep, cli, tickets) {
		t.Error("resumed from a damaged ticket")
	}
}

// A Tentacle that stops trusting us refuses a resumed session as it refuses a
// new one: trust is checked after every handshake, resumed or not.
func TestResumedSessionIsStillCheckedAgainstTrust(t *testing.T) {
	_, cli, _ := certs(t)
	l, ep := startListener(t, echoService())
	tickets := &TicketFiles{Dir: t.TempDir()}
	c1 := &Client{Certificate: cli, Limits: testLimits(), Tickets: tickets}
	if _, err := c1.Call(t.Context(), ep, "IEchoService", "Say", []any{"one"}, nil); err != nil {
		t.Fatal(err)
	}
	c1.Close()
	l.Trust.Replace(nil)
	if !resumes(t, ep, cli, tickets) {
		t.Fatal("the session was not resumed, so this test proves nothing")
	}
	c2 := newClient(t, cli)
	c2.Tickets = tickets
	if got, err := c2.Call(t.Context(), ep, "IEchoService", "Say", []any{"two"}, nil); err == nil {
		t.Fatalf("an untrusted client was served over a resumed session: %v", got)
	}
}
