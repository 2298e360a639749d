//go:build !windows

package scripts

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// testClock is a Clock the test drives: each pass of the cleaner ends by asking it for a
// wake-up, which the test sees on waits and answers with advance.
type testClock struct {
	mu    sync.Mutex
	now   time.Time
	waits chan testWakeup
}

type testWakeup struct {
	d    time.Duration
	fire chan time.Time
}

func newTestClock(now time.Time) *testClock {
	return &testClock{now: now, waits: make(chan testWakeup, 16)}
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) After(d time.Duration) <-chan time.Time {
	w := testWakeup{d: d, fire: make(chan time.Time, 1)}
	c.waits <- w
	return w.fire
}

// passDone waits until the cleaner has finished a pass and returns its wake-up request.
func (c *testClock) passDone(t *testing.T) testWakeup {
	t.Helper()
	select {
	case w := <-c.waits:
		return w
	case <-time.After(30 * time.Second):
		t.Fatal("the workspace cleaner did not finish a pass")
		return testWakeup{}
	}
}

// advance moves the time on by what the cleaner asked to wait for, and wakes it.
func (c *testClock) advance(w testWakeup) {
	c.mu.Lock()
	c.now = c.now.Add(w.d)
	now := c.now
	c.mu.Unlock()
	w.fire <- now
}

// runCleaner runs the periodic cleaner until the end of the test.
func runCleaner(t *testing.T, m *Manager, clock *testClock, olderThan time.Duration) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- m.RunWorkspaceCleaner(ctx, CleanerConfig{Interval: 2 * time.Hour, DeleteOlderThan: olderThan, Clock: clock})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
}

// writeAgedFiles creates dir with the given files, all last written age ago.
func writeAgedFiles(t *testing.T, dir string, age time.Duration, files ...string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	at := time.Now().Add(-age)
	for _, name := range files {
		p := filepath.Join(dir, name)
		os.MkdirAll(filepath.Dir(p), 0o700)
		if err := os.WriteFile(p, []byte("left over\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, at, at); err != nil {
			t.Fatal(err)
		}
	}
}

func exists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}

func noTombstones(t *testing.T, m *Manager) {
	t.Helper()
	entries, _ := os.ReadDir(m.work)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), tombstonePrefix) {
			t.Errorf("deleted workspace left behind: %s", e.Name())
		}
	}
}

// waitingScript prints "started", then waits until release exists.
func waitingScript(release string) string {
	return "echo started; while [ ! -e '" + release + "' ]; do sleep 0.05; done; echo released"
}

// Upstream: WhenScriptServiceIsRunningAndWritesLogFile_ThenWorkspaceIsNotDeleted and
// WhenScriptServiceIsRunningAndWritesBootstrapScript_ThenWorkspaceIsNotDeleted. The
// cleaner's clock is two days ahead, so the running script's files look as old as the
// leftovers': only its being live protects it.
func TestCleanerNeverTouchesARunningScript(t *testing.T) {
	for _, leftover := range []string{upstreamLogFileName, bashBootstrapName} {
		t.Run(leftover, func(t *testing.T) {
			cfg := testConfig(t)
			m := newTestManager(t, cfg)
			release := filepath.Join(t.TempDir(), "release")
			mustStart(t, m, StartRequest{Ticket: "Running", ScriptBody: waitingScript(release)})
			waitForLine(t, m, "Running", "started", 10*time.Second)
			old := filepath.Join(m.work, "0b5e2c1e-5d5a-4a8e-9a51-1c1f0d7e2a11")
			writeAgedFiles(t, old, time.Hour, leftover)

			clock := newTestClock(time.Now().Add(48 * time.Hour))
			runCleaner(t, m, clock, time.Hour)
			clock.passDone(t)
			if exists(old) {
				t.Errorf("the abandoned workspace with %s was not deleted", leftover)
			}
			if !exists(filepath.Join(m.workspace("Running"), bashBootstrapName)) {
				t.Fatal("the running script's workspace was touched")
			}
			if st, _ := m.Status("Running", 0); st.State != Running {
				t.Fatalf("running script is %v", st.State)
			}
			os.WriteFile(release, nil, 0o600)
			st := waitComplete(t, m, "Running", 10*time.Second)
			if st.ExitCode != 0 || !slices.Contains(texts(st.Logs, StdOut), "released") {
				t.Fatalf("the script did not run to its end: exit %d\n%s", st.ExitCode, logText(st.Logs))
			}
			noTombstones(t, m)
		})
	}
}

// Upstream: WhenCompleteScriptIsNotCalled_ThenWorkspaceShouldGetDeletedWhenScriptFinishesRunning.
// A finished script the server never completed is kept while young, deleted once old,
// and its ticket then reads as unknown and can be started afresh.
func TestCleanerDeletesFinishedScriptNeverCompleted(t *testing.T) {
	m := newTestManager(t, testConfig(t))
	st := mustStart(t, m, StartRequest{Ticket: "NeverCompleted", ScriptBody: "echo Hello", WaitForFinish: 10 * time.Second})
	if st.State != Complete || st.ExitCode != 0 {
		t.Fatalf("%+v", st)
	}
	clock := newTestClock(time.Now())
	runCleaner(t, m, clock, 24*time.Hour)
	wake := clock.passDone(t)
	if wake.d != 2*time.Hour {
		t.Errorf("next pass in %v, want the interval 2h", wake.d)
	}
	if !exists(m.workspace("NeverCompleted")) {
		t.Fatal("a workspace younger than the limit was deleted")
	}
	// Twelve passes later it is a day old.
	for range 12 {
		clock.advance(wake)
		wake = clock.passDone(t)
	}
	if exists(m.workspace("NeverCompleted")) {
		t.Fatal("the finished, never completed workspace is still there a day later")
	}
	if st, err := m.Status("NeverCompleted", 0); err != nil || st.State != Complete || st.ExitCode != ExitCodeUnknownScript {
		t.Fatalf("status after cleaning: %+v %v", st, err)
	}
	if st := mustStart(t, m, StartRequest{Ticket: "NeverCompleted", ScriptBody: "exit 5", WaitForFinish: 10 * time.Second}); st.ExitCode != 5 {
		t.Fatalf("the ticket cannot be used again: %+v", st)
	}
	noTombstones(t, m)
}

// Upstream: WhenTentacleStarts_WithWorkspacesOlderThanThreshold_ThenWorkspaceWithLogFileIsDeleted
// and ..._ThenWorkspaceWithBootstrapFileIsDeleted: the first pass runs at start; a
// ticket-named directory with neither a log nor a bootstrap script is not a workspace.
func TestCleanerAtStartDeletesOldWorkspaces(t *testing.T) {
	for _, leftover := range []string{upstreamLogFileName, logFileName, bashBootstrapName, powerShellBootstrapName} {
		t.Run(leftover, func(t *testing.T) {
			cfg := testConfig(t)
			work := filepath.Join(cfg.Home, "Work")
			withFile := filepath.Join(work, "WithFile")
			writeAgedFiles(t, withFile, 2*time.Second, leftover, "Script.sh", "sub/data.txt")
			notWorkspace := filepath.Join(work, "NotAWorkspace")
			writeAgedFiles(t, notWorkspace, 2*time.Second, "Other.txt")
			m := newTestManager(t, cfg)
			clock := newTestClock(time.Now())
			runCleaner(t, m, clock, time.Second)
			clock.passDone(t)
			if exists(withFile) {
				t.Error("an old workspace was not deleted at start")
			}
			if !exists(filepath.Join(notWorkspace, "Other.txt")) {
				t.Error("a directory that is not a workspace was deleted")
			}
			noTombstones(t, m)
		})
	}
}

// Upstream: WhenTentacleStarts_WithWorkspaceYoungerThanThreshold_ThenWorkspaceIsLeftAlone.
func TestCleanerLeavesYoungWorkspaces(t *testing.T) {
	cfg := testConfig(t)
	young := filepath.Join(cfg.Home, "Work", "Young")
	writeAgedFiles(t, young, 29*time.Minute, upstreamLogFileName, bashBootstrapName)
	m := newTestManager(t, cfg)
	clock := newTestClock(time.Now())
	runCleaner(t, m, clock, 30*time.Minute)
	clock.passDone(t)
	if !exists(filepath.Join(young, upstreamLogFileName)) {
		t.Fatal("a workspace younger than the limit was deleted")
	}
}

// The log's age decides, not the bootstrap script's: a script that ran for days after its
// bootstrap was written is kept until its last output is old.
func TestCleanerJudgesByTheLogFirst(t *testing.T) {
	cfg := testConfig(t)
	work := filepath.Join(cfg.Home, "Work")
	dir := filepath.Join(work, "LongRunner")
	writeAgedFiles(t, dir, 72*time.Hour, bashBootstrapName)
	writeAgedFiles(t, dir, time.Hour, upstreamLogFileName)
	m := newTestManager(t, cfg)
	if got := m.CleanWorkspaces(time.Now(), 24*time.Hour); len(got) != 0 || !exists(dir) {
		t.Fatalf("deleted %v although the log is an hour old", got)
	}
	if got := m.CleanWorkspaces(time.Now().Add(24*time.Hour), 24*time.Hour); !slices.Equal(got, []string{"LongRunner"}) || exists(dir) {
		t.Fatalf("deleted %v; the log is now a day old", got)
	}
}

// A workspace left by upstream Tentacle, with its own scriptstate.json, startup-detection
// files and script files: adopted as an unknown result (which writes our log), and still
// judged by upstream's Output.log.
func TestCleanerDeletesUpstreamLeftovers(t *testing.T) {
	cfg := testConfig(t)
	work := filepath.Join(cfg.Home, "Work")
	oldLeft := filepath.Join(work, "ServerTasks-1234")
	writeAgedFiles(t, oldLeft, 48*time.Hour, upstreamLogFileName, bashBootstrapName, powerShellBootstrapName,
		"Octopus.Action.Script.ps1", "Variables.secret", "shouldrun.txt", "started.txt")
	os.WriteFile(filepath.Join(oldLeft, stateFileName),
		[]byte(`{"Created":"2024-05-01T10:00:00+00:00","Started":"2024-05-01T10:00:01+00:00","State":1}`), 0o600)
	youngLeft := filepath.Join(work, "ServerTasks-5678")
	writeAgedFiles(t, youngLeft, time.Hour, upstreamLogFileName, bashBootstrapName)
	os.WriteFile(filepath.Join(youngLeft, stateFileName), []byte(`{"Created":"2024-05-01T10:00:00+00:00","State":2,"ExitCode":0}`), 0o600)

	m := newTestManager(t, cfg)
	if st, _ := m.Status("ServerTasks-1234", 0); st.ExitCode != ExitCodeUnknownResult || !exists(filepath.Join(oldLeft, logFileName)) {
		t.Fatalf("upstream's running script was not adopted as an unknown result: %+v", st)
	}
	got := m.CleanWorkspaces(time.Now(), 24*time.Hour)
	if !slices.Equal(got, []string{"ServerTasks-1234"}) || exists(oldLeft) || !exists(youngLeft) {
		t.Fatalf("deleted %v; want only the upstream workspace whose Output.log is two days old", got)
	}
	if st, _ := m.Status("ServerTasks-1234", 0); st.ExitCode != ExitCodeUnknownScript {
		t.Fatalf("deleted ticket still known: %+v", st)
	}
	noTombstones(t, m)
}

// Nothing but ticket-named workspace directories directly in this instance's Work is ever
// deleted: not other names, files, symbolic links (or what they point to), another
// instance's home nested there, or another instance's Work.
func TestCleanerDeletesOnlyTicketWorkspaces(t *testing.T) {
	cfg := testConfig(t)
	work := filepath.Join(cfg.Home, "Work")
	age := 48 * time.Hour
	outside := t.TempDir()
	otherInstanceWork := filepath.Join(outside, "OtherInstance", "Work", "OtherTicket")
	writeAgedFiles(t, otherInstanceWork, age, upstreamLogFileName, bashBootstrapName)
	linkTarget := filepath.Join(outside, "LinkTarget")
	writeAgedFiles(t, linkTarget, age, upstreamLogFileName)
	writeAgedFiles(t, filepath.Join(work, ".hidden"), age, upstreamLogFileName)
	writeAgedFiles(t, filepath.Join(work, "has space"), age, upstreamLogFileName)
	writeAgedFiles(t, filepath.Join(work, "NestedHome"), age, "tentacle.config", "Work/T1/"+upstreamLogFileName, "Work/T1/"+bashBootstrapName)
	writeAgedFiles(t, work, age, "LooseFile", upstreamLogFileName)
	os.Symlink(linkTarget, filepath.Join(work, "LinkedTicket"))
	writeAgedFiles(t, filepath.Join(work, "LinkedLog"), age, bashBootstrapName)
	os.Symlink(filepath.Join(linkTarget, upstreamLogFileName), filepath.Join(work, "LinkedLog", upstreamLogFileName))
	writeAgedFiles(t, filepath.Join(work, "Abandoned"), age, upstreamLogFileName)

	m := newTestManager(t, cfg)
	if got := m.CleanWorkspaces(time.Now(), 24*time.Hour); !slices.Equal(got, []string{"Abandoned", "LinkedLog"}) {
		t.Fatalf("deleted %v, want [Abandoned LinkedLog]", got)
	}
	for _, p := range []string{
		filepath.Join(otherInstanceWork, upstreamLogFileName),
		filepath.Join(linkTarget, upstreamLogFileName),
		filepath.Join(work, ".hidden", upstreamLogFileName),
		filepath.Join(work, "has space", upstreamLogFileName),
		filepath.Join(work, "NestedHome", "Work", "T1", upstreamLogFileName),
		filepath.Join(work, "LooseFile"),
		filepath.Join(work, upstreamLogFileName),
		filepath.Join(work, "LinkedTicket"),
	} {
		if !exists(p) {
			t.Errorf("%s was deleted", p)
		}
	}
}

// A script waiting for its isolation mutex, and one whose workspace is still being
// written by Start, are live although their files look old.
func TestCleanerNeverTouchesPendingOrPreparingScripts(t *testing.T) {
	m := newTestManager(t, testConfig(t))
	release := filepath.Join(t.TempDir(), "release")
	mustStart(t, m, StartRequest{Ticket: "Holder", Isolation: FullIsolation, ScriptBody: waitingScript(release)})
	waitForLine(t, m, "Holder", "started", 10*time.Second)
	mustStart(t, m, StartRequest{Ticket: "Waiter", Isolation: FullIsolation, ScriptBody: "echo waited"})
	waitForLine(t, m, "Waiter", "##octopus[stdout-wait]", 10*time.Second)

	// Start blocks while it copies a script file the test has not finished sending.
	body, send := io.Pipe()
	t.Cleanup(func() { send.Close() }) // lets Start go on should the test fail half-way
	preparing := make(chan Status, 1)
	go func() {
		st, err := m.Start(context.Background(), StartRequest{Ticket: "Preparing", ScriptBody: "cat data.txt",
			Files: []ScriptFile{{Name: "data.txt", Contents: body}}, WaitForFinish: 20 * time.Second})
		if err != nil {
			t.Error(err)
		}
		preparing <- st
	}()
	// Once the first bytes are taken, Start is inside the workspace it is writing.
	send.Write([]byte("first half "))
	if !exists(filepath.Join(m.workspace("Preparing"), bashBootstrapName)) {
		t.Fatal("Start took script file bytes before writing the bootstrap script")
	}

	if got := m.CleanWorkspaces(time.Now().Add(48*time.Hour), time.Hour); len(got) != 0 {
		t.Fatalf("deleted live workspaces %v", got)
	}
	send.Write([]byte("second half"))
	send.Close()
	os.WriteFile(release, nil, 0o600)
	if st := <-preparing; st.ExitCode != 0 || !slices.Contains(texts(st.Logs, StdOut), "first half second half") {
		t.Fatalf("the script prepared during cleaning: exit %d\n%s", st.ExitCode, logText(st.Logs))
	}
	if st := waitComplete(t, m, "Waiter", 10*time.Second); st.ExitCode != 0 || !slices.Contains(texts(st.Logs, StdOut), "waited") {
		t.Fatalf("the waiting script: exit %d\n%s", st.ExitCode, logText(st.Logs))
	}
}

// After an agent restart the script manager re-attaches to running scripts; the cleaner
// of the new agent leaves them alone, and deletes them once they finished and aged.
func TestCleanerNeverTouchesAReattachedScript(t *testing.T) {
	cfg := testConfig(t)
	m1, err := NewManager(cfg)
	if err != nil {
		t.Fatal(err)
	}
	release := filepath.Join(t.TempDir(), "release")
	mustStart(t, m1, StartRequest{Ticket: "Survivor", ScriptBody: waitingScript(release)})
	waitForLine(t, m1, "Survivor", "started", 10*time.Second)
	m1.Close()

	m2 := newTestManager(t, cfg)
	clock := newTestClock(time.Now().Add(48 * time.Hour))
	runCleaner(t, m2, clock, time.Hour)
	wake := clock.passDone(t)
	if !exists(filepath.Join(m2.workspace("Survivor"), logFileName)) {
		t.Fatal("the re-attached script's workspace was touched")
	}
	os.WriteFile(release, nil, 0o600)
	if st := waitComplete(t, m2, "Survivor", 10*time.Second); st.ExitCode != 0 || !slices.Contains(texts(st.Logs, StdOut), "released") {
		t.Fatalf("exit %d\n%s", st.ExitCode, logText(st.Logs))
	}
	// The Manager notices the end within ReattachPollInterval; until then it is live.
	deadline := time.Now().Add(10 * time.Second)
	for exists(m2.workspace("Survivor")) {
		if time.Now().After(deadline) {
			t.Fatal("the finished script's workspace was not deleted")
		}
		clock.advance(wake)
		wake = clock.passDone(t)
	}
}

// A workspace whose supervisor lock is held by some process is not deleted, whatever the
// Manager believes.
func TestCleanerSkipsAWorkspaceWhoseSupervisorLockIsHeld(t *testing.T) {
	cfg := testConfig(t)
	dir := filepath.Join(cfg.Home, "Work", "Locked")
	writeAgedFiles(t, dir, 48*time.Hour, upstreamLogFileName)
	lock, err := lockFile(filepath.Join(dir, supervisorLockName), false)
	if err != nil {
		t.Fatal(err)
	}
	m := newTestManager(t, cfg)
	if got := m.CleanWorkspaces(time.Now(), time.Hour); len(got) != 0 {
		t.Fatalf("deleted %v while its supervisor lock is held", got)
	}
	lock.unlock()
	if got := m.CleanWorkspaces(time.Now(), time.Hour); !slices.Equal(got, []string{"Locked"}) {
		t.Fatalf("deleted %v once the lock is free", got)
	}
}

// Starts racing with cleaner passes, each ticket over an old leftover of the same name:
// the cleaner may delete a leftover before its Start, never the fresh workspace after.
func TestCleanerRacingStarts(t *testing.T) {
	m := newTestManager(t, testConfig(t))
	const n = 12
	for i := range n {
		writeAgedFiles(t, m.workspace(fmt.Sprintf("Race%d", i)), 48*time.Hour, bashBootstrapName)
	}
	stop := make(chan struct{})
	var cleaner sync.WaitGroup
	cleaner.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
				m.CleanWorkspaces(time.Now(), time.Hour)
				time.Sleep(time.Millisecond)
			}
		}
	})
	var starts sync.WaitGroup
	for i := range n {
		starts.Go(func() {
			ticket := fmt.Sprintf("Race%d", i)
			st, err := m.Start(context.Background(), StartRequest{Ticket: ticket, ScriptBody: "echo " + ticket, WaitForFinish: 20 * time.Second})
			if err != nil {
				t.Errorf("%s: %v", ticket, err)
				return
			}
			if st.State != Complete || st.ExitCode != 0 || !slices.Contains(texts(st.Logs, StdOut), ticket) {
				t.Errorf("%s: %v exit %d\n%s", ticket, st.State, st.ExitCode, logText(st.Logs))
			}
		})
	}
	starts.Wait()
	close(stop)
	cleaner.Wait()
	for i := range n {
		if st, _ := m.Status(fmt.Sprintf("Race%d", i), 0); st.ExitCode != 0 {
			t.Errorf("Race%d after the race: %+v", i, st)
		}
	}
}

func TestCleanerConfigIsChecked(t *testing.T) {
	m := newTestManager(t, testConfig(t))
	if err := m.RunWorkspaceCleaner(context.Background(), CleanerConfig{Interval: 0, DeleteOlderThan: time.Hour}); err == nil {
		t.Error("a zero interval was accepted")
	}
	if err := m.RunWorkspaceCleaner(context.Background(), CleanerConfig{Interval: time.Hour, DeleteOlderThan: -time.Second}); err == nil {
		t.Error("a negative age limit was accepted")
	}
	// A closed Manager ends the cleaner.
	m.Close()
	clock := newTestClock(time.Now())
	if err := m.RunWorkspaceCleaner(context.Background(), CleanerConfig{Interval: time.Hour, Clock: clock}); err != nil {
		t.Fatal(err)
	}
}
