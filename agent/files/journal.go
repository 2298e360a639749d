package files

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// An upload goes to a temporary file beside its target, and a target can be
// anywhere on the machine, so after a crash (kill -9, power cut) nothing
// tells where the half-written temporaries are. The upload journal does:
// before the temporary file is created, a record naming it is written to
// the journal folder (under the agent's home), and the record is removed
// once the upload is over. At start, SweepInterruptedUploads removes what
// the records of an earlier run name.
//
// Records are not fsynced: a killed process loses nothing the kernel
// already has, and after a power cut the temporary file is as unsynced as
// its record.

// uploadTempMarker is in the name of every upload's temporary file:
// "." + target name + uploadTempMarker + digits.
const uploadTempMarker = ".upload-"

// recordSuffix ends the name of every journal record.
const recordSuffix = ".upload"

// createUploadTemp creates the temporary file for an upload of dir/name,
// recorded in the journal first when there is one. forget removes the
// record; call it once the temporary file is renamed or removed.
func (s *Store) createUploadTemp(dir, name string, perm os.FileMode) (f *os.File, forget func(), err error) {
	for range 10000 {
		suffix := strconv.FormatUint(uint64(rand.Uint32()), 10)
		path := filepath.Join(dir, "."+name+uploadTempMarker+suffix)
		record := ""
		if s.Journal != "" {
			record = filepath.Join(s.Journal, strconv.FormatUint(rand.Uint64(), 36)+recordSuffix)
			if err := os.WriteFile(record, []byte(path), 0o600); err != nil {
				return nil, nil, fmt.Errorf("recording the upload of %s in the journal %s: %w", filepath.Join(dir, name), s.Journal, err)
			}
		}
		forget = func() {
			if record != "" {
				os.Remove(record)
			}
		}
		f, err = os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, perm)
		if errors.Is(err, os.ErrExist) {
			forget()
			continue
		}
		if err != nil {
			forget()
			return nil, nil, err
		}
		return f, forget, nil
	}
	return nil, nil, fmt.Errorf("no free temporary name for %s in %s", name, dir)
}

// isUploadTempName reports whether name is one of our upload temporaries.
func isUploadTempName(name string) bool {
	i := strings.LastIndex(name, uploadTempMarker)
	if !strings.HasPrefix(name, ".") || i < 2 {
		return false
	}
	digits := name[i+len(uploadTempMarker):]
	_, err := strconv.ParseUint(digits, 10, 64)
	return err == nil
}

// SweepInterruptedUploads removes the temporary files of uploads that a
// process stopped before startedAt left behind, as named by the journal's
// records, and those records. A file is removed only if it is a regular
// file named as our temporaries are and last written before startedAt;
// records written since startedAt are left to whoever wrote them. It
// returns the files removed and their total size.
func SweepInterruptedUploads(journal string, startedAt time.Time) (removed []string, bytes int64, err error) {
	entries, err := os.ReadDir(journal)
	if errors.Is(err, os.ErrNotExist) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, err
	}
	var errs []error
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), recordSuffix) {
			continue
		}
		record := filepath.Join(journal, e.Name())
		info, err := os.Lstat(record)
		if err != nil || !info.Mode().IsRegular() || !info.ModTime().Before(startedAt) {
			continue
		}
		b, err := os.ReadFile(record)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		path := string(b)
		if filepath.IsAbs(path) && isUploadTempName(filepath.Base(path)) {
			st, err := os.Lstat(path)
			if err == nil && st.Mode().IsRegular() && st.ModTime().Before(startedAt) {
				if err := os.Remove(path); err != nil {
					errs = append(errs, err)
					continue // keep the record: the next start tries again
				}
				removed = append(removed, path)
				bytes += st.Size()
			}
		}
		if err := os.Remove(record); err != nil {
			errs = append(errs, err)
		}
	}
	return removed, bytes, errors.Join(errs...)
}
