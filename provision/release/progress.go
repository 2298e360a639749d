package release

import (
	"fmt"
	"io"
	"time"

	"github.com/schollz/progressbar/v3"
)

// LineProgress prints plain progress lines (for logs and pipes): the start,
// every tenth of the file, and the end.
type LineProgress struct {
	W io.Writer

	name              string
	total, done, next int64
}

func (l *LineProgress) Start(name string, total, done int64) {
	l.name, l.total, l.done = name, total, done
	l.next = l.step(done)
	switch {
	case done > 0:
		fmt.Fprintf(l.W, "Downloading %s: continuing at %s of %s\n", name, size(done), size(total))
	default:
		fmt.Fprintf(l.W, "Downloading %s (%s)\n", name, size(total))
	}
}

// step is the next byte count at which a line is printed.
func (l *LineProgress) step(done int64) int64 {
	if l.total <= 0 {
		return done + 10<<20
	}
	tenth := max(l.total/10, 1)
	return (done/tenth + 1) * tenth
}

func (l *LineProgress) Add(n int) {
	l.done += int64(n)
	if l.done >= l.next && (l.total <= 0 || l.done < l.total) {
		if l.total > 0 {
			fmt.Fprintf(l.W, "Downloading %s: %d%% (%s of %s)\n", l.name, l.done*100/l.total, size(l.done), size(l.total))
		} else {
			fmt.Fprintf(l.W, "Downloading %s: %s\n", l.name, size(l.done))
		}
		l.next = l.step(l.done)
	}
}

func (l *LineProgress) Finish(err error) {
	if err == nil {
		fmt.Fprintf(l.W, "Downloaded %s (%s), SHA-256 verified\n", l.name, size(l.done))
	}
}

// BarProgress draws a progress bar, for a terminal.
type BarProgress struct {
	W   io.Writer
	bar *progressbar.ProgressBar
}

func (b *BarProgress) Start(name string, total, done int64) {
	b.bar = progressbar.NewOptions64(total,
		progressbar.OptionSetWriter(b.W),
		progressbar.OptionSetDescription(name),
		progressbar.OptionShowBytes(true),
		progressbar.OptionShowTotalBytes(true),
		progressbar.OptionShowCount(),
		progressbar.OptionSetWidth(30),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionOnCompletion(func() { fmt.Fprintln(b.W) }),
		progressbar.OptionSpinnerType(14),
	)
	if done > 0 {
		_ = b.bar.Set64(done)
	}
}

func (b *BarProgress) Add(n int) { _ = b.bar.Add(n) }

func (b *BarProgress) Finish(err error) {
	if err == nil {
		_ = b.bar.Finish()
	} else {
		_ = b.bar.Exit()
		fmt.Fprintln(b.W)
	}
}

func size(n int64) string {
	switch {
	case n < 0:
		return "size unknown"
	case n < 1<<10:
		return fmt.Sprintf("%d B", n)
	case n < 1<<20:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	case n < 1<<30:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	}
	return fmt.Sprintf("%.2f GiB", float64(n)/(1<<30))
}
