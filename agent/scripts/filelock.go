package scripts

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// errLocked: another process holds the lock.
var errLocked = errors.New("locked by another process")

// fileLock is a held whole-file lock; see lockFile.
type fileLock struct {
	f *os.File
}

// ErrHomeInUse is ClaimHome's answer when another process holds the home.
var ErrHomeInUse = errors.New("another agent process is using this home")

// ClaimHome marks home as in use by this process until release is called or
// the process ends, so that a second agent started on the same home (by hand
// beside the service, say) stops before it adopts the first one's scripts or
// sweeps its in-flight uploads and spooled streams as leftovers.
func ClaimHome(home string) (release func(), err error) {
	l, err := lockFile(filepath.Join(home, ".agent.lock"), false)
	if errors.Is(err, errLocked) {
		return nil, fmt.Errorf("%w (%s): stop the other agent (tentacle service --stop, or the process holding %s) first", ErrHomeInUse, home, filepath.Join(home, ".agent.lock"))
	}
	if err != nil {
		return nil, err
	}
	return l.unlock, nil
}
