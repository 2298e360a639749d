//go:build linux

package packaging_test

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/tentacle-go/tentacle/internal/nspawntest"
	"github.com/tentacle-go/tentacle/internal/podmantest"
	"github.com/tentacle-go/tentacle/packaging/feed"
	"github.com/tentacle-go/tentacle/provision/release"
)

// imageNames are the names of the container images' OCI archives of
// version (Debian first, then static): the names `release download --kind
// image|image-static` asks a feed for.
func imageNames(t *testing.T, version string) []string {
	t.Helper()
	var names []string
	for _, kind := range []release.Kind{release.KindImage, release.KindImageStatic} {
		name, err := release.ArtifactName(kind, version, release.Platform{OS: "linux", Arch: "amd64"})
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, name)
	}
	return names
}

// imageArchives are the paths of the container images goreleaser's hook
// wrote into build b; the test skips when b was built without them because
// podman is not installed.
func imageArchives(t *testing.T, b *goreleaserBuild) []string {
	t.Helper()
	if _, err := exec.LookPath("podman"); err != nil {
		t.Skip("SKIP: podman is not installed, so the snapshot was built without its container images (`make package-test` installs it with apt-get)")
	}
	var archives []string
	for _, name := range imageNames(t, b.Version) {
		archives = append(archives, filepath.Join(b.Dir, name))
	}
	return archives
}

// imageFiles are the names of the container images' OCI archives that
// build b holds (none unless it was built with TENTACLE_IMAGES=1).
func (b *goreleaserBuild) imageFiles(t *testing.T) []string {
	t.Helper()
	var names []string
	for _, name := range imageNames(t, b.Version) {
		if _, err := os.Stat(filepath.Join(b.Dir, name)); err == nil {
			names = append(names, name)
		}
	}
	return names
}

// podmanStore is podman on an image store of the test's own.
type podmanStore struct {
	t *testing.T
	*podmantest.Podman
}

func newPodmanStore(t *testing.T) *podmanStore {
	t.Helper()
	return &podmanStore{t: t, Podman: podmantest.NewStore(t, nspawntest.RepoRoot(t))}
}

func (p *podmanStore) must(args ...string) string {
	p.t.Helper()
	return p.Must(p.t, args...)
}

// loadAndRun checks that archive is an OCI archive, loads it into the store
// and runs `tentacle version` in the image it holds, which must print
// version.
func (p *podmanStore) loadAndRun(archive, version string) {
	p.t.Helper()
	// An OCI image layout in a tar (what `podman save --format oci-archive`
	// writes, and what skopeo, crane or a registry client push).
	list := run(p.t, "tar", "-tf", archive)
	for _, want := range []string{"oci-layout", "index.json"} {
		if !regexp.MustCompile(`(?m)^(\./)?` + regexp.QuoteMeta(want) + `$`).MatchString(list) {
			p.t.Fatalf("%s has no %s: not an OCI archive:\n%s", filepath.Base(archive), want, list)
		}
	}
	out := p.must("load", "--input", archive)
	m := regexp.MustCompile(`Loaded image(?:\(s\))?: *(\S+)`).FindStringSubmatch(out)
	if m == nil {
		p.t.Fatalf("podman load %s named no image:\n%s", filepath.Base(archive), out)
	}
	image := m[1]
	// Read back from the store, not from load's message.
	if got := p.must("image", "inspect", "--format", `{{index .Labels "org.opencontainers.image.version"}}`, image); got != version {
		p.t.Errorf("%s: label org.opencontainers.image.version is %q, want %q", image, got, version)
	}
	got := p.must("run", "--rm", "--network", "none", "--entrypoint", "/usr/bin/tentacle", image, "version")
	if got != version {
		p.t.Errorf("`tentacle version` in %s (from %s) printed %q, want %q", image, filepath.Base(archive), got, version)
	}
	// The script supervisor beside the binary, of the same build, where
	// the agent looks for it (scripts.FindSupervisor).
	if got := p.must("run", "--rm", "--network", "none", "--entrypoint", "/usr/bin/tentacle-supervisor", image, "version"); got != version {
		p.t.Errorf("`tentacle-supervisor version` in %s printed %q, want %q", image, got, version)
	}
	p.t.Logf("%s: loaded as %s, `tentacle version` and `tentacle-supervisor version` print %s", filepath.Base(archive), image, got)
}

// TestContainerImagesFromGoreleaser checks the images goreleaser's
// configuration produces (TENTACLE_IMAGES=1, the second snapshot): both OCI
// archives lie beside the other artifacts, checksums.txt (signed) covers
// them, and each loads into an empty podman store and runs the release's
// `tentacle version`.
func TestContainerImagesFromGoreleaser(t *testing.T) {
	s := second(t)
	archives := imageArchives(t, s)
	sums, err := os.ReadFile(filepath.Join(s.Dir, "checksums.txt"))
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range archives {
		if _, err := os.Stat(a); err != nil {
			t.Fatalf("goreleaser with TENTACLE_IMAGES=1 wrote no %s: %v", filepath.Base(a), err)
		}
		if !regexp.MustCompile(`(?m)^[0-9a-f]{64}  ` + regexp.QuoteMeta(filepath.Base(a)) + `$`).Match(sums) {
			t.Errorf("checksums.txt does not list %s:\n%s", filepath.Base(a), sums)
		}
	}
	cmd := exec.Command("sha256sum", "--strict", "-c", "checksums.txt")
	cmd.Dir = s.Dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("sha256sum -c checksums.txt: %v\n%s", err, out)
	}
	run(t, "minisign", "-V", "-p", s.PublicKey, "-m", filepath.Join(s.Dir, "checksums.txt"))
	store := newPodmanStore(t)
	for _, a := range archives {
		store.loadAndRun(a, s.Version)
	}
}

// TestContainerImagesThroughReleaseMirror takes the images to an air-gapped
// site as users do: the snapshot published into a feed, `tentacle release
// mirror` (the release's own binary) copies the version with its signed
// checksums, and an archive taken from the mirror verifies and loads. An
// archive changed in the feed is refused.
func TestContainerImagesThroughReleaseMirror(t *testing.T) {
	s := second(t)
	archives := imageArchives(t, s)
	work := t.TempDir()
	feedDir := filepath.Join(work, "feed")
	published, err := feed.Publish(s.Dir, feedDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range archives {
		if !slices.Contains(published.Files, filepath.Base(a)) {
			t.Fatalf("the feed's version %s does not list %s: %v", published.Version, filepath.Base(a), published.Files)
		}
	}
	run(t, "tar", "xzf", s.find(t, "Archive", `_linux_amd64\.tar\.gz$`), "-C", work)
	bin := filepath.Join(work, "tentacle", "Tentacle")
	pub, err := os.ReadFile(s.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	pubKey := strings.TrimSpace(string(pub))
	pubKey = pubKey[strings.LastIndex(pubKey, "\n")+1:]
	tentacle := func(args ...string) (string, error) {
		cmd := exec.Command(bin, args...)
		cmd.Env = []string{"NO_COLOR=1", "PATH=/nonexistent", "HOME=" + work}
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	mirror := func(to string) (string, error) {
		return tentacle("release", "mirror", "--feed", feedDir, "--version", s.Version, "--to", to, "--pubkey", pubKey)
	}
	to := filepath.Join(work, "mirror")
	if out, err := mirror(to); err != nil {
		t.Fatalf("release mirror: %v\n%s", err, out)
	}
	vdir := filepath.Join(to, s.Version)
	// The mirror is a feed whose index lists the images, and its copy of
	// the version verifies on its own: the signature, then every file.
	index, err := os.ReadFile(filepath.Join(to, "index.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range archives {
		if !bytes.Contains(index, []byte(`"`+filepath.Base(a)+`"`)) {
			t.Errorf("the mirror's index.json does not list %s:\n%s", filepath.Base(a), index)
		}
	}
	run(t, "minisign", "-V", "-p", s.PublicKey, "-m", filepath.Join(vdir, "checksums.txt"))
	cmd := exec.Command("sha256sum", "--strict", "-c", "checksums.txt")
	cmd.Dir = vdir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("sha256sum -c in the mirror: %v\n%s", err, out)
	}
	for _, a := range archives {
		if !strings.Contains(string(out), filepath.Base(a)+": OK") {
			t.Errorf("the mirror's checksums.txt does not cover %s:\n%s", filepath.Base(a), out)
		}
	}
	// At the site: `release download --kind image` from the mirror checks
	// the signature and the SHA-256, and what it wrote loads and runs.
	dl := filepath.Join(work, "download")
	download := exec.Command(bin, "release", "download", "--feed", to, "--version", s.Version, "--kind", "image",
		"--to", dl, "--pubkey", pubKey, "--format", "json")
	download.Env = []string{"NO_COLOR=1", "PATH=/nonexistent", "HOME=" + work}
	var stderr bytes.Buffer
	download.Stderr = &stderr
	if out, err = download.Output(); err != nil {
		t.Fatalf("release download --kind image from the mirror: %v\n%s%s", err, out, stderr.Bytes())
	}
	var got struct{ Path, Signature string }
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("release download --format json: %v\n%s", err, out)
	}
	if got.Signature != "verified" || filepath.Base(got.Path) != filepath.Base(archives[0]) {
		t.Fatalf("release download --kind image: got %s (signature %s), want %s verified", got.Path, got.Signature, filepath.Base(archives[0]))
	}
	store := newPodmanStore(t)
	store.loadAndRun(got.Path, s.Version)

	// A feed whose image was changed after signing: mirror refuses the
	// version and leaves nothing of it.
	tampered := filepath.Join(feedDir, s.Version, filepath.Base(archives[1]))
	f, err := os.OpenFile(tampered, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte{0}); err != nil {
		t.Fatal(err)
	}
	f.Close()
	bad := filepath.Join(work, "mirror-of-tampered")
	if out, err := mirror(bad); err == nil || !strings.Contains(out, filepath.Base(archives[1])) {
		t.Errorf("release mirror of a feed with a changed image: %v, want a refusal naming it\n%s", err, out)
	}
	if _, err := os.Stat(filepath.Join(bad, s.Version)); err == nil {
		t.Errorf("release mirror left %s in the mirror after refusing it", s.Version)
	}
}
