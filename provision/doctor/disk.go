package doctor

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/tentacle-go/tentacle/agent/config"
)

// checkDisk reports the free space on the file system of the instance's
// home, where packages are staged and scripts run.
func checkDisk(o *Options, s *config.Settings) Result {
	home := s.Home()
	dir := home
	// A home not made yet lives on the file system of its nearest parent.
	for {
		if _, err := os.Stat(dir); err == nil || !errors.Is(err, os.ErrNotExist) {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			break
		}
		dir = parent
	}
	free, err := freeBytes(dir)
	if err != nil {
		return Result{Check: "disk", Status: Skip, Found: fmt.Sprintf("Not checked: the free space under %s cannot be read (%v).", home, err)}
	}
	found := fmt.Sprintf("%s free under %s.", formatBytes(free), home)
	switch {
	case free < DiskFailure:
		return Result{Check: "disk", Status: Fail, Found: found + " Deployments will fail to stage packages.", Fix: "Free space on that file system (old packages under " + home + " are safe to delete), or move the home to a larger one."}
	case free < DiskWarning:
		return Result{Check: "disk", Status: Warn, Found: found + " Large packages may not fit.", Fix: "Free space on that file system, or move the home to a larger one."}
	}
	return Result{Check: "disk", Status: OK, Found: found}
}

func formatBytes(n uint64) string {
	const gib, mib = 1 << 30, 1 << 20
	if n >= gib {
		return fmt.Sprintf("%.1f GiB", float64(n)/gib)
	}
	return fmt.Sprintf("%d MiB", n/mib)
}
