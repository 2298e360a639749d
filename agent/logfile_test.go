package agent

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tentacle-go/tentacle/agent/config"
	"github.com/tentacle-go/tentacle/agent/halibut"
)

// The console gets what upstream's NLog targets give it: the bare message,
// Info and Warn on stdout, Error on stderr; the file gets every line with
// upstream's time, PID and level columns.
func TestLogHandlerSplitsConsoleAndFileAsUpstream(t *testing.T) {
	var file, stdout, stderr bytes.Buffer
	at := time.Date(2025, 3, 4, 5, 6, 7, 891234567, time.UTC)
	h := NewLogHandler(&LogHandlerOptions{File: &file, Stdout: &stdout, Stderr: &stderr, Level: slog.LevelInfo, Now: func() time.Time { return at }, PID: 42})
	log := slog.New(h).With("component", "poller").WithGroup("conn")
	log.Debug("not shown")
	log.Info("Agent listening on: [::]:10933")
	log.Warn("slow", "took", 2*time.Second)
	log.Error("failed", "err", errors.New("connection refused"), "note", "")

	wantOut := "Agent listening on: [::]:10933 component=poller\nslow component=poller conn.took=2s\n"
	if stdout.String() != wantOut {
		t.Errorf("stdout:\n%q\nwant\n%q", stdout.String(), wantOut)
	}
	wantErr := "failed component=poller conn.err=\"connection refused\" conn.note=\"\"\n"
	if stderr.String() != wantErr {
		t.Errorf("stderr:\n%q\nwant\n%q", stderr.String(), wantErr)
	}
	lines := strings.Split(strings.TrimSuffix(file.String(), "\n"), "\n")
	if len(lines) != 3 {
		t.Fatalf("file has %d lines:\n%s", len(lines), file.String())
	}
	// slog stamps records itself; only the layout is fixed.
	layout := regexp.MustCompile(`^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{4}     42  ( INFO| WARN|ERROR)  \S`)
	for _, l := range lines {
		if !layout.MatchString(l) {
			t.Errorf("file line not in upstream's layout: %q", l)
		}
	}
	// A record without a time uses Now, with NLog's four fractional digits.
	file.Reset()
	_ = h.Handle(context.Background(), slog.Record{Level: slog.LevelInfo, Message: "x"})
	if got := file.String(); got != "2025-03-04 05:06:07.8912     42   INFO  x\n" {
		t.Errorf("file line %q", got)
	}
}

// --noconsolelogging leaves Stdout unset: nothing on stdout, errors still
// on stderr, the file unchanged.
func TestLogHandlerWithoutStdoutStillReportsErrors(t *testing.T) {
	var file, stderr bytes.Buffer
	log := slog.New(NewLogHandler(&LogHandlerOptions{File: &file, Stderr: &stderr}))
	log.Info("quiet")
	log.Error("loud")
	if stderr.String() != "loud\n" || strings.Count(file.String(), "\n") != 2 {
		t.Errorf("stderr %q file %q", stderr.String(), file.String())
	}
}

// Port 0 is any free port, as upstream; the port the agent got is in
// upstream's lines, which its tooling parses with this expression.
func TestAgentOnPortZeroLogsTheChosenPortAsUpstream(t *testing.T) {
	home := t.TempDir()
	operator, _ := config.GenerateCertificate()
	cert, _ := config.GenerateCertificate()
	s := config.NewSettings(filepath.Join(home, "t.config"))
	s.Set(config.KeyHome, home)
	s.Set(config.KeyPortNumber, "0")
	s.Set(config.KeyListenIP, "127.0.0.1")
	s.SetTrustedServers([]config.TrustedServer{{Thumbprint: operator.Thumbprint(), CommunicationStyle: config.StyleTentaclePassive}})
	var stdout, stderr bytes.Buffer
	a, err := New(Options{Settings: s, Certificate: cert, MachineKey: config.NewUnixMachineKey(home), Limits: halibut.DefaultLimits(),
		Logger:     slog.New(NewLogHandler(&LogHandlerOptions{Stdout: &stdout, Stderr: &stderr})),
		Executable: os.Args[0], Getenv: func(string) string { return "" }})
	if err != nil {
		t.Fatal(err)
	}
	if d := a.Describe(); d != "listening on a free port the system chooses" {
		t.Errorf("Describe before Run: %q", d)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	addr, ok := a.Addr().(*net.TCPAddr)
	if !ok || addr.Port == 0 {
		t.Fatalf("listening on %v", a.Addr())
	}
	// The agent really listens there.
	c, err := net.Dial("tcp", addr.String())
	if err != nil {
		t.Fatalf("dial the chosen port: %v", err)
	}
	c.Close()
	if d := a.Describe(); d != "listening on "+addr.String() {
		t.Errorf("Describe after start: %q", d)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	out := stdout.String()
	portRE := regexp.MustCompile(`listen://.+:(\d+)/`) // upstream's TentacleBuilder
	var started string
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, "Listener started") {
			started = l
		}
	}
	if m := portRE.FindStringSubmatch(started); m == nil || m[1] != strconv.Itoa(addr.Port) {
		t.Errorf("no \"Listener started\" line with listen://IP:%d/:\n%s", addr.Port, out)
	}
	for _, want := range []string{
		"Agent will trust Octopus Servers with the thumbprint: " + operator.Thumbprint() + "\n",
		"Agent listening on: " + addr.String() + " ",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("stdout lacks %q:\n%s", want, out)
		}
	}
	if strings.Index(out, "Listener started") > strings.Index(out, "Agent listening on") {
		t.Errorf("upstream's tooling reads the port before \"Agent listening on\":\n%s", out)
	}
	if stderr.Len() != 0 {
		t.Errorf("stderr: %s", stderr.String())
	}
}

// A polling-only agent says upstream's "Agent will not listen on any TCP
// ports", after its polling lines: upstream's tooling takes it as started.
func TestPollingOnlyAgentSaysItWillNotListen(t *testing.T) {
	home := t.TempDir()
	server, _ := config.GenerateCertificate()
	cert, _ := config.GenerateCertificate()
	ln, _ := net.Listen("tcp", "127.0.0.1:0") // a server that accepts and says nothing
	defer ln.Close()
	s := config.NewSettings(filepath.Join(home, "t.config"))
	s.Set(config.KeyHome, home)
	s.Set(config.KeyNoListen, "True")
	s.SetTrustedServers([]config.TrustedServer{{Thumbprint: server.Thumbprint(), CommunicationStyle: config.StyleTentacleActive,
		Address: "https://" + ln.Addr().String() + "/", SubscriptionID: "poll://abcdefghijklmnopqrst/"}})
	var stdout bytes.Buffer
	a, err := New(Options{Settings: s, Certificate: cert, MachineKey: config.NewUnixMachineKey(home), Limits: halibut.DefaultLimits(),
		Logger:     slog.New(NewLogHandler(&LogHandlerOptions{Stdout: &stdout})),
		Executable: os.Args[0], Getenv: func(string) string { return "" }})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	if a.Addr() != nil {
		t.Errorf("a polling-only agent listens on %v", a.Addr())
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	out := stdout.String()
	poll := strings.Index(out, "Agent will poll Octopus Server at https://"+ln.Addr().String()+"/ for subscription poll://abcdefghijklmnopqrst/ expecting thumbprint "+server.Thumbprint()+"\n")
	count := strings.Index(out, "Starting 1 polling connections\n")
	noListen := strings.Index(out, "Agent will not listen on any TCP ports\n")
	if poll < 0 || count < poll || noListen < count {
		t.Errorf("upstream's polling lines missing or out of order:\n%s", out)
	}
}
