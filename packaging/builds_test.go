//go:build linux

// The package tests install what `make package` builds, for real. They need
// two snapshot versions: the one in dist/build (TENTACLE_PACKAGE_DIST names
// it when the Makefile just built it; otherwise it is rebuilt unless it was
// built from the current commit of a clean tree) and a second, later one
// built here for linux/amd64 only and signed with a throwaway minisign key.
package packaging_test

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tentacle-go/tentacle/internal/nspawntest"
)

// goreleaserBuild is one goreleaser run's dist folder.
type goreleaserBuild struct {
	Dir       string
	Version   string
	Commit    string
	Artifacts []artifact
	// PublicKey is the minisign public key file checksums.txt.minisig
	// verifies with ("" when unsigned).
	PublicKey string
}

type artifact struct {
	Name   string `json:"name"`
	Path   string `json:"path"`
	Type   string `json:"type"`
	Goos   string `json:"goos"`
	Goarch string `json:"goarch"`
	Goarm  string `json:"goarm"`
}

// path is the artifact's file, absolute.
func (b *goreleaserBuild) path(a artifact) string { return filepath.Join(b.Dir, a.Name) }

// find returns the one artifact of type typ whose name matches re.
func (b *goreleaserBuild) find(t *testing.T, typ, re string) string {
	t.Helper()
	rx := regexp.MustCompile(re)
	var found []string
	for _, a := range b.Artifacts {
		if a.Type == typ && rx.MatchString(a.Name) {
			found = append(found, b.path(a))
		}
	}
	if len(found) != 1 {
		t.Fatalf("build %s: %d artifacts of type %q match %s: %v", b.Version, len(found), typ, re, found)
	}
	return found[0]
}

func loadBuild(dir string) (*goreleaserBuild, error) {
	b := &goreleaserBuild{Dir: dir}
	var meta struct {
		Version string `json:"version"`
		Commit  string `json:"commit"`
	}
	data, err := os.ReadFile(filepath.Join(dir, "metadata.json"))
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(data, &meta); err != nil {
		return nil, err
	}
	b.Version, b.Commit = meta.Version, meta.Commit
	data, err = os.ReadFile(filepath.Join(dir, "artifacts.json"))
	if err != nil {
		return nil, err
	}
	return b, json.Unmarshal(data, &b.Artifacts)
}

var (
	firstOnce, secondOnce   sync.Once
	firstBuild, secondBuild *goreleaserBuild
	firstErr, secondErr     error
)

// requireTools skips the test unless every tool is on the PATH.
func requireTools(t *testing.T, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("SKIP: %s is not installed (`make package-test` installs it with apt-get)", tool)
		}
	}
}

// first is `make package`'s build.
func first(t *testing.T) *goreleaserBuild {
	t.Helper()
	if testing.Short() {
		t.Skip("SKIP: -short: the package tests build every release artifact")
	}
	firstOnce.Do(func() {
		root := nspawntest.RepoRoot(t)
		dir := os.Getenv("TENTACLE_PACKAGE_DIST")
		if dir == "" {
			dir = filepath.Join(root, "dist", "build")
			if b, err := loadBuild(dir); err == nil && b.Commit == gitHead(root) && cleanTree(root) {
				firstBuild = b
				return
			}
			t.Logf("building the packages: make package")
			start := time.Now()
			out, err := exec.Command("make", "-C", root, "--no-print-directory", "package").CombinedOutput()
			if err != nil {
				firstErr = fmt.Errorf("make package: %v\n%s", err, out)
				return
			}
			t.Logf("make package took %s", time.Since(start).Round(time.Second))
		}
		firstBuild, firstErr = loadBuild(dir)
	})
	if firstErr != nil {
		t.Fatal(firstErr)
	}
	return firstBuild
}

// second is a later snapshot for linux/amd64, signed with a throwaway key.
func second(t *testing.T) *goreleaserBuild {
	t.Helper()
	f := first(t)
	requireTools(t, "minisign")
	secondOnce.Do(func() {
		secondBuild, secondErr = buildSigned(t, f)
	})
	if secondErr != nil {
		t.Fatal(secondErr)
	}
	return secondBuild
}

// buildSigned runs goreleaser with the repository's configuration, its
// output redirected to a folder that outlives the test that asked first.
func buildSigned(t *testing.T, f *goreleaserBuild) (*goreleaserBuild, error) {
	root := nspawntest.RepoRoot(t)
	work, err := os.MkdirTemp("", "tentacle-second-snapshot-")
	if err != nil {
		return nil, err
	}
	cleanupAfterAll = append(cleanupAfterAll, work)
	key, pub := filepath.Join(work, "minisign.key"), filepath.Join(work, "minisign.pub")
	if out, err := exec.Command("minisign", "-G", "-W", "-s", key, "-p", pub).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("minisign -G: %v\n%s", err, out)
	}
	config, err := os.ReadFile(filepath.Join(root, ".goreleaser.yaml"))
	if err != nil {
		return nil, err
	}
	// Inside the repository's (git-ignored) dist/: goreleaser reads
	// checksum.extra_files only below the folder it runs in.
	dist := filepath.Join(root, "dist", filepath.Base(work))
	cleanupAfterAll = append(cleanupAfterAll, dist)
	redirected := regexp.MustCompile(`(?m)^dist: .*$`).ReplaceAllString(string(config), "dist: "+dist)
	if redirected == string(config) {
		return nil, fmt.Errorf(".goreleaser.yaml has no top-level dist: line to redirect")
	}
	// checksum.extra_files name files under dist/build: the MSI and the
	// container images.
	if !strings.Contains(redirected, `glob: "dist/build/`) {
		return nil, fmt.Errorf(".goreleaser.yaml has no checksum.extra_files glob under dist/build/ to redirect")
	}
	relDist, err := filepath.Rel(root, dist)
	if err != nil {
		return nil, err
	}
	redirected = strings.ReplaceAll(redirected, `glob: "dist/build/`, `glob: "`+filepath.ToSlash(relDist)+`/`)
	// linux/amd64 only (goreleaser release has no --single-target).
	redirected = regexp.MustCompile(`(?m)^(\s+)goos: \[.*\]$`).ReplaceAllString(redirected, "${1}goos: [linux]")
	redirected = regexp.MustCompile(`(?m)^(\s+)goarch: \[.*\]$`).ReplaceAllString(redirected, "${1}goarch: [amd64]")
	configPath := filepath.Join(work, "goreleaser.yaml")
	if err := os.WriteFile(configPath, []byte(redirected), 0o644); err != nil {
		return nil, err
	}
	// The snapshot version holds the build time to the second.
	for time.Now().UTC().Format("20060102150405") <= snapshotTime(f.Version) {
		time.Sleep(200 * time.Millisecond)
	}
	gobin, err := exec.Command("go", "env", "GOPATH").Output()
	if err != nil {
		return nil, err
	}
	if out, err := exec.Command("make", "-C", root, "--no-print-directory", "goreleaser").CombinedOutput(); err != nil {
		return nil, fmt.Errorf("make goreleaser: %v\n%s", err, out)
	}
	start := time.Now()
	cmd := exec.Command(filepath.Join(strings.TrimSpace(string(gobin)), "bin", "goreleaser"), "release", "--snapshot", "--clean", "--skip=publish", "-f", configPath)
	cmd.Dir = root
	pubLine, err := exec.Command("sed", "-n", "2p", pub).Output()
	if err != nil {
		return nil, err
	}
	cmd.Env = append(os.Environ(), "TENTACLE_SIGNING_KEY="+key, "TENTACLE_SIGNING_PUBKEY="+strings.TrimSpace(string(pubLine)))
	// This snapshot also carries the container images (goreleaser's hook,
	// packaging/container/goreleaser.sh), where podman can be had:
	// image_test.go checks them and takes them through `release mirror`.
	if _, err := exec.LookPath("podman"); err == nil {
		cmd.Env = append(cmd.Env, "TENTACLE_IMAGES=1")
	} else {
		t.Logf("second snapshot without its container images: podman is not installed (`make package-test` installs it with apt-get)")
	}
	out, err := cmd.CombinedOutput()
	if slices.Contains(cmd.Env, "TENTACLE_IMAGES=1") {
		// The hook built the images into podman's own store as well; the
		// version is in metadata.json from before the build, so a failed
		// run's images go too.
		var meta struct{ Version string }
		if data, err := os.ReadFile(filepath.Join(dist, "metadata.json")); err == nil && json.Unmarshal(data, &meta) == nil && meta.Version != "" {
			tag := strings.ReplaceAll(meta.Version, "+", "-")
			imagesAfterAll = append(imagesAfterAll, "localhost/tentacle:"+tag, "localhost/tentacle:"+tag+"-static")
		}
	}
	if err != nil {
		return nil, fmt.Errorf("goreleaser (second snapshot): %v\n%s", err, out)
	}
	t.Logf("second snapshot (linux/amd64, signed) built in %s", time.Since(start).Round(time.Second))
	b, err := loadBuild(dist)
	if err != nil {
		return nil, err
	}
	b.PublicKey = pub
	return b, nil
}

// cleanupAfterAll are folders shared by several tests, and imagesAfterAll
// the podman images the builds made, removed by TestMain.
var (
	cleanupAfterAll []string
	imagesAfterAll  []string
)

func TestMain(m *testing.M) {
	code := m.Run()
	for _, dir := range cleanupAfterAll {
		os.RemoveAll(dir)
	}
	if len(imagesAfterAll) > 0 {
		exec.Command("podman", append([]string{"rmi", "--force", "--ignore"}, imagesAfterAll...)...).Run()
	}
	os.Exit(code)
}

// snapshotTime is the build time in a snapshot version
// (X.Y.Z-snapshot.<UTC yyyymmddhhmmss>.<commit>).
func snapshotTime(version string) string {
	if m := regexp.MustCompile(`-snapshot\.(\d{14})\.`).FindStringSubmatch(version); m != nil {
		return m[1]
	}
	return ""
}

func gitHead(root string) string {
	out, _ := exec.Command("git", "-C", root, "rev-parse", "HEAD").Output()
	return strings.TrimSpace(string(out))
}

// cleanTree is true when nothing tracked differs from HEAD.
func cleanTree(root string) bool {
	out, err := exec.Command("git", "-C", root, "status", "--porcelain", "--untracked-files=no").Output()
	return err == nil && len(strings.TrimSpace(string(out))) == 0
}

// run runs a host command that has to succeed and returns its output.
func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}
