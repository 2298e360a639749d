package config

import (
	"strings"
	"testing"
	"time"
)

// The forms .NET's TimeSpan.Parse accepts, including what upstream's own tests put in
// TENTACLE_WORKSPACE_CLEANER_* (TimeSpan.ToString() of 500 ms).
func TestParseTimeSpan(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"1":                   24 * time.Hour,
		" 2 ":                 48 * time.Hour,
		"02:00":               2 * time.Hour,
		"02:00:00":            2 * time.Hour,
		"2:3:4":               2*time.Hour + 3*time.Minute + 4*time.Second,
		"1.00:00:00":          24 * time.Hour,
		"1.12:30":             36*time.Hour + 30*time.Minute,
		"00:00:00.5000000":    500 * time.Millisecond,
		"00:00:00.5":          500 * time.Millisecond,
		"00:00:01.0000001":    time.Second + 100*time.Nanosecond,
		"1:00:00:00":          24 * time.Hour,
		"3:04:05:06.7":        3*24*time.Hour + 4*time.Hour + 5*time.Minute + 6*time.Second + 700*time.Millisecond,
		"-00:30:00":           -30 * time.Minute,
		"0":                   0,
		"106751.23:47:16.854": 106751*24*time.Hour + 23*time.Hour + 47*time.Minute + 16*time.Second + 854*time.Millisecond,
	} {
		got, err := ParseTimeSpan(in)
		if err != nil || got != want {
			t.Errorf("ParseTimeSpan(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "abc", "2h", "24:00:00", "00:60:00", "00:00:60", "1.", ".5", "00:00:00.12345678",
		"1.2.3:00", "1:2:3:4:5", "1.1:00:00:00", "00:30.5", "+1", "1e3", "106752", "10675199.02:48:05.4775807"} {
		if got, err := ParseTimeSpan(in); err == nil {
			t.Errorf("ParseTimeSpan(%q) = %v, want an error", in, got)
		}
	}
	if _, err := ParseTimeSpan("2h"); err == nil || !strings.Contains(err.Error(), "02:00:00") {
		t.Errorf("the error does not show how to write it: %v", err)
	}
}

func TestFormatTimeSpanRoundTrips(t *testing.T) {
	for d, want := range map[time.Duration]string{
		2 * time.Hour:          "02:00:00",
		24 * time.Hour:         "1.00:00:00",
		500 * time.Millisecond: "00:00:00.5000000",
		-90 * time.Second:      "-00:01:30",
	} {
		if got := FormatTimeSpan(d); got != want {
			t.Errorf("FormatTimeSpan(%v) = %q, want %q", d, got, want)
		}
		if back, err := ParseTimeSpan(want); err != nil || back != d {
			t.Errorf("ParseTimeSpan(%q) = %v, %v", want, back, err)
		}
	}
}

func TestWorkspaceCleanerSettings(t *testing.T) {
	env := map[string]string{}
	getenv := func(k string) string { return env[k] }
	s := NewSettings("/etc/octopus/Tentacle/tentacle.config")

	got, problems := s.WorkspaceCleaner(getenv)
	if got != (WorkspaceCleanerSettings{Delay: 2 * time.Hour, DeleteOlderThan: 24 * time.Hour}) || problems != nil {
		t.Errorf("defaults: %+v %v", got, problems)
	}

	s.Set(KeyWorkspaceCleanerDelay, "00:30:00")
	s.Set(KeyWorkspaceCleanerDeleteOlderThan, "7")
	if got, problems = s.WorkspaceCleaner(getenv); got.Delay != 30*time.Minute || got.DeleteOlderThan != 7*24*time.Hour || problems != nil {
		t.Errorf("from the file: %+v %v", got, problems)
	}

	// The environment wins, without OCTOPUS_CONTRIBUTE_ENV_SETTINGS, as upstream.
	env[EnvWorkspaceCleanerDelay] = "00:00:00.5000000"
	env[EnvWorkspaceCleanerDeleteOlderThan] = "00:00:00"
	if got, problems = s.WorkspaceCleaner(getenv); got.Delay != 500*time.Millisecond || got.DeleteOlderThan != 0 || problems != nil {
		t.Errorf("from the environment: %+v %v", got, problems)
	}

	// Unusable values are reported and skipped: to the file, then to the default.
	env[EnvWorkspaceCleanerDelay] = "2 hours"
	env[EnvWorkspaceCleanerDeleteOlderThan] = "-1"
	s.Set(KeyWorkspaceCleanerDelay, "0")
	got, problems = s.WorkspaceCleaner(getenv)
	if got.Delay != 2*time.Hour || got.DeleteOlderThan != 7*24*time.Hour || len(problems) != 3 {
		t.Fatalf("unusable values: %+v %q", got, problems)
	}
	for i, want := range []string{
		`The environment variable TENTACLE_WORKSPACE_CLEANER_DELAY is ignored: "2 hours" is not a time interval`,
		`Tentacle.WorkspaceCleaner.Delay in the configuration file /etc/octopus/Tentacle/tentacle.config is ignored: "0" is zero`,
		`The environment variable TENTACLE_WORKSPACE_CLEANER_DELETE_OLDER_THAN is ignored: "-1" is negative. Correct or remove it; until then Tentacle.WorkspaceCleaner.DeleteOlderThan in the configuration file`,
	} {
		if !strings.HasPrefix(problems[i], want) {
			t.Errorf("problem %d:\n%s\nwant a message starting\n%s", i, problems[i], want)
		}
	}
	if !strings.HasSuffix(problems[1], "until then the default 02:00:00 applies.") {
		t.Errorf("problem 1 does not name the default: %s", problems[1])
	}
}
