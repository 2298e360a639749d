// Package feed turns one goreleaser run into a version of the release feed:
// a folder per version holding every artifact and its checksums.txt, and an
// index.json listing the versions newest first. A plain HTTPS server or a
// directory serving the feed folder is a mirror (packaging/README.md).
package feed

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/tentacle-go/tentacle/provision/release"
)

// The feed's format is shared with its reader, provision/release.
const (
	Schema        = release.Schema
	IndexFile     = release.IndexFile
	ChecksumsFile = release.ChecksumsFile
)

type (
	// Index is index.json.
	Index = release.Index
	// Version is one version of the feed.
	Version = release.Version
)

// artifact is an entry of goreleaser's dist/artifacts.json.
type artifact struct {
	Name string `json:"name"`
	Path string `json:"path"`
	Type string `json:"type"`
}

// metadata is goreleaser's dist/metadata.json.
type metadata struct {
	Version string `json:"version"`
	Date    string `json:"date"`
}

// published are the goreleaser artifact types a feed version holds.
var published = map[string]bool{
	"Archive":       true,
	"Linux Package": true,
	"Checksum":      true,
	"Signature":     true,
}

// Publish copies the artifacts of the goreleaser run in buildDir (its
// dist folder) into feedDir/<version>/, replacing that version if it was
// there, and rewrites feedDir/index.json from every version folder in
// feedDir, so versions published before are kept. It refuses a run whose
// checksums.txt does not cover every artifact.
func Publish(buildDir, feedDir string) (Version, error) {
	var meta metadata
	if err := readJSON(filepath.Join(buildDir, "metadata.json"), &meta); err != nil {
		return Version{}, err
	}
	if _, ok := ParseVersion(meta.Version); !ok {
		return Version{}, fmt.Errorf("goreleaser's version %q is not SemVer; tag releases vX.Y.Z", meta.Version)
	}
	var arts []artifact
	if err := readJSON(filepath.Join(buildDir, "artifacts.json"), &arts); err != nil {
		return Version{}, err
	}
	var files []artifact
	have := map[string]bool{}
	for _, a := range arts {
		if published[a.Type] {
			files = append(files, a)
			have[a.Name] = true
		}
	}
	// checksum.extra_files (the MSI, which goreleaser OSS builds in a hook)
	// are in checksums.txt but not in artifacts.json.
	if listed, err := readChecksums(filepath.Join(buildDir, ChecksumsFile)); err == nil {
		for name := range listed {
			if have[name] {
				continue
			}
			if fi, err := os.Stat(filepath.Join(buildDir, name)); err != nil || !fi.Mode().IsRegular() || filepath.Base(name) != name {
				return Version{}, fmt.Errorf("%s lists %s, which is not a file in %s; is the goreleaser run complete?", ChecksumsFile, name, buildDir)
			}
			files = append(files, artifact{Name: name, Type: "Extra File"})
		}
	}
	staging, err := os.MkdirTemp(feedDir, ".staging-")
	if err != nil {
		if err := os.MkdirAll(feedDir, 0o755); err != nil {
			return Version{}, err
		}
		if staging, err = os.MkdirTemp(feedDir, ".staging-"); err != nil {
			return Version{}, err
		}
	}
	defer os.RemoveAll(staging)
	if err := os.Chmod(staging, 0o755); err != nil {
		return Version{}, err
	}
	for _, a := range files {
		// artifacts.json's paths are relative to where goreleaser ran; the
		// published artifacts all sit at the top of its dist folder.
		if err := copyFile(filepath.Join(buildDir, a.Name), filepath.Join(staging, a.Name)); err != nil {
			return Version{}, err
		}
	}
	if err := checkCovered(staging); err != nil {
		return Version{}, err
	}
	date := meta.Date
	if t, err := time.Parse(time.RFC3339Nano, meta.Date); err == nil {
		date = t.UTC().Format(time.RFC3339)
	} else {
		date = time.Now().UTC().Format(time.RFC3339)
	}
	// The version's date is when it was built; keep it in the folder so
	// that rebuilding the index does not depend on the old index.
	if err := os.WriteFile(filepath.Join(staging, ".date"), []byte(date+"\n"), 0o644); err != nil {
		return Version{}, err
	}
	dest := filepath.Join(feedDir, meta.Version)
	if err := os.RemoveAll(dest); err != nil {
		return Version{}, err
	}
	if err := os.Rename(staging, dest); err != nil {
		return Version{}, err
	}
	idx, err := Rebuild(feedDir)
	if err != nil {
		return Version{}, err
	}
	for _, v := range idx.Versions {
		if v.Version == meta.Version {
			return v, nil
		}
	}
	return Version{}, errors.New("the published version is missing from the index")
}

// Rebuild writes feedDir/index.json from the version folders in feedDir.
func Rebuild(feedDir string) (Index, error) {
	ents, err := os.ReadDir(feedDir)
	if err != nil {
		return Index{}, err
	}
	idx := Index{Schema: Schema, Versions: []Version{}}
	for _, e := range ents {
		sv, ok := ParseVersion(e.Name())
		if !e.IsDir() || !ok {
			continue
		}
		dir := filepath.Join(feedDir, e.Name())
		v := Version{Version: e.Name(), Prerelease: sv.Pre != ""}
		if b, err := os.ReadFile(filepath.Join(dir, ".date")); err == nil {
			v.Date = strings.TrimSpace(string(b))
		} else if info, err := e.Info(); err == nil {
			v.Date = info.ModTime().UTC().Format(time.RFC3339)
		}
		inner, err := os.ReadDir(dir)
		if err != nil {
			return Index{}, err
		}
		for _, f := range inner {
			if f.Type().IsRegular() && !strings.HasPrefix(f.Name(), ".") {
				v.Files = append(v.Files, f.Name())
			}
		}
		if !slices.Contains(v.Files, ChecksumsFile) {
			continue // not a published version (a half-copied folder)
		}
		idx.Versions = append(idx.Versions, v)
	}
	slices.SortFunc(idx.Versions, func(a, b Version) int {
		va, _ := ParseVersion(a.Version)
		vb, _ := ParseVersion(b.Version)
		return -Compare(va, vb)
	})
	data, err := json.MarshalIndent(idx, "", "  ")
	if err != nil {
		return Index{}, err
	}
	tmp, err := os.CreateTemp(feedDir, ".index-")
	if err != nil {
		return Index{}, err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(append(data, '\n')); err != nil {
		tmp.Close()
		return Index{}, err
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return Index{}, err
	}
	if err := tmp.Close(); err != nil {
		return Index{}, err
	}
	return idx, os.Rename(tmp.Name(), filepath.Join(feedDir, IndexFile))
}

// checkCovered fails unless dir's checksums.txt lists every other file of
// dir except signatures of checksums.txt.
func checkCovered(dir string) error {
	listed, err := readChecksums(filepath.Join(dir, ChecksumsFile))
	if err != nil {
		return err
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range ents {
		n := e.Name()
		if n == ChecksumsFile || strings.HasPrefix(n, ChecksumsFile+".") || strings.HasPrefix(n, ".") {
			continue
		}
		if !listed[n] {
			return fmt.Errorf("%s does not list %s: every artifact of a version must have a checksum", ChecksumsFile, n)
		}
	}
	return nil
}

// readChecksums returns the file names a checksums.txt lists.
func readChecksums(path string) (map[string]bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("the goreleaser run made no %s: %w", ChecksumsFile, err)
	}
	defer f.Close()
	listed := map[string]bool{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// sha256sum: 64 hex digits, two spaces (or space and *), the name.
		line := sc.Text()
		if len(line) < 67 {
			return nil, fmt.Errorf("%s: malformed line %q", ChecksumsFile, line)
		}
		listed[strings.TrimPrefix(line[66:], "*")] = true
	}
	return listed, sc.Err()
}

func readJSON(path string, v any) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("%w (run goreleaser first: make package)", err)
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
