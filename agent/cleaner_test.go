package agent

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tentacle-go/tentacle/agent/config"
	"github.com/tentacle-go/tentacle/agent/halibut"
)

// cleanerClock records the cleaner's requests to wait: one arrives after each pass.
type cleanerClock struct{ waits chan time.Duration }

func (cleanerClock) Now() time.Time { return time.Now() }
func (c cleanerClock) After(d time.Duration) <-chan time.Time {
	c.waits <- d
	return nil // the next pass never comes; the agent's shutdown ends the cleaner
}

// The running agent cleans its Work directory at start with upstream's environment
// variables: a leftover of upstream Tentacle older than TENTACLE_WORKSPACE_CLEANER_DELETE_OLDER_THAN
// goes, a younger one and a directory that is no workspace stay, and the next pass is
// TENTACLE_WORKSPACE_CLEANER_DELAY later.
func TestAgentCleansWorkspaces(t *testing.T) {
	home := t.TempDir()
	work := filepath.Join(home, "Work")
	leftover := func(ticket string, age time.Duration, files ...string) string {
		dir := filepath.Join(work, ticket)
		os.MkdirAll(dir, 0o700)
		at := time.Now().Add(-age)
		for _, f := range files {
			os.WriteFile(filepath.Join(dir, f), []byte("x"), 0o600)
			os.Chtimes(filepath.Join(dir, f), at, at)
		}
		return dir
	}
	old := leftover("ServerTasks-1", 4*24*time.Hour, "Output.log", "Bootstrap.sh", "scriptstate.json")
	young := leftover("ServerTasks-2", 2*24*time.Hour, "Output.log", "Bootstrap.sh")
	notWorkspace := leftover("Empty", 9*24*time.Hour, "notes.txt")

	cert, _ := config.GenerateCertificate()
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	s := config.NewSettings(filepath.Join(home, "t.config"))
	s.Set(config.KeyHome, home)
	s.Set(config.KeyPortNumber, strconv.Itoa(port))
	s.Set(config.KeyListenIP, "127.0.0.1")
	s.Set(config.KeyWorkspaceCleanerDelay, "01:00:00") // the environment wins
	env := map[string]string{
		"TENTACLE_WORKSPACE_CLEANER_DELETE_OLDER_THAN": "3.00:00:00",
		"TENTACLE_WORKSPACE_CLEANER_DELAY":             "00:10:00",
	}
	var logs bytes.Buffer
	clock := cleanerClock{waits: make(chan time.Duration, 1)}
	exe, _ := os.Executable()
	a, err := New(Options{Settings: s, Certificate: cert, MachineKey: config.NewUnixMachineKey(home), Limits: halibut.DefaultLimits(),
		Logger: slog.New(slog.NewTextHandler(&logs, nil)), Executable: exe, Getenv: func(k string) string { return env[k] },
		WorkspaceCleanerClock: clock})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	var next time.Duration
	select {
	case next = <-clock.waits:
	case <-time.After(30 * time.Second):
		t.Fatal("the agent ran no workspace cleaning pass")
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if next != 10*time.Minute {
		t.Errorf("next pass in %v, want TENTACLE_WORKSPACE_CLEANER_DELAY's 10 minutes", next)
	}
	if _, err := os.Stat(old); err == nil {
		t.Error("the four-day-old upstream workspace was not deleted")
	}
	for _, dir := range []string{young, notWorkspace} {
		if _, err := os.Stat(dir); err != nil {
			t.Errorf("%s was deleted", dir)
		}
	}
	for _, want := range []string{
		`level=INFO msg="workspace cleaner started" component=scripts delete_older_than=72h0m0s interval=10m0s`,
		`level=INFO msg="workspace cleaner deleted script workspace" component=scripts ticket=ServerTasks-1 last_written=`,
	} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("the log lacks %q:\n%s", want, logs.String())
		}
	}
}

// A value the agent cannot use is logged with what to do, and the default applies.
func TestAgentWarnsOfUnusableCleanerSettings(t *testing.T) {
	home := t.TempDir()
	s := config.NewSettings(filepath.Join(home, "t.config"))
	s.Set(config.KeyHome, home)
	s.Set(config.KeyListenIP, "127.0.0.1")
	cert, _ := config.GenerateCertificate()
	var logs bytes.Buffer
	a, err := New(Options{Settings: s, Certificate: cert, MachineKey: config.NewUnixMachineKey(home), Limits: halibut.DefaultLimits(),
		Logger: slog.New(slog.NewTextHandler(&logs, nil)), Executable: "/bin/true",
		Getenv: func(k string) string {
			if k == config.EnvWorkspaceCleanerDelay {
				return "2h"
			}
			return ""
		}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.close() })
	if a.cleaner.Interval != 2*time.Hour {
		t.Errorf("interval %v, want the default 2h", a.cleaner.Interval)
	}
	if want := `level=WARN msg="The environment variable TENTACLE_WORKSPACE_CLEANER_DELAY is ignored: invalid TimeSpan \"2h\"`; !strings.Contains(logs.String(), want) {
		t.Errorf("the log lacks %q:\n%s", want, logs.String())
	}
}
