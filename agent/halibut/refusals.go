package halibut

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"
)

// Anyone who can reach the port can make the agent refuse a connection, so
// a warning per refusal lets one client rotate the whole log history away.
// refusalLog logs the first refusal from an address at once and in full
// (what was refused and what to do about it), then one summary per
// Limits.RefusalLogInterval while that address keeps being refused. Memory
// is bounded: past Limits.MaxRefusalLogAddresses addresses, refusals are
// counted together.

// clock is the time source of the refusal log; tests replace it.
type clock interface {
	Now() time.Time
	AfterFunc(d time.Duration, f func())
}

type realClock struct{}

func (realClock) Now() time.Time                      { return time.Now() }
func (realClock) AfterFunc(d time.Duration, f func()) { time.AfterFunc(d, f) }

// refusedError is a peer turned away before identification, for a reason
// worth telling the operator.
type refusedError struct {
	message    string
	thumbprint string
}

func (e *refusedError) Error() string { return e.message }

// refusal is one refused connection.
type refusal struct {
	remote     string // host:port
	host       string // what refusals are tallied by
	message    string // the full explanation, logged for the first refusal
	thumbprint string // the peer's certificate, when it presented one
	// asError logs the full line at Error rather than Warn: a certificate
	// neither side can parse, which only this log explains. Anyone can send
	// one, so it is rate-limited like every other refusal.
	asError bool
}

type refusalTally struct {
	since      time.Time // start of the current interval
	count      int       // refusals this interval
	unlogged   int       // of which neither logged in full nor summarised yet
	last       refusal
	thumbprint string // the latest one presented
}

type refusalLog struct {
	clock clock // nil means real time

	mu          sync.Mutex
	logger      *slog.Logger
	interval    time.Duration
	maxAddrs    int
	tallies     map[string]*refusalTally
	others      int // refusals from addresses past the bound, this interval
	othersSince time.Time
	armed       bool
}

func (r *refusalLog) now() time.Time {
	if r.clock == nil {
		return time.Now()
	}
	return r.clock.Now()
}

func (r *refusalLog) afterFunc(d time.Duration, f func()) {
	if r.clock == nil {
		realClock{}.AfterFunc(d, f)
		return
	}
	r.clock.AfterFunc(d, f)
}

// refused records one refused connection, logging it in full if it is the
// first from its address this interval.
func (r *refusalLog) refused(log *slog.Logger, lim Limits, rf refusal) {
	r.mu.Lock()
	now := r.now()
	r.logger, r.interval, r.maxAddrs = log, lim.RefusalLogInterval, lim.MaxRefusalLogAddresses
	if r.tallies == nil {
		r.tallies = map[string]*refusalTally{}
	}
	first := false
	if t := r.tallies[rf.host]; t != nil {
		t.count++
		t.unlogged++
		t.last = rf
		if rf.thumbprint != "" {
			t.thumbprint = rf.thumbprint
		}
	} else if len(r.tallies) < lim.MaxRefusalLogAddresses {
		r.tallies[rf.host] = &refusalTally{since: now, count: 1, last: rf, thumbprint: rf.thumbprint}
		first = true
	} else {
		if r.others == 0 {
			r.othersSince = now
		}
		r.others++
	}
	r.armLocked(now)
	r.mu.Unlock()
	if first {
		attrs := []any{"remote", rf.remote}
		if rf.thumbprint != "" {
			attrs = append(attrs, "thumbprint", rf.thumbprint)
		}
		level := slog.LevelWarn
		if rf.asError {
			level = slog.LevelError
		}
		log.Log(context.Background(), level, rf.message, attrs...)
	}
}

// armLocked schedules the next summary, at the end of the earliest
// interval still open.
func (r *refusalLog) armLocked(now time.Time) {
	if r.armed {
		return
	}
	var next time.Time
	for _, t := range r.tallies {
		if end := t.since.Add(r.interval); next.IsZero() || end.Before(next) {
			next = end
		}
	}
	if r.others > 0 {
		if end := r.othersSince.Add(r.interval); next.IsZero() || end.Before(next) {
			next = end
		}
	}
	if next.IsZero() {
		return
	}
	r.armed = true
	r.afterFunc(max(next.Sub(now), 0), r.tick)
}

func (r *refusalLog) tick() {
	r.mu.Lock()
	r.armed = false
	now := r.now()
	lines := r.dueLocked(now, false)
	r.armLocked(now)
	log := r.logger
	r.mu.Unlock()
	emit(log, lines)
}

// flush logs every pending summary now (at shutdown).
func (r *refusalLog) flush() {
	r.mu.Lock()
	lines := r.dueLocked(r.now(), true)
	log := r.logger
	r.mu.Unlock()
	emit(log, lines)
}

type summaryLine struct {
	message string
	attrs   []any
}

func emit(log *slog.Logger, lines []summaryLine) {
	for _, l := range lines {
		log.Warn(l.message, l.attrs...)
	}
}

// dueLocked ends the intervals that are over (all of them when all): an
// address refused again gets a summary and a new interval; one that was
// not is forgotten, so its next refusal is logged in full again.
func (r *refusalLog) dueLocked(now time.Time, all bool) []summaryLine {
	var lines []summaryLine
	period := describeInterval(r.interval)
	for _, host := range slices.Sorted(maps.Keys(r.tallies)) {
		t := r.tallies[host]
		if !all && now.Sub(t.since) < r.interval {
			continue
		}
		if t.unlogged == 0 || all {
			delete(r.tallies, host)
		}
		if t.unlogged > 0 {
			attrs := []any{"count", t.count, "remote", host, "last_reason", t.last.message}
			if t.thumbprint != "" {
				attrs = append(attrs, "thumbprint", t.thumbprint)
			}
			lines = append(lines, summaryLine{fmt.Sprintf("%d connections refused from %s in the last %s", t.count, host, period), attrs})
			t.since, t.count, t.unlogged = now, 0, 0
		}
	}
	if r.others > 0 && (all || now.Sub(r.othersSince) >= r.interval) {
		lines = append(lines, summaryLine{
			fmt.Sprintf("%d connections refused from addresses beyond the %d tallied one by one in the last %s", r.others, r.maxAddrs, period),
			[]any{"count", r.others},
		})
		r.others = 0
	}
	return lines
}

func describeInterval(d time.Duration) string {
	switch d {
	case time.Minute:
		return "minute"
	case time.Hour:
		return "hour"
	}
	return d.String()
}
