package timespan

import (
	"math"
	"testing"
	"time"
)

func TestFormat(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want string
	}{
		{0, "00:00:00"},
		{5 * time.Second, "00:00:05"},
		{time.Minute, "00:01:00"},
		{30 * time.Second, "00:00:30"},
		{10 * time.Minute, "00:10:00"},
		{25 * time.Hour, "1.01:00:00"},
		// int.MaxValue milliseconds: the client's "no timeout" for the isolation mutex (§6.6).
		{time.Duration(math.MaxInt32) * time.Millisecond, "24.20:31:23.6470000"},
		{1500 * time.Millisecond, "00:00:01.5000000"},
		{100 * time.Nanosecond, "00:00:00.0000001"},
		{99 * time.Nanosecond, "00:00:00"}, // below one tick
		{-time.Millisecond, "-00:00:00.0010000"},
		{-(26*time.Hour + 3*time.Second), "-1.02:00:03"},
		{time.Duration(math.MinInt64), "-106751.23:47:16.8547758"},
	}
	for _, tt := range tests {
		if got := Format(tt.d); got != tt.want {
			t.Errorf("Format(%v) = %q, want %q", tt.d, got, tt.want)
		}
	}
}

func TestParse(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
	}{
		{"00:00:05", 5 * time.Second},
		{"24.20:31:23.6470000", time.Duration(math.MaxInt32) * time.Millisecond},
		{"-00:00:00.0010000", -time.Millisecond},
		{"1.01:00:00", 25 * time.Hour},
		{"1:01:00:00", 25 * time.Hour},
		{"3", 72 * time.Hour},
		{"1:02", time.Hour + 2*time.Minute},
		{" 00:01:00 ", time.Minute},
		{"00:00:01.5", 1500 * time.Millisecond},
		{"0:0:0.0000001", 100 * time.Nanosecond},
		// TimeSpan.MaxValue / MinValue clamp to the Go range instead of failing the call.
		{"10675199.02:48:05.4775807", time.Duration(math.MaxInt64)},
		// What upstream Tentacle's settings are written as, and what its own
		// tests put in TENTACLE_WORKSPACE_CLEANER_* (TimeSpan.ToString() of 500 ms).
		{"1", 24 * time.Hour},
		{"02:00", 2 * time.Hour},
		{"02:00:00", 2 * time.Hour},
		{"2:3:4", 2*time.Hour + 3*time.Minute + 4*time.Second},
		{"1.12:30", 36*time.Hour + 30*time.Minute},
		{"00:00:00.5000000", 500 * time.Millisecond},
		{"3:04:05:06.7", 3*24*time.Hour + 4*time.Hour + 5*time.Minute + 6*time.Second + 700*time.Millisecond},
		{"-00:30:00", -30 * time.Minute},
		{"0", 0},
		{"-10675199.02:48:05.4775808", time.Duration(math.MinInt64)},
	}
	for _, tt := range tests {
		got, err := Parse(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("Parse(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
	bad := []string{"", "-", "abc", "1:60", "24:00:00", "00:00:60", "00:00:00.", "00:00:00.12345678",
		"1:2:3:4:5", "+1", "1.2", "00:-1:00", "99999999999999999999", "10675200.00:00:00", "1..2:00",
		"2h", "1.", ".5", "1.2.3:00", "1.1:00:00:00", "00:30.5", "1e3"}
	for _, in := range bad {
		if d, err := Parse(in); err == nil {
			t.Errorf("Parse(%q) = %v, want an error", in, d)
		}
	}
}

func TestRoundTrip(t *testing.T) {
	for _, d := range []time.Duration{0, time.Second, -time.Hour, 123456789 * 100, time.Duration(math.MaxInt64) / 100 * 100} {
		back, err := Parse(Format(d))
		if err != nil || back != d {
			t.Errorf("round trip of %v gave %v, %v", d, back, err)
		}
	}
}
