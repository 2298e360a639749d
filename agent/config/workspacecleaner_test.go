package config

import (
	"strings"
	"testing"
	"time"
)

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
		`The environment variable TENTACLE_WORKSPACE_CLEANER_DELAY is ignored: invalid TimeSpan "2 hours"`,
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
