package release

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// Mirror copies the versions of src that constraint allows into dst, each
// verified (signature of checksums.txt as t says, SHA-256 of every file)
// before it appears there, and merges them into dst's index.json, so dst is
// itself a feed. A version is copied into dst/.partial-<version> first (a
// re-run continues it) and renamed into place whole. It returns the
// versions copied.
func Mirror(ctx context.Context, src Feed, dst, constraint string, prerelease bool, t Trust, p Progress) ([]Version, error) {
	all, err := src.Versions(ctx)
	if err != nil {
		return nil, err
	}
	sel, err := Select(all, constraint, prerelease)
	if err != nil {
		return nil, err
	}
	if len(sel) == 0 {
		_, err := Newest(all, constraint, prerelease)
		return nil, err
	}
	_, statErr := os.Stat(dst)
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return nil, fmt.Errorf("cannot create %s (%v); choose another --to", dst, err)
	}
	var copied []Version
	for _, v := range sel {
		mv, err := mirrorVersion(ctx, src, dst, v, t, p)
		if errors.Is(err, ErrUnverified) {
			// Keep nothing of a version that failed verification; a cut
			// download keeps its staging folder so a re-run continues it.
			os.RemoveAll(filepath.Join(dst, ".partial-"+v.Version))
		}
		if err != nil {
			if len(copied) == 0 && statErr != nil {
				removeIfEmpty(dst) // created by this run
			}
			return copied, err
		}
		copied = append(copied, mv)
		if err := mergeIndex(dst, mv); err != nil {
			return copied, err
		}
	}
	return copied, nil
}

// removeIfEmpty removes dir when the mirror left nothing in it.
func removeIfEmpty(dir string) {
	if ents, err := os.ReadDir(dir); err == nil && len(ents) == 0 {
		os.Remove(dir)
	}
}

func mirrorVersion(ctx context.Context, src Feed, dst string, v Version, t Trust, p Progress) (Version, error) {
	sums, raw, sig, err := FetchChecksums(ctx, src, v, t)
	if err != nil {
		return Version{}, err
	}
	staging := filepath.Join(dst, ".partial-"+v.Version)
	if err := os.MkdirAll(staging, 0o755); err != nil {
		return Version{}, err
	}
	files := []string{ChecksumsFile}
	if err := os.WriteFile(filepath.Join(staging, ChecksumsFile), raw, 0o644); err != nil {
		return Version{}, err
	}
	if sig != nil {
		files = append(files, SignatureFile)
		if err := os.WriteFile(filepath.Join(staging, SignatureFile), sig, 0o644); err != nil {
			return Version{}, err
		}
	}
	for _, name := range v.Files {
		if _, listed := sums[name]; !listed {
			continue // not covered by checksums.txt: not part of the release
		}
		if _, err := os.Stat(filepath.Join(staging, name)); err != nil {
			if _, err := Download(ctx, src, v, name, sums, staging, p); err != nil {
				return Version{}, err
			}
		} else if err := verifyFile(filepath.Join(staging, name), sums[name]); err != nil {
			// Left over from an earlier run and changed since: fetch again.
			os.Remove(filepath.Join(staging, name))
			if _, err := Download(ctx, src, v, name, sums, staging, p); err != nil {
				return Version{}, err
			}
		}
		files = append(files, name)
	}
	for name := range sums {
		if !slices.Contains(files, name) {
			return Version{}, fmt.Errorf("version %s in feed %s lists %s in %s but does not have it; the feed is incomplete", v.Version, src, name, ChecksumsFile)
		}
	}
	slices.Sort(files)
	final := filepath.Join(dst, v.Version)
	if err := os.RemoveAll(final); err != nil {
		return Version{}, err
	}
	if err := os.Rename(staging, final); err != nil {
		return Version{}, err
	}
	return Version{Version: v.Version, Date: v.Date, Prerelease: v.Prerelease, Files: files}, nil
}

// mergeIndex puts v into dst/index.json (replacing the same version), newest
// first, written atomically.
func mergeIndex(dst string, v Version) error {
	var versions []Version
	if f, err := os.Open(filepath.Join(dst, IndexFile)); err == nil {
		versions, err = decodeIndex(f, dst)
		f.Close()
		if err != nil {
			return fmt.Errorf("%v; move it away to start a new mirror", err)
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return err
	}
	if v.Date == "" {
		v.Date = time.Now().UTC().Format(time.RFC3339)
	}
	versions = slices.DeleteFunc(versions, func(x Version) bool { return x.Version == v.Version })
	versions = append(versions, v)
	sortNewestFirst(versions)
	data, err := json.MarshalIndent(Index{Schema: Schema, Versions: versions}, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dst, ".index-")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(append(data, '\n')); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), filepath.Join(dst, IndexFile))
}
