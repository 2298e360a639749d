package release

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"aead.dev/minisign"
)

// writeSignedFeed lays out a feed of versions (newest first), each holding
// the given files, with checksums.txt signed by priv.
func writeSignedFeed(t *testing.T, dir string, priv minisign.PrivateKey, versions []string, files map[string]map[string][]byte) {
	t.Helper()
	idx := Index{Schema: Schema}
	for _, v := range versions {
		vdir := filepath.Join(dir, v)
		if err := os.MkdirAll(vdir, 0o755); err != nil {
			t.Fatal(err)
		}
		var names []string
		for n := range files[v] {
			names = append(names, n)
		}
		slices.Sort(names)
		var sums bytes.Buffer
		for _, n := range names {
			writeFile(t, filepath.Join(vdir, n), files[v][n])
			sum := sha256.Sum256(files[v][n])
			fmt.Fprintf(&sums, "%s  %s\n", hex.EncodeToString(sum[:]), n)
		}
		writeFile(t, filepath.Join(vdir, ChecksumsFile), sums.Bytes())
		writeFile(t, filepath.Join(vdir, SignatureFile), minisign.Sign(priv, sums.Bytes()))
		idx.Versions = append(idx.Versions, Version{Version: v, Date: "2026-12-03T09:00:00Z", Files: append([]string{ChecksumsFile, SignatureFile}, names...)})
	}
	data, _ := json.MarshalIndent(idx, "", "  ")
	writeFile(t, filepath.Join(dir, IndexFile), data)
}

// TestFetchForInstallThenInstall: from an HTTPS feed of two real builds,
// the archive of the newest version the constraint allows is downloaded
// (verified) for this machine's binary install, installed, and a second
// fetch finds the target up to date and downloads nothing.
func TestFetchForInstallThenInstall(t *testing.T) {
	v1, v2 := tentacleBinary(t, "1.0.0"), tentacleBinary(t, "2.0.0")
	noPackageManager(t)
	pub, priv, err := minisign.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pubText, _ := pub.MarshalText()
	feedDir := t.TempDir()
	files := map[string]map[string][]byte{}
	for v, bin := range map[string]string{"1.0.0": v1, "2.0.0": v2} {
		name, err := ArtifactName(KindArchive, v, HostPlatform())
		if err != nil {
			t.Fatal(err)
		}
		archive := releaseArchive(t, t.TempDir(), bin)
		data, err := os.ReadFile(archive)
		if err != nil {
			t.Fatal(err)
		}
		files[v] = map[string][]byte{name: data}
	}
	writeSignedFeed(t, feedDir, priv, []string{"2.0.0", "1.0.0"}, files)
	url, client := serveHTTPS(t, feedDir, nil)
	feed, err := Open(url, Options{Client: client})
	if err != nil {
		t.Fatal(err)
	}
	target := filepath.Join(t.TempDir(), binaryName)
	copyBinaryTo(t, v1, target)
	downloads := t.TempDir()
	req := FetchRequest{Feed: feed, Constraint: ">= 1.0, < 3", Trust: Trust{PublicKey: string(pubText)}, Target: target, Dir: downloads}
	ctx := context.Background()

	got, err := FetchForInstall(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	wantName, _ := ArtifactName(KindArchive, "2.0.0", HostPlatform())
	if got.Version.Version != "2.0.0" || got.Current != "1.0.0" || got.Method != MethodBinary || got.Name != wantName || got.UpToDate() {
		t.Fatalf("fetched %+v", got)
	}
	if got.Path != filepath.Join(downloads, "2.0.0", wantName) {
		t.Errorf("downloaded to %s", got.Path)
	}
	if _, err := Install(ctx, got.Path, InstallOptions{Target: target}); err != nil {
		t.Fatal(err)
	}
	if v := versionOf(t, target); v != "2.0.0" {
		t.Errorf("after the install the target says %s", v)
	}

	// Up to date: nothing is downloaded.
	again, err := FetchForInstall(ctx, FetchRequest{Feed: feed, Constraint: "latest", Trust: req.Trust, Target: target, Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if !again.UpToDate() || again.Path != "" {
		t.Errorf("a target at the newest version: %+v", again)
	}

	// The previous version, as a rollback of a package install fetches it.
	prev, err := FetchVersion(ctx, req, again, "1.0.0")
	if err != nil {
		t.Fatal(err)
	}
	if prev.Version.Version != "1.0.0" || filepath.Base(prev.Path) != files2name(t, "1.0.0") {
		t.Errorf("fetched the previous version as %+v", prev)
	}
	if _, err := FetchVersion(ctx, req, again, "0.9.0"); err == nil {
		t.Error("a version the feed lacks was fetched")
	}

	// Another key: refused, nothing downloaded.
	otherPub, _, _ := minisign.GenerateKey(rand.Reader)
	otherText, _ := otherPub.MarshalText()
	empty := t.TempDir()
	copyBinaryTo(t, v1, target)
	_, err = FetchForInstall(ctx, FetchRequest{Feed: feed, Constraint: "latest", Trust: Trust{PublicKey: string(otherText)}, Target: target, Dir: empty})
	if !errors.Is(err, ErrUnverified) {
		t.Errorf("a feed signed with another key: %v", err)
	}
	if ents, _ := os.ReadDir(empty); len(ents) != 0 {
		t.Errorf("a refused fetch left %v", ents)
	}
}

func files2name(t *testing.T, v string) string {
	t.Helper()
	n, err := ArtifactName(KindArchive, v, HostPlatform())
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestKindForEachInstallMethod(t *testing.T) {
	for m, want := range map[InstallMethod]Kind{MethodBinary: KindArchive, MethodDeb: KindDeb, MethodRPM: KindRPM} {
		if got := KindFor(m); got != want {
			t.Errorf("KindFor(%s) = %s, want %s", m, got, want)
		}
	}
	if !SameVersion("1.2.0", "v1.2.0") || !SameVersion("1.2.0+abc", "1.2.0") || SameVersion("1.2.0", "1.2.1") || SameVersion("", "") {
		t.Error("SameVersion")
	}
}
