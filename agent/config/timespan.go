package config

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// ParseTimeSpan reads a time interval written the way .NET's TimeSpan.Parse reads it
// with the invariant culture, which is how upstream Tentacle reads its TimeSpan
// environment variables:
//
//	[-]d                     whole days            "1" is one day
//	[-][d.]hh:mm[:ss[.f]]    "02:00:00" is two hours, "1.12:00:00" a day and a half,
//	                         "00:00:00.5000000" half a second
//	[-]d:hh:mm:ss[.f]        "1:00:00:00" is one day
//
// with hours 0-23, minutes and seconds 0-59 and 1 to 7 fraction digits. Values beyond
// what a time.Duration holds (about 106751 days) are refused.
func ParseTimeSpan(v string) (time.Duration, error) {
	s := strings.TrimSpace(v)
	neg := strings.HasPrefix(s, "-")
	if neg {
		s = s[1:]
	}
	d, ok := parseUnsignedTimeSpan(s)
	if !ok {
		return 0, fmt.Errorf("%q is not a time interval; write it as .NET does, for example 02:00:00 for two hours or 1.00:00:00 for one day", v)
	}
	if d < 0 {
		return 0, fmt.Errorf("%q is too long a time interval; at most %d days are supported", v, maxDurationDays)
	}
	if neg {
		d = -d
	}
	return d, nil
}

const maxDurationDays = math.MaxInt64 / int64(24*time.Hour)

// parseUnsignedTimeSpan returns -1 with ok for a well-formed value that overflows.
func parseUnsignedTimeSpan(s string) (time.Duration, bool) {
	parts := strings.Split(s, ":")
	var days, hours, minutes, seconds, nanos int64
	var ok bool
	switch len(parts) {
	case 1:
		days, ok = digits(parts[0], -1)
	case 2, 3:
		dayPart, hourPart, hasDays := strings.Cut(parts[0], ".")
		if !hasDays {
			dayPart, hourPart = "0", parts[0]
		}
		if days, ok = digits(dayPart, -1); !ok {
			return 0, false
		}
		if hours, ok = digits(hourPart, 23); !ok {
			return 0, false
		}
		if minutes, ok = digits(parts[1], 59); !ok {
			return 0, false
		}
		if len(parts) == 3 {
			seconds, nanos, ok = secondsAndFraction(parts[2])
		}
	case 4:
		if days, ok = digits(parts[0], -1); !ok {
			return 0, false
		}
		if hours, ok = digits(parts[1], 23); !ok {
			return 0, false
		}
		if minutes, ok = digits(parts[2], 59); !ok {
			return 0, false
		}
		seconds, nanos, ok = secondsAndFraction(parts[3])
	}
	if !ok {
		return 0, false
	}
	if days > maxDurationDays {
		return -1, true
	}
	total := days*int64(24*time.Hour) + hours*int64(time.Hour) + minutes*int64(time.Minute) + seconds*int64(time.Second)
	if total < 0 || total > math.MaxInt64-nanos {
		return -1, true
	}
	return time.Duration(total + nanos), true
}

// secondsAndFraction reads "ss" or "ss.f" (1 to 7 fraction digits, as .NET's ticks).
func secondsAndFraction(p string) (seconds, nanos int64, ok bool) {
	secPart, frac, hasFrac := strings.Cut(p, ".")
	if seconds, ok = digits(secPart, 59); !ok {
		return 0, 0, false
	}
	if !hasFrac {
		return seconds, 0, true
	}
	if len(frac) > 7 {
		return 0, 0, false
	}
	f, ok := digits(frac, -1)
	if !ok {
		return 0, 0, false
	}
	for range 9 - len(frac) {
		f *= 10
	}
	return seconds, f, true
}

// digits parses a non-empty run of ASCII digits no greater than limit (-1: no limit
// beyond int64).
func digits(p string, limit int64) (int64, bool) {
	if p == "" {
		return 0, false
	}
	for _, c := range p {
		if c < '0' || c > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseInt(p, 10, 64)
	if err != nil || limit >= 0 && n > limit {
		return 0, false
	}
	return n, true
}

// FormatTimeSpan writes d as .NET's TimeSpan.ToString() does ("c" format), e.g.
// "1.00:00:00" or "02:00:00", so that upstream's parser reads it back.
func FormatTimeSpan(d time.Duration) string {
	var b strings.Builder
	if d < 0 {
		b.WriteByte('-')
		d = -d // time.Duration's minimum is not a value anyone configures
	}
	day := 24 * time.Hour
	if d >= day {
		fmt.Fprintf(&b, "%d.", d/day)
		d %= day
	}
	fmt.Fprintf(&b, "%02d:%02d:%02d", d/time.Hour, d%time.Hour/time.Minute, d%time.Minute/time.Second)
	if ticks := d % time.Second / 100; ticks != 0 {
		fmt.Fprintf(&b, ".%07d", ticks)
	}
	return b.String()
}
