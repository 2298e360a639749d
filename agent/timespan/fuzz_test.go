package timespan

import (
	"math"
	"testing"
	"time"
)

func FuzzParse(f *testing.F) {
	for _, s := range []string{"00:00:05", "24.20:31:23.6470000", "-00:00:00.0010000", "1:2", "3", "10675199.02:48:05.4775807", "1:02:03:04.5"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := Parse(s)
		if err != nil || d == math.MaxInt64 || d == math.MinInt64 {
			return
		}
		back, err := Parse(Format(d))
		if err != nil || back != d {
			t.Fatalf("%q → %v → %q → %v, %v", s, d, Format(d), back, err)
		}
		if d%time.Duration(nanosPerTick) != 0 {
			t.Fatalf("%q parsed to %v, finer than a tick", s, d)
		}
	})
}
