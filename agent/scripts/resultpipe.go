package scripts

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// A supervisor started by this agent tells it the script's exit code over a pipe as soon
// as the last output line is written, before it makes the result durable (fsync of the
// log, the state file and its directory) and exits. The agent answers with that result
// at once: the syncs, the supervisor's exit and its reaping (a few milliseconds on a quiet
// disk, tens on a busy one) leave the path of every short script.
//
// What this gives up is narrow: the result is reported while it is safe from a crash of
// the agent or the supervisor (the log lines are written, the state follows), but a
// power loss in the few milliseconds before the syncs end leaves the script, after the
// reboot, as a script whose supervisor died: Complete with ExitCodeUnknownResult, the
// same as before the result was known. The server that was told already has the result
// and the lines; the files on disk keep their order (every line durable before the
// Complete state). The isolation mutex is still released only once the supervisor is
// gone.

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
