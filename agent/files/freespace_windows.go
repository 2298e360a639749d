//go:build windows

package files

import (
	"fmt"

	"golang.org/x/sys/windows"
)

// checkFreeSpace refuses an upload that would leave less than MinFreeBytes.
func (s *Store) checkFreeSpace(dir string, length int64) error {
	p, err := windows.UTF16PtrFromString(dir)
	if err != nil {
		return nil
	}
	var avail, total, free uint64
	if err := windows.GetDiskFreeSpaceEx(p, &avail, &total, &free); err != nil {
		return nil
	}
	if int64(avail)-length < s.MinFreeBytes {
		return fmt.Errorf("not enough free disk space in %s for %d bytes: %d bytes free, %d must stay free", dir, length, avail, s.MinFreeBytes)
	}
	return nil
}
