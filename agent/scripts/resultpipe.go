package scripts

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// A supervisor started by this agent tells it the script's exit code over a pipe once the
// result is recorded, before the syncs that make the record survive a power loss, and
// before it exits. The agent answers with that result at once: the state file's and its
// directory's fsyncs, the supervisor's exit and its reaping (a few milliseconds on a quiet
// disk, tens on a busy one) leave the path of every short script.
//
// The order in the supervisor (supervisor.go: run, finish):
//  1. the last line is written and the log fsynced: a full disk or an I/O error that shows
//     only at fsync (delayed allocation) makes the result a failure (ExitCodeFatal);
//  2. the Complete state is written and renamed into place (no fsync): a full disk fails
//     here, and the supervisor waits for space, before anything is announced;
//  3. the exit code is announced;
//  4. the state file and the work directory entry are fsynced, and the supervisor exits.
//
// So a kill -9 of the agent, of the supervisor or of both, at any point, leaves nothing
// that contradicts what was reported: before 3 nothing was reported; from 2 on, every
// reader of the workspace reads the announced result. What this gives up is narrow: a
// power loss (or an I/O error on the state file's fsync, which the supervisor reports in
// Supervisor.err) between 3 and the end of 4, a few milliseconds, leaves the script after
// the reboot as one whose supervisor died: Complete with ExitCodeUnknownResult. Every log
// line the server was told about is durable by then (1). The isolation mutex is still
// released only once the supervisor is gone.

// resultFDPrefix marks the supervisor argument naming its result pipe's descriptor.
const resultFDPrefix = "result-fd="

// spareResultFD is a spare's result pipe: after its launch pipe (spareLaunchFD).
const spareResultFD = spareLaunchFD + 1

func resultFDArg(fd int) string { return resultFDPrefix + strconv.Itoa(fd) }

// earlyResult is what a supervisor announced over its result pipe.
type earlyResult struct {
	code int
}

// openResultPipe is the supervisor's end of the result pipe that arg names, kept from
// the script (close-on-exec); nil if arg names none.
func openResultPipe(arg string) *os.File {
	n, ok := strings.CutPrefix(arg, resultFDPrefix)
	if !ok {
		return nil
	}
	fd, err := strconv.Atoi(n)
	if err != nil || fd < 3 || !extraFilesSupported {
		return nil
	}
	closeOnExec(fd)
	return os.NewFile(uintptr(fd), "result")
}

// announceResult sends the exit code to the agent, if it is listening. A failure (the
// agent is gone) changes nothing: the state file still gets the result.
func announceResult(f *os.File, code int) {
	if f == nil {
		return
	}
	fmt.Fprintf(f, "%d\n", code)
	f.Close()
}

// watchResult reads what s's supervisor announces on r and, if it is a result, makes it
// s's status until the state file has it too.
func (m *Manager) watchResult(s *script, r *os.File) {
	defer r.Close()
	line, err := bufio.NewReader(r).ReadString('\n')
	if err != nil {
		return // the supervisor ended without announcing: its exit tells instead
	}
	code, err := strconv.Atoi(strings.TrimSpace(line))
	if err != nil {
		m.log.Warn("unreadable result from script supervisor", "ticket", s.ticket, "line", line)
		return
	}
	s.mu.Lock()
	s.early = &earlyResult{code: code}
	s.mu.Unlock()
	s.resultOnce.Do(func() { close(s.resultKnown) })
}
