package containerinit

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Options tune an Init.
type Options struct {
	// Grace is how long, after a stop signal, the scripts in flight (the
	// running process's children) may take to end by themselves before
	// they are cancelled.
	Grace time.Duration
	// CancelWait bounds how long cancelled scripts may take to end (their
	// supervisors send SIGTERM, then SIGKILL after their own grace) before
	// the running process is stopped anyway. Default 15 s.
	CancelWait time.Duration
	// Log receives one line per thing init does on its own (stderr).
	Log io.Writer
	// Busy, when set, reports work in flight that has no process: a script
	// that ended but whose end the server has not collected yet. A stop
	// waits for it too, within Grace.
	Busy func() bool
}

// Init is PID 1's (or a subreaper's) state: one process runs at a time.
type Init struct {
	opts     Options
	sigs     chan os.Signal
	pid1     bool
	stopping bool
}

// pollInterval is how often a stopping init looks at what is still running.
const pollInterval = 100 * time.Millisecond

// Start takes over signal handling and, when not PID 1, becomes a child
// subreaper.
func Start(opts Options) (*Init, error) {
	if opts.CancelWait <= 0 {
		opts.CancelWait = 15 * time.Second
	}
	if opts.Log == nil {
		opts.Log = io.Discard
	}
	in := &Init{opts: opts, sigs: make(chan os.Signal, 64), pid1: os.Getpid() == 1}
	if !in.pid1 {
		if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
			return nil, fmt.Errorf("cannot become a child subreaper: %w", err)
		}
	}
	// Every signal a container runtime or a user sends; SIGCHLD to reap.
	signal.Notify(in.sigs, syscall.SIGCHLD, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP,
		syscall.SIGQUIT, syscall.SIGUSR1, syscall.SIGUSR2, syscall.SIGWINCH)
	return in, nil
}

// Stopping reports whether a stop signal (SIGTERM or SIGINT) has arrived.
func (in *Init) Stopping() bool {
	in.drainPending()
	return in.stopping
}

// drainPending notes signals that arrived while nothing ran.
func (in *Init) drainPending() {
	for {
		select {
		case sig := <-in.sigs:
			if sig == syscall.SIGTERM || sig == syscall.SIGINT {
				in.stopping = true
			}
			in.reap(0)
		default:
			return
		}
	}
}

// Run starts path with argv and env, and returns its exit code (128+N when
// signal N ended it) once it has exited, reaping every other process that
// ends meanwhile and forwarding signals to it as the package says.
func (in *Init) Run(path string, argv, env []string) (int, error) {
	in.drainPending()
	if in.stopping {
		return 0, errors.New("a stop signal arrived before the process started")
	}
	pid, err := syscall.ForkExec(path, argv, &syscall.ProcAttr{Env: env, Files: []uintptr{0, 1, 2}})
	if err != nil {
		return 0, fmt.Errorf("cannot start %s: %w", path, err)
	}
	var (
		tick                    = time.NewTicker(pollInterval)
		phase                   = running
		drainUntil, cancelUntil time.Time
		exitCode                = -1
	)
	defer tick.Stop()
	for {
		select {
		case sig := <-in.sigs:
			switch sig {
			case syscall.SIGCHLD:
			case syscall.SIGTERM, syscall.SIGINT:
				switch {
				case phase == running:
					in.stopping = true
					phase, drainUntil = draining, time.Now().Add(in.opts.Grace)
					in.logf("%s: stopping; scripts in flight have %s to finish", sigName(sig), in.opts.Grace)
				case phase == draining:
					drainUntil = time.Now() // a second stop signal: no more grace
				}
			default:
				_ = syscall.Kill(pid, sig.(syscall.Signal))
			}
		case <-tick.C:
		}
		if code, ok := in.reap(pid); ok {
			exitCode = code
		}
		if exitCode >= 0 {
			return exitCode, nil
		}
		now := time.Now()
		switch phase {
		case draining:
			kids := children(pid)
			if (len(kids) > 0 || (in.opts.Busy != nil && in.opts.Busy())) && now.Before(drainUntil) {
				continue
			}
			if len(kids) > 0 {
				in.logf("%d script(s) still running after %s: cancelling them", len(kids), in.opts.Grace)
				for _, k := range kids {
					_ = syscall.Kill(k, syscall.SIGTERM)
				}
			}
			phase, cancelUntil = cancelling, now.Add(in.opts.CancelWait)
			fallthrough
		case cancelling:
			if kids := children(pid); len(kids) > 0 && now.Before(cancelUntil) {
				continue
			}
			_ = syscall.Kill(pid, syscall.SIGTERM)
			phase = stopped
		}
	}
}

// Close ends what is left: as PID 1, every process still in the container
// gets SIGTERM, then SIGKILL after wait, instead of the kernel's SIGKILL
// when PID 1 exits. A subreaper leaves the rest alone (kill(-1) outside a
// PID namespace would reach the whole machine).
func (in *Init) Close(wait time.Duration) {
	signal.Stop(in.sigs)
	if !in.pid1 {
		in.reap(0)
		return
	}
	_ = syscall.Kill(-1, syscall.SIGTERM)
	deadline := time.Now().Add(wait)
	for time.Now().Before(deadline) {
		in.reap(0)
		if err := syscall.Kill(-1, 0); errors.Is(err, syscall.ESRCH) {
			return
		}
		time.Sleep(pollInterval)
	}
	_ = syscall.Kill(-1, syscall.SIGKILL)
	in.reap(0)
}

type runPhase int

const (
	running runPhase = iota
	draining
	cancelling
	stopped
)

// reap waits for every child that has ended, without blocking; ok is true
// with main's exit code once main was among them.
func (in *Init) reap(main int) (code int, ok bool) {
	for {
		var ws syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if err != nil || pid <= 0 {
			return code, ok
		}
		if pid == main && main != 0 {
			ok = true
			code = ws.ExitStatus()
			if ws.Signaled() {
				code = 128 + int(ws.Signal())
			}
		}
	}
}

// children are the processes whose parent is pid (the scripts' supervisors
// when pid is the agent), read from /proc.
func children(pid int) []int {
	var out []int
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: comm may hold spaces and parentheses.
		rest := string(stat[strings.LastIndexByte(string(stat), ')')+1:])
		f := strings.Fields(rest)
		if len(f) < 2 || f[0] == "Z" {
			continue
		}
		if ppid, _ := strconv.Atoi(f[1]); ppid == pid {
			out = append(out, p)
		}
	}
	return out
}

func sigName(s os.Signal) string {
	if s == syscall.SIGINT {
		return "SIGINT"
	}
	return "SIGTERM"
}

func (in *Init) logf(format string, args ...any) {
	fmt.Fprintf(in.opts.Log, "container init: "+format+"\n", args...)
}
