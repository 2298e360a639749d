package agent

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// RotatingFile is an append-only log file that rolls over at MaxBytes,
// keeping Keep old files (name.1 ... name.N). Upstream keeps seven daily
// files with no size cap; a chatty agent can fill a disk that way.
type RotatingFile struct {
	Path     string
	MaxBytes int64
	Keep     int

	mu   sync.Mutex
	f    *os.File
	size int64
}

// Write appends p, rolling over first if p would pass MaxBytes.
func (r *RotatingFile) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.f == nil {
		if err := r.open(); err != nil {
			return 0, err
		}
	}
	if r.MaxBytes > 0 && r.size+int64(len(p)) > r.MaxBytes && r.size > 0 {
		if err := r.rotate(); err != nil {
			return 0, err
		}
	}
	n, err := r.f.Write(p)
	r.size += int64(n)
	return n, err
}

func (r *RotatingFile) open() error {
	if err := os.MkdirAll(filepath.Dir(r.Path), 0o700); err != nil {
		return err
	}
	f, err := os.OpenFile(r.Path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return err
	}
	r.f, r.size = f, st.Size()
	return nil
}

func (r *RotatingFile) rotate() error {
	r.f.Close()
	r.f = nil
	for i := r.Keep; i >= 1; i-- {
		from := r.Path
		if i > 1 {
			from = fmt.Sprintf("%s.%d", r.Path, i-1)
		}
		_ = os.Rename(from, fmt.Sprintf("%s.%d", r.Path, i))
	}
	if r.Keep < 1 {
		_ = os.Remove(r.Path)
	}
	return r.open()
}

// Close closes the current file.
func (r *RotatingFile) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.f == nil {
		return nil
	}
	err := r.f.Close()
	r.f = nil
	return err
}

// LogHandler writes the agent's log as upstream lays it out: the file gets
// every record at Level and up as "time  PID  LEVEL  message", the console
// (when set) gets the bare message, Info and Warn on Stdout and Error on
// Stderr, as upstream's NLog targets do. Attributes follow the message as
// key=value, so lines stay greppable and structured.
type LogHandler struct {
	opts   *LogHandlerOptions
	prefix string // preformatted attributes from WithAttrs
	group  string // key prefix from WithGroup, "a.b."
}

// LogHandlerOptions are a LogHandler's outputs. Any writer may be nil.
type LogHandlerOptions struct {
	File           io.Writer
	Stdout, Stderr io.Writer
	Level          slog.Leveler
	// Now and PID are fixed in tests.
	Now func() time.Time
	PID int

	mu sync.Mutex
}

// NewLogHandler returns a handler writing to the outputs in o.
func NewLogHandler(o *LogHandlerOptions) *LogHandler {
	if o.Level == nil {
		o.Level = slog.LevelInfo
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.PID == 0 {
		o.PID = os.Getpid()
	}
	return &LogHandler{opts: o}
}

func (h *LogHandler) Enabled(_ context.Context, l slog.Level) bool {
	return l >= h.opts.Level.Level()
}

func (h *LogHandler) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString(r.Message)
	b.WriteString(h.prefix)
	r.Attrs(func(a slog.Attr) bool {
		appendAttr(&b, h.group, a)
		return true
	})
	b.WriteByte('\n')
	msg := b.String()
	o := h.opts
	o.mu.Lock()
	defer o.mu.Unlock()
	var err error
	if o.File != nil {
		t := r.Time
		if t.IsZero() {
			t = o.Now()
		}
		// NLog's longdate has four fractional digits.
		line := fmt.Sprintf("%s.%04d  %5d  %5s  %s", t.Format("2006-01-02 15:04:05"), t.Nanosecond()/100000, o.PID, levelName(r.Level), msg)
		_, err = io.WriteString(o.File, line)
	}
	console := o.Stdout
	if r.Level >= slog.LevelError {
		console = o.Stderr
	}
	if console != nil {
		_, _ = io.WriteString(console, msg) // a closed console must not stop the agent
	}
	return err
}

func (h *LogHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	var b strings.Builder
	b.WriteString(h.prefix)
	for _, a := range attrs {
		appendAttr(&b, h.group, a)
	}
	return &LogHandler{opts: h.opts, prefix: b.String(), group: h.group}
}

func (h *LogHandler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	return &LogHandler{opts: h.opts, prefix: h.prefix, group: h.group + name + "."}
}

// levelName is NLog's upper-case level name.
func levelName(l slog.Level) string {
	switch {
	case l >= slog.LevelError:
		return "ERROR"
	case l >= slog.LevelWarn:
		return "WARN"
	case l >= slog.LevelInfo:
		return "INFO"
	}
	return "DEBUG"
}

func appendAttr(b *strings.Builder, group string, a slog.Attr) {
	a.Value = a.Value.Resolve()
	if a.Equal(slog.Attr{}) {
		return
	}
	if a.Value.Kind() == slog.KindGroup {
		g := group
		if a.Key != "" {
			g += a.Key + "."
		}
		for _, ga := range a.Value.Group() {
			appendAttr(b, g, ga)
		}
		return
	}
	b.WriteByte(' ')
	b.WriteString(group + a.Key)
	b.WriteByte('=')
	v := a.Value.String()
	if v == "" || strings.ContainsAny(v, " \t\r\n\"=") || !utf8.ValidString(v) {
		v = strconv.Quote(v)
	}
	b.WriteString(v)
}
