package scripts

import (
	"bufio"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// announced runs end on s with a result pipe and returns the code announced on it, with
// the state file as it was when the announcement arrived; ok is false if nothing was.
func announced(t *testing.T, s *supervisor, code int) (got int, st *scriptState, ok bool) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	s.result = w
	type reading struct {
		line string
		st   *scriptState
		err  error
	}
	read := make(chan reading, 1)
	go func() {
		line, err := bufio.NewReader(r).ReadString('\n')
		var st *scriptState
		if err == nil {
			st, err = readState(s.dir) // before the supervisor goes on
		}
		read <- reading{line, st, err}
	}()
	s.end(code, true)
	w.Close() // announceResult closed it already if it announced
	got1 := <-read
	if got1.err != nil {
		return 0, nil, false
	}
	n, err := strconv.Atoi(strings.TrimSpace(got1.line))
	if err != nil {
		t.Fatalf("announced %q", got1.line)
	}
	return n, got1.st, true
}

func endingSupervisor(t *testing.T) *supervisor {
	dir := t.TempDir()
	st := &scriptState{Created: time.Now().UTC(), State: Running, Format: stateFormat, Ticket: "T"}
	if err := writeState(dir, st, survivesProcessCrash); err != nil {
		t.Fatal(err)
	}
	return &supervisor{dir: dir, st: st}
}

// A log whose fsync fails (as a full disk with delayed allocation, or an I/O error, shows
// only at fsync) makes the result a failure: the agent is never told the script's own exit
// code, and the failure it is told is the one on disk.
func TestLogSyncFailureIsAnnouncedAsAFailure(t *testing.T) {
	full, err := os.OpenFile("/dev/full", os.O_WRONLY, 0)
	if err != nil {
		t.Skipf("SKIP: no /dev/full: %v", err)
	}
	defer full.Close()
	s := endingSupervisor(t)
	// fsync of /dev/full fails (EINVAL): the log's last lines are not durable.
	s.log = &logWriter{f: full, unsynced: true}
	code, st, ok := announced(t, s, 0)
	if !ok || code != ExitCodeFatal {
		t.Fatalf("announced %d (%v), want ExitCodeFatal %d: a log that could not be synced was reported", code, ok, ExitCodeFatal)
	}
	if st.State != Complete || st.ExitCode == nil || *st.ExitCode != ExitCodeFatal {
		t.Errorf("state when the failure was announced: %+v", st)
	}
}

// The exit code is announced only once the log is synced and the Complete state is in
// place: whoever is killed after the announcement, every later reader of the workspace
// reads the result the agent reported.
func TestResultIsAnnouncedAfterItIsRecorded(t *testing.T) {
	s := endingSupervisor(t)
	w, err := openLogWriter(s.dir + "/" + logFileName)
	if err != nil {
		t.Fatal(err)
	}
	defer w.close()
	s.log = w
	s.write(StdOut, "hi")
	code, st, ok := announced(t, s, 3)
	if !ok || code != 3 {
		t.Fatalf("announced %d (%v), want 3", code, ok)
	}
	if st.State != Complete || st.ExitCode == nil || *st.ExitCode != 3 {
		t.Errorf("state when the result was announced: %+v; want Complete, exit 3", st)
	}
	if s.log.unsynced {
		t.Error("the log was not synced by the time the result was announced")
	}
}

// Lines were lost while the disk was full, and the held ones were written once space came
// back, but not yet the line saying some were lost: the result is still a failure, and the
// log says why, never a success over a log with a hole.
func TestLostLinesWithNoneHeldAreAFailure(t *testing.T) {
	s := endingSupervisor(t)
	path := s.dir + "/" + logFileName
	w, err := openLogWriter(path)
	if err != nil {
		t.Fatal(err)
	}
	defer w.close()
	s.log = w
	s.write(StdOut, "kept")
	// As when the write of the line saying so failed after the held lines went.
	s.lost, s.writeErr = 3, syscall.ENOSPC
	code, _, ok := announced(t, s, 0)
	if !ok || code != ExitCodeFatal {
		t.Fatalf("announced %d (%v), want ExitCodeFatal %d", code, ok, ExitCodeFatal)
	}
	page, err := readLog(path, &logIndex{}, 0, pageLimit{records: 100, bytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	last := page.records[len(page.records)-1]
	if len(page.records) != 2 || last.Source != StdErr || !strings.Contains(last.Text, "3 lines of the script's output were lost") {
		t.Errorf("the log: %+v; want the kept line and one saying 3 were lost", page.records)
	}
}
