package config

import (
	"github.com/tentacle-go/tentacle/agent/timespan"

	"fmt"
	"strings"
	"time"
)

// The workspace cleaner's settings. The environment variables are upstream's own (read
// by its WorkspaceCleanerConfiguration, whatever OCTOPUS_CONTRIBUTE_ENV_SETTINGS says);
// upstream has no configuration-file keys for them, so the keys are ours.
const (
	EnvWorkspaceCleanerDelay           = "TENTACLE_WORKSPACE_CLEANER_DELAY"
	EnvWorkspaceCleanerDeleteOlderThan = "TENTACLE_WORKSPACE_CLEANER_DELETE_OLDER_THAN"
	KeyWorkspaceCleanerDelay           = "Tentacle.WorkspaceCleaner.Delay"
	KeyWorkspaceCleanerDeleteOlderThan = "Tentacle.WorkspaceCleaner.DeleteOlderThan"

	DefaultWorkspaceCleanerDelay           = 2 * time.Hour
	DefaultWorkspaceCleanerDeleteOlderThan = 24 * time.Hour
)

// WorkspaceCleanerSettings say how often the agent looks for abandoned script workspaces
// and how old one must be to be deleted.
type WorkspaceCleanerSettings struct {
	// Delay is the time between two passes; always positive.
	Delay time.Duration
	// DeleteOlderThan is the age a workspace's log must reach; never negative.
	DeleteOlderThan time.Duration
}

// WorkspaceCleaner reads the cleaner's settings: each from its environment variable,
// else the configuration file, else the default, all written as .NET time intervals
// (timespan.Parse). A value that cannot be used is skipped, as upstream skips one it
// cannot parse; problems says which and why, for the log.
func (s *Settings) WorkspaceCleaner(getenv func(string) string) (settings WorkspaceCleanerSettings, problems []string) {
	settings.Delay = s.timeSpanSetting(getenv, EnvWorkspaceCleanerDelay, KeyWorkspaceCleanerDelay, DefaultWorkspaceCleanerDelay, false, &problems)
	settings.DeleteOlderThan = s.timeSpanSetting(getenv, EnvWorkspaceCleanerDeleteOlderThan, KeyWorkspaceCleanerDeleteOlderThan, DefaultWorkspaceCleanerDeleteOlderThan, true, &problems)
	return settings, problems
}

func (s *Settings) timeSpanSetting(getenv func(string) string, env, key string, def time.Duration, zeroAllowed bool, problems *[]string) time.Duration {
	type source struct{ name, value string }
	var sources []source
	if v := getenv(env); strings.TrimSpace(v) != "" {
		sources = append(sources, source{"The environment variable " + env, v})
	}
	if v, ok := s.Get(key); ok {
		sources = append(sources, source{key + " in the configuration file " + s.path, v})
	}
	for i, src := range sources {
		d, err := timespan.Parse(src.value)
		switch {
		case err != nil:
			err = fmt.Errorf("%w; for example 02:00:00 is two hours and 1.00:00:00 one day", err)
		case d < 0:
			err = fmt.Errorf("%q is negative", src.value)
		case d == 0 && !zeroAllowed:
			err = fmt.Errorf("%q is zero, which would make the cleaner run without a pause", src.value)
		default:
			return d
		}
		instead := "the default " + timespan.Format(def)
		if i+1 < len(sources) {
			instead = sources[i+1].name
		}
		*problems = append(*problems, fmt.Sprintf("%s is ignored: %v. Correct or remove it; until then %s applies.", src.name, err, instead))
	}
	return def
}
