package main

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"aead.dev/minisign"

	"github.com/tentacle-go/tentacle/provision/release"
)

// releaseFeed writes a signed feed of two versions (and a pre-release) with
// the linux/amd64 archive and deb, as `make package` names them, under dir;
// it returns the public key.
func releaseFeed(t *testing.T, dir string) string {
	t.Helper()
	pub, priv, err := minisign.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	var versions []release.Version
	for _, v := range []string{"1.5.0-rc.1", "1.4.2", "1.4.0"} {
		files := map[string][]byte{}
		for _, k := range []release.Kind{release.KindArchive, release.KindDeb} {
			name, _ := release.ArtifactName(k, v, release.Platform{OS: "linux", Arch: "amd64"})
			files[name] = []byte(strings.Repeat(name, 1000))
		}
		versions = append(versions, writeFeedVersion(t, dir, v, files, priv))
	}
	writeFeedIndex(t, dir, versions)
	key, _ := pub.MarshalText()
	return string(key)
}

// writeFeedVersion writes version v of a feed under dir: files (name ->
// content), their checksums.txt and its signature with priv. It returns
// the version's entry of the index.
func writeFeedVersion(t *testing.T, dir, v string, files map[string][]byte, priv minisign.PrivateKey) release.Version {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(dir, v), 0o755); err != nil {
		t.Fatal(err)
	}
	var sums bytes.Buffer
	names := []string{release.ChecksumsFile, release.SignatureFile}
	for _, name := range slices.Sorted(maps.Keys(files)) {
		if err := os.WriteFile(filepath.Join(dir, v, name), files[name], 0o644); err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(files[name])
		fmt.Fprintf(&sums, "%s  %s\n", hex.EncodeToString(sum[:]), name)
		names = append(names, name)
	}
	os.WriteFile(filepath.Join(dir, v, release.ChecksumsFile), sums.Bytes(), 0o644)
	os.WriteFile(filepath.Join(dir, v, release.SignatureFile), minisign.Sign(priv, sums.Bytes()), 0o644)
	return release.Version{Version: v, Date: "2026-12-03T09:00:00Z", Prerelease: strings.Contains(v, "-"), Files: names}
}

// writeFeedIndex writes the feed's index of versions under dir.
func writeFeedIndex(t *testing.T, dir string, versions []release.Version) {
	t.Helper()
	data, _ := json.Marshal(release.Index{Schema: release.Schema, Versions: versions})
	if err := os.WriteFile(filepath.Join(dir, release.IndexFile), data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestReleaseCommands(t *testing.T) {
	h := newHarness(t)
	feed := filepath.Join(h.tmp, "feed")
	key := releaseFeed(t, feed)

	// No feed anywhere: say how to give one.
	if errs := h.fail(exitUserError, "release", "list"); !strings.Contains(errs, "TENTACLE_RELEASES_FEED") {
		t.Errorf("no feed: %s", errs)
	}
	h.env["TENTACLE_RELEASES_FEED"] = feed
	out := h.must("release", "list", "--version", "~> 1.4")
	if !strings.Contains(out, "1.4.2") || !strings.Contains(out, "1.4.0") || strings.Contains(out, "1.5.0") {
		t.Errorf("release list ~> 1.4:\n%s", out)
	}
	var list struct {
		Feed     string
		Versions []release.Version
	}
	if err := json.Unmarshal([]byte(h.must("release", "list", "--prerelease", "--format", "json")), &list); err != nil {
		t.Fatal(err)
	}
	if len(list.Versions) != 3 || list.Versions[0].Version != "1.5.0-rc.1" || list.Feed != feed {
		t.Errorf("release list --prerelease --format json: %+v", list)
	}
	if errs := h.fail(exitUserError, "release", "list", "--version", ">= 2"); !strings.Contains(errs, "No version in the feed matches") {
		t.Errorf("no match: %s", errs)
	}

	// A wrong key: refused, and nothing is written (h.fail checks).
	otherPub, _, _ := minisign.GenerateKey(rand.Reader)
	otherKey, _ := otherPub.MarshalText()
	if errs := h.fail(exitUserError, "release", "download", "--os", "linux", "--arch", "amd64", "--pubkey", string(otherKey), "--to", "dl"); !strings.Contains(errs, "does not match the pinned release key") {
		t.Errorf("wrong key: %s", errs)
	}

	h.env["TENTACLE_RELEASES_PUBKEY"] = key
	var dl struct{ Version, File, Path, SHA256, Signature string }
	if err := json.Unmarshal([]byte(h.must("release", "download", "--kind", "deb", "--os", "linux", "--arch", "amd64", "--to", "dl", "--format", "json")), &dl); err != nil {
		t.Fatal(err)
	}
	if dl.Version != "1.4.2" || dl.File != "tentacle-go_1.4.2-1_amd64.deb" || dl.Path != filepath.Join(h.cwd, "dl", dl.File) || dl.Signature != "verified" {
		t.Errorf("download: %+v", dl)
	}
	if data, err := os.ReadFile(dl.Path); err != nil || !bytes.Equal(data, []byte(strings.Repeat(dl.File, 1000))) {
		t.Errorf("the downloaded file: %v", err)
	}

	// --insecure-skip-signature works without a signature, and says so loudly.
	os.Remove(filepath.Join(feed, "1.4.0", release.SignatureFile))
	if errs := h.fail(exitUserError, "release", "download", "--version", "1.4.0", "--os", "linux", "--arch", "amd64", "--to", "dl2"); !strings.Contains(errs, "is not signed") {
		t.Errorf("unsigned with a key: %s", errs)
	}
	_, errs, code := h.run("release", "download", "--version", "1.4.0", "--os", "linux", "--arch", "amd64", "--to", "dl2", "--insecure-skip-signature")
	if code != 0 || !strings.Contains(errs, "WARNING: --insecure-skip-signature") {
		t.Errorf("--insecure-skip-signature: exit %d, %s", code, errs)
	}

	// A mirror is a feed.
	h.must("release", "mirror", "--version", "1.4.2", "--to", "mirror")
	out = h.must("release", "list", "--feed", filepath.Join(h.cwd, "mirror"))
	if !strings.Contains(out, "1.4.2") || strings.Contains(out, "1.4.0") {
		t.Errorf("list of the mirror:\n%s", out)
	}
}

// An instance's configuration names its feed and key (configure
// --releases-feed/--releases-public-key); flags and the environment win over
// it, and `default` removes it.
func TestReleaseDefaultsFromTheInstance(t *testing.T) {
	h := newHarness(t)
	feed := filepath.Join(h.tmp, "feed")
	key := releaseFeed(t, feed)
	otherPub, _, _ := minisign.GenerateKey(rand.Reader)
	otherKey, _ := otherPub.MarshalText()
	h.must("create-instance", "--instance", "Tentacle", "--config", filepath.Join(h.tmp, "Tentacle.config"))

	// Bad values are refused before anything is written.
	if errs := h.fail(exitUserError, "configure", "--releases-feed", "ftp://example.invalid/feed"); !strings.Contains(errs, "--releases-feed") || !strings.Contains(errs, "scheme") {
		t.Errorf("ftp feed: %s", errs)
	}
	if errs := h.fail(exitUserError, "configure", "--releases-public-key", "RWnotakey"); !strings.Contains(errs, "not a minisign public key") {
		t.Errorf("bad key: %s", errs)
	}

	// A relative directory is saved absolute; a .pub file's two lines are
	// saved as the key line.
	rel, err := filepath.Rel(h.cwd, feed)
	if err != nil {
		t.Fatal(err)
	}
	h.must("configure", "--releases-feed", rel, "--releases-public-key", "untrusted comment: minisign public key\n"+key)
	saved, err := os.ReadFile(filepath.Join(h.tmp, "Tentacle.config"))
	if out := string(saved); err != nil || !strings.Contains(out, `key="Tentacle.Releases.Feed">`+feed+"<") || !strings.Contains(out, `key="Tentacle.Releases.PublicKey">`+key+"<") {
		t.Errorf("the configuration file after configure (%v):\n%s", err, saved)
	}
	if out := h.must("configure", "--releases-feed", rel); !strings.Contains(out, "No changes") {
		t.Errorf("the same feed again is not a no-op:\n%s", out)
	}

	// The default instance's feed and key are used (signature verified),
	// named or not.
	var dl struct{ Version, Signature string }
	for _, args := range [][]string{nil, {"--instance", "Tentacle"}} {
		cmd := append([]string{"release", "download", "--os", "linux", "--arch", "amd64", "--to", "dl", "--format", "json"}, args...)
		if err := json.Unmarshal([]byte(h.must(cmd...)), &dl); err != nil {
			t.Fatal(err)
		}
		if dl.Version != "1.4.2" || dl.Signature != "verified" {
			t.Errorf("download with the instance's defaults %v: %+v", args, dl)
		}
	}
	// The environment wins over the instance: a wrong key there is used.
	h.env["TENTACLE_RELEASES_PUBKEY"] = string(otherKey)
	if errs := h.fail(exitUserError, "release", "download", "--os", "linux", "--arch", "amd64", "--to", "dl3"); !strings.Contains(errs, "does not match the pinned release key") {
		t.Errorf("the environment's key did not win: %s", errs)
	}
	delete(h.env, "TENTACLE_RELEASES_PUBKEY")
	// An instance that does not exist is an error, not a silent default.
	if errs := h.fail(exitUserError, "release", "list", "--instance", "Nope"); !strings.Contains(errs, "Nope") {
		t.Errorf("unknown instance: %s", errs)
	}

	// default removes both; then no feed is known.
	h.must("configure", "--releases-feed", "default", "--releases-public-key", "default")
	if errs := h.fail(exitUserError, "release", "list"); !strings.Contains(errs, "configure --releases-feed") {
		t.Errorf("after removing the feed: %s", errs)
	}
}
