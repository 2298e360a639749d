package scripts

import (
	"errors"
	"os"
)

// errLocked: another process holds the lock.
var errLocked = errors.New("locked by another process")

// fileLock is a held whole-file lock; see lockFile.
type fileLock struct {
	f *os.File
}
