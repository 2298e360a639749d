// Package timespan reads and writes .NET TimeSpan text: what Halibut puts on
// the wire for a TimeSpan and what upstream Tentacle reads from its TimeSpan
// settings (TENTACLE_WORKSPACE_CLEANER_DELAY and the like).
package timespan

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// .NET TimeSpan counts 100-nanosecond ticks in an int64.
const (
	ticksPerSecond = 10_000_000
	ticksPerMinute = 60 * ticksPerSecond
	ticksPerHour   = 60 * ticksPerMinute
	ticksPerDay    = 24 * ticksPerHour
	nanosPerTick   = 100
)

// Format renders d the way Newtonsoft writes a TimeSpan: .NET's invariant "c" format
// [-][d.]hh:mm:ss[.fffffff], e.g. "00:00:05", "24.20:31:23.6470000". Sub-tick nanoseconds
// are truncated toward zero, as converting to ticks does in .NET.
func Format(d time.Duration) string {
	ticks := int64(d) / nanosPerTick
	var b strings.Builder
	if ticks < 0 {
		b.WriteByte('-')
		ticks = -ticks // cannot overflow: |MinInt64/100| < MaxInt64
	}
	days := ticks / ticksPerDay
	ticks %= ticksPerDay
	if days > 0 {
		b.WriteString(strconv.FormatInt(days, 10))
		b.WriteByte('.')
	}
	fmt.Fprintf(&b, "%02d:%02d:%02d", ticks/ticksPerHour, ticks%ticksPerHour/ticksPerMinute, ticks%ticksPerMinute/ticksPerSecond)
	if frac := ticks % ticksPerSecond; frac != 0 {
		fmt.Fprintf(&b, ".%07d", frac)
	}
	return b.String()
}

// Parse reads the TimeSpan forms .NET's invariant TimeSpan.Parse accepts and a peer
// may plausibly send: "d", "[d.]h:m", "[d.]h:m:s[.f]" and "d:h:m:s[.f]" with an optional
// leading '-', 1 to 7 fraction digits, hours < 24, minutes and seconds < 60.
//
// A .NET TimeSpan spans ±29 227 years, a Go time.Duration only ±292: values beyond that
// (TimeSpan.MaxValue is sometimes used to mean "forever") are clamped to the largest
// Duration of the same sign rather than refused, because refusing would fail a whole RPC
// over a "no timeout" setting.
func Parse(s string) (time.Duration, error) {
	bad := func(why string) (time.Duration, error) {
		return 0, fmt.Errorf("invalid TimeSpan %q: %s (want [-][d.]hh:mm:ss[.fffffff])", s, why)
	}
	text := strings.TrimSpace(s)
	negative := strings.HasPrefix(text, "-")
	if negative {
		text = text[1:]
	}
	if text == "" {
		return bad("empty")
	}
	parts := strings.Split(text, ":")
	var days, hours, minutes, seconds, fraction uint64
	var err error
	number := func(part, what string) (uint64, error) {
		if part == "" || strings.TrimLeft(part, "0123456789") != "" {
			return 0, fmt.Errorf("%s %q is not a number", what, part)
		}
		n, perr := strconv.ParseUint(part, 10, 64)
		if perr != nil {
			return 0, fmt.Errorf("%s %q is out of range", what, part)
		}
		return n, nil
	}
	daysAndHours := func(part string) error {
		if d, h, ok := strings.Cut(part, "."); ok {
			if days, err = number(d, "days"); err != nil {
				return err
			}
			part = h
		}
		hours, err = number(part, "hours")
		return err
	}
	secondsAndFraction := func(part string) error {
		sec, frac, hasFraction := strings.Cut(part, ".")
		if seconds, err = number(sec, "seconds"); err != nil {
			return err
		}
		if hasFraction {
			if len(frac) == 0 || len(frac) > 7 {
				return fmt.Errorf("fraction %q must have 1 to 7 digits", frac)
			}
			if fraction, err = number(frac, "fraction"); err != nil {
				return err
			}
			for range 7 - len(frac) {
				fraction *= 10
			}
		}
		return nil
	}
	switch len(parts) {
	case 1:
		days, err = number(parts[0], "days")
	case 2:
		if err = daysAndHours(parts[0]); err == nil {
			minutes, err = number(parts[1], "minutes")
		}
	case 3:
		if err = daysAndHours(parts[0]); err == nil {
			if minutes, err = number(parts[1], "minutes"); err == nil {
				err = secondsAndFraction(parts[2])
			}
		}
	case 4:
		if days, err = number(parts[0], "days"); err == nil {
			if hours, err = number(parts[1], "hours"); err == nil {
				if minutes, err = number(parts[2], "minutes"); err == nil {
					err = secondsAndFraction(parts[3])
				}
			}
		}
	default:
		return bad("too many ':' separated parts")
	}
	if err != nil {
		return bad(err.Error())
	}
	if hours > 23 || minutes > 59 || seconds > 59 {
		return bad("hours must be < 24, minutes and seconds < 60")
	}
	// Sum in ticks with overflow checks against the .NET range (int64 ticks, so one more
	// tick below zero than above).
	var maxTicks uint64 = math.MaxInt64
	if negative {
		maxTicks++
	}
	if days > maxTicks/ticksPerDay {
		return bad("beyond TimeSpan.MaxValue")
	}
	ticks := days*ticksPerDay + hours*ticksPerHour + minutes*ticksPerMinute + seconds*ticksPerSecond
	if ticks > maxTicks-fraction {
		return bad("beyond TimeSpan.MaxValue")
	}
	ticks += fraction
	if ticks > math.MaxInt64/nanosPerTick {
		if negative {
			return time.Duration(math.MinInt64), nil
		}
		return time.Duration(math.MaxInt64), nil
	}
	d := time.Duration(ticks * nanosPerTick)
	if negative {
		d = -d
	}
	return d, nil
}
