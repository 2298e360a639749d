package containerinit

import (
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The test binary plays two parts in child processes, chosen by
// CONTAINERINIT_PART: "init" (an Init running the next part, as
// `tentacle container` runs the agent) and "agent" (a stand-in for the
// agent: it starts CONTAINERINIT_SCRIPT with sh, as the agent starts a
// script's supervisor, and on SIGTERM appends "stopped" to
// CONTAINERINIT_LOG and exits 0).
func TestMain(m *testing.M) {
	switch os.Getenv("CONTAINERINIT_PART") {
	case "init":
		grace, _ := time.ParseDuration(os.Getenv("CONTAINERINIT_GRACE"))
		// "busy" in the working directory stands for a script whose end the
		// server has not collected yet.
		busy := func() bool { _, err := os.Stat("busy"); return err == nil }
		in, err := Start(Options{Grace: grace, CancelWait: 5 * time.Second, Log: os.Stderr, Busy: busy})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(100)
		}
		var env []string
		for _, kv := range os.Environ() {
			if !strings.HasPrefix(kv, "CONTAINERINIT_PART=") {
				env = append(env, kv)
			}
		}
		code, err := in.Run(os.Args[0], []string{os.Args[0]}, append(env, "CONTAINERINIT_PART=agent"))
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(100)
		}
		in.Close(time.Second)
		os.Exit(code)
	case "agent":
		stop := make(chan os.Signal, 1)
		signal.Notify(stop, syscall.SIGTERM)
		script := exec.Command("sh", "-c", os.Getenv("CONTAINERINIT_SCRIPT"))
		if err := script.Start(); err != nil {
			os.Exit(101)
		}
		go script.Wait()
		<-stop
		if _, err := os.Stat("busy"); err == nil {
			appendLine(os.Getenv("CONTAINERINIT_LOG"), "stopped while busy")
		}
		appendLine(os.Getenv("CONTAINERINIT_LOG"), "stopped")
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func appendLine(path, line string) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err == nil {
		fmt.Fprintln(f, line)
		f.Close()
	}
}

type initProc struct {
	t    *testing.T
	cmd  *exec.Cmd
	dir  string
	done chan struct{}
}

// startInit starts an init process running the agent stand-in with script.
func startInit(t *testing.T, grace time.Duration, script string) *initProc {
	t.Helper()
	dir := t.TempDir()
	p := &initProc{t: t, dir: dir, done: make(chan struct{})}
	p.cmd = exec.Command(os.Args[0], "-test.run=^$")
	p.cmd.Dir = dir
	p.cmd.Env = append(os.Environ(), "CONTAINERINIT_PART=init", "CONTAINERINIT_GRACE="+grace.String(),
		"CONTAINERINIT_SCRIPT="+script, "CONTAINERINIT_LOG="+filepath.Join(dir, "log"))
	p.cmd.Stderr = os.Stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			p.cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

// waitFile waits for a file the script writes and returns its content.
func (p *initProc) waitFile(name string, within time.Duration) string {
	p.t.Helper()
	deadline := time.Now().Add(within)
	for {
		b, err := os.ReadFile(filepath.Join(p.dir, name))
		if err == nil && strings.HasSuffix(string(b), "\n") {
			return strings.TrimSpace(string(b))
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("%s was not written within %s", name, within)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stop sends SIGTERM and returns init's exit code and how long it took.
func (p *initProc) stop(within time.Duration) (int, time.Duration) {
	p.t.Helper()
	start := time.Now()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		p.t.Fatal(err)
	}
	select {
	case <-p.done:
	case <-time.After(within):
		p.t.Fatalf("init did not exit within %s of SIGTERM", within)
	}
	return p.cmd.ProcessState.ExitCode(), time.Since(start)
}

// procState is a process's state letter (R, S, Z, ...) and its parent, or
// "" when it is gone (reaped).
func procState(pid int) (state string, ppid int) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return "", 0
	}
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	ppid, _ = strconv.Atoi(f[1])
	return f[0], ppid
}

// TestOrphanedGrandchildIsReaped: a script's background job outlives its
// shell, is re-parented to init (not to the agent, not to the machine's
// init) and, once it exits, is reaped: no zombie is left.
func TestOrphanedGrandchildIsReaped(t *testing.T) {
	p := startInit(t, time.Second, `(sleep 0.5 & echo $! > orphan); echo > ready`)
	p.waitFile("ready", 5*time.Second)
	orphan, err := strconv.Atoi(p.waitFile("orphan", time.Second))
	if err != nil {
		t.Fatal(err)
	}
	adopted := false
	deadline := time.Now().Add(5 * time.Second)
	for {
		state, ppid := procState(orphan)
		if state == "" {
			break
		}
		if ppid == p.cmd.Process.Pid {
			adopted = true
		}
		if time.Now().After(deadline) {
			t.Fatalf("the orphan %d is still there (state %s, parent %d) 5 s after it was started to run 0.5 s", orphan, state, ppid)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if !adopted {
		t.Errorf("the orphan %d was never seen re-parented to init %d", orphan, p.cmd.Process.Pid)
	}
	if code, _ := p.stop(5 * time.Second); code != 0 {
		t.Errorf("init exited %d after SIGTERM, want the agent's 0", code)
	}
	if log := p.waitFile("log", time.Second); log != "stopped" {
		t.Errorf("log %q", log)
	}
}

// TestStopGivesScriptsTheirGrace: on SIGTERM the agent is left running
// while its script ends by itself within the grace, then stopped; a script
// still running when the grace ends is sent SIGTERM (its supervisor's
// cancel) first. Either way init exits 0, the agent's code.
func TestStopGivesScriptsTheirGrace(t *testing.T) {
	for _, tc := range []struct {
		name    string
		grace   time.Duration
		script  string
		wantLog string
	}{
		{"finishes within the grace", 10 * time.Second, `echo > ready; sleep 1; echo finished >> log`, "finished\nstopped"},
		{"its end collected within the grace", 10 * time.Second,
			`touch busy; echo > ready; sleep 0.5; echo finished >> log; (sleep 1; rm busy) &`, "finished\nstopped"},
		{"cancelled after the grace", 300 * time.Millisecond,
			`trap 'kill $job; echo cancelled >> log; exit 143' TERM; sleep 60 & job=$!; echo > ready; wait`, "cancelled\nstopped"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := startInit(t, tc.grace, tc.script)
			p.waitFile("ready", 5*time.Second)
			code, took := p.stop(tc.grace + 10*time.Second)
			if code != 0 {
				t.Errorf("init exited %d, want 0", code)
			}
			if log := p.waitFile("log", time.Second); log != tc.wantLog {
				t.Errorf("log %q, want %q", log, tc.wantLog)
			}
			if tc.wantLog == "cancelled\nstopped" && took < tc.grace {
				t.Errorf("cancelled after %s, before the grace of %s", took, tc.grace)
			}
		})
	}
}
