package scripts

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// errLocked: another process holds the lock.
var errLocked = errors.New("locked by another process")

// fileLock is a held whole-file lock; see lockFile.
type fileLock struct {
	f *os.File
}

// ErrHomeInUse is ClaimHome's answer when another process holds the home.
var ErrHomeInUse = errors.New("another agent process is using this home")

// homeClaimWait is how long ClaimHome tries before it says another agent has
// the home. An agent that has just been killed can hold its lock a moment
// longer than its own life: a child it was starting keeps a copy of the
// descriptor until it execs, which on a loaded machine is not instant, and a
// restart right after a kill -9 must not fail on that.
const homeClaimWait = 2 * time.Second

// ClaimHome marks home as in use by this process until release is called or
// the process ends, so that a second agent started on the same home (by hand
// beside the service, say) stops before it adopts the first one's scripts or
// sweeps its in-flight uploads and spooled streams as leftovers.
func ClaimHome(home string) (release func(), err error) {
	path := filepath.Join(home, ".agent.lock")
	deadline := time.Now().Add(homeClaimWait)
	for {
		l, err := lockFile(path, false)
		if err == nil {
			return l.unlock, nil
		}
		if !errors.Is(err, errLocked) {
			return nil, err
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("%w (%s): stop the other agent (tentacle service --stop, or the process holding %s%s) first", ErrHomeInUse, home, path, lockHolder(path))
		}
		time.Sleep(100 * time.Millisecond)
	}
}
