//go:build !windows

package files

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// checkFreeSpace refuses an upload that would leave less than MinFreeBytes.
func (s *Store) checkFreeSpace(dir string, length int64) error {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return nil // cannot tell: let the write itself fail if it must
	}
	free := int64(st.Bavail) * int64(st.Bsize)
	if free-length < s.MinFreeBytes {
		return fmt.Errorf("not enough free disk space in %s for %d bytes: %d bytes free, %d must stay free", dir, length, free, s.MinFreeBytes)
	}
	return nil
}
