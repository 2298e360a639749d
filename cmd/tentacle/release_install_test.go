package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/alecthomas/kong"

	"github.com/tentacle-go/tentacle/provision/release"
)

// writeReleaseTarGz writes a goreleaser-shaped archive holding binary as
// tentacle/Tentacle.
func writeReleaseTarGz(t *testing.T, path, binary string) {
	t.Helper()
	b, err := os.ReadFile(binary)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	tw.WriteHeader(&tar.Header{Name: "tentacle/", Typeflag: tar.TypeDir, Mode: 0o755})
	name := "tentacle/Tentacle"
	if runtime.GOOS == "windows" {
		name += ".exe"
	}
	tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o755, Size: int64(len(b))})
	tw.Write(b)
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	gz.Close()
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestReleaseInstallFlags(t *testing.T) {
	var cli struct {
		Install ReleaseInstallCmd `cmd:"" name:"install"`
	}
	p := kong.Must(&cli)
	if _, err := p.Parse([]string{"install", "--from", "a.tar.gz", "--target", "/opt/tentacle", "--dry-run", "--format", "json"}); err != nil {
		t.Fatal(err)
	}
	c := cli.Install
	if c.From != "a.tar.gz" || c.Target != "/opt/tentacle" || !c.DryRun || c.Format != "json" {
		t.Errorf("parsed %+v", c)
	}
	var out, errOut bytes.Buffer
	e := &Env{Stdout: &out, Stderr: &errOut, Getenv: func(string) string { return "" }}
	if code := run([]string{"release", "install"}, e); code != exitUserError || !strings.Contains(errOut.String(), "give --from FILE") || !strings.Contains(errOut.String(), "--feed FEED") {
		t.Errorf("neither --from nor --feed: exit %d, stderr %q", code, errOut.String())
	}
	errOut.Reset()
	if code := run([]string{"release", "install", "--from", "a.tar.gz", "--feed", "/srv/feed"}, e); code != exitUserError || !strings.Contains(errOut.String(), "not both") {
		t.Errorf("--from and --feed: exit %d, stderr %q", code, errOut.String())
	}
}

// TestReleaseInstallFromAFeed: --feed and --version download the archive of
// that version for this machine, verify it against checksums.txt and
// install it, keeping the previous binary.
func TestReleaseInstallFromAFeed(t *testing.T) {
	feedDir := t.TempDir()
	name, err := release.ArtifactName(release.KindArchive, "1.0.0", release.HostPlatform())
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(feedDir, "1.0.0"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeReleaseTarGz(t, filepath.Join(feedDir, "1.0.0", name), builtBinary)
	data, _ := os.ReadFile(filepath.Join(feedDir, "1.0.0", name))
	sum := sha256.Sum256(data)
	os.WriteFile(filepath.Join(feedDir, "1.0.0", "checksums.txt"), []byte(hex.EncodeToString(sum[:])+"  "+name+"\n"), 0o644)
	os.WriteFile(filepath.Join(feedDir, "index.json"), []byte(`{"schema":1,"versions":[{"version":"1.0.0","date":"2026-12-03T09:00:00Z","files":["checksums.txt","`+name+`"]}]}`), 0o644)

	t.Setenv("PATH", t.TempDir()) // no dpkg or rpm: a binary install
	// The binary being replaced: a script that says it is 0.9.0; Windows
	// runs no scripts as programs, so there it is a copy of the built binary.
	target := filepath.Join(t.TempDir(), "tentacle")
	before := []byte("#!/bin/sh\necho 0.9.0\n")
	if runtime.GOOS == "windows" {
		target += ".exe"
		before, _ = os.ReadFile(builtBinary)
	}
	os.WriteFile(target, before, 0o755)
	downloads := t.TempDir()
	var out, errOut bytes.Buffer
	e := &Env{Stdout: &out, Stderr: &errOut, Getenv: func(string) string { return "" }}
	args := []string{"release", "install", "--feed", feedDir, "--version", "~> 1.0", "--target", target, "--download-dir", downloads}
	if code := run(args, e); code != exitOK {
		t.Fatalf("exit %d\n%s\n%s", code, out.String(), errOut.String())
	}
	if !strings.Contains(out.String(), "Installed tentacle") || !strings.Contains(errOut.String(), "NOT checked") {
		t.Errorf("stdout %q, stderr %q", out.String(), errOut.String())
	}
	if _, err := os.Stat(filepath.Join(downloads, "1.0.0", name)); err != nil {
		t.Errorf("the artifact is not in --download-dir: %v", err)
	}
	if prev, _ := os.ReadFile(release.PreviousPath(target)); !bytes.Equal(prev, before) {
		t.Errorf("the previous binary was not kept: %q", prev)
	}
	built, _ := os.ReadFile(builtBinary)
	if got, _ := os.ReadFile(target); !bytes.Equal(got, built) {
		t.Error("the target is not the feed's binary")
	}
}

// TestReleaseInstallOfTheRealBinary: a dry run in JSON, then the install,
// then an artifact that is not there; dpkg and rpm are hidden so the binary
// path is taken whatever owns what on this machine.
func TestReleaseInstallOfTheRealBinary(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	dir := t.TempDir()
	target := filepath.Join(dir, "tentacle")
	if runtime.GOOS == "windows" {
		target += ".exe"
	}
	b, _ := os.ReadFile(builtBinary)
	if err := os.WriteFile(target, b, 0o755); err != nil {
		t.Fatal(err)
	}
	archive := filepath.Join(t.TempDir(), "tentacle_1.0.0_"+runtime.GOOS+"_amd64.tar.gz")
	writeReleaseTarGz(t, archive, builtBinary)

	var out, errOut bytes.Buffer
	e := &Env{Stdout: &out, Stderr: &errOut, Getenv: func(string) string { return "" }}
	dry := &ReleaseInstallCmd{From: archive, Target: target, DryRun: true, formatFlag: formatFlag{Format: "json"}}
	if err := dry.Run(e); err != nil {
		t.Fatal(err)
	}
	var res struct {
		Method  string
		Version string
		DryRun  bool
		Steps   []string
	}
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		t.Fatalf("%v: %s", err, out.String())
	}
	if res.Method != "binary" || !res.DryRun || len(res.Steps) != 2 || res.Version == "" {
		t.Errorf("dry run said %s", out.String())
	}
	if _, err := os.Stat(target + ".previous"); err == nil {
		t.Fatal("the dry run kept a previous binary")
	}

	out.Reset()
	if err := (&ReleaseInstallCmd{From: archive, Target: target}).Run(e); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Installed tentacle " + strings.SplitN(res.Version, "+", 2)[0], "is kept as " + target + ".previous"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output %q lacks %q", out.String(), want)
		}
	}
	if _, err := os.Stat(target + ".previous"); err != nil {
		t.Errorf("no previous binary: %v", err)
	}

	errOut.Reset()
	err := (&ReleaseInstallCmd{From: filepath.Join(dir, "missing.tar.gz"), Target: target}).Run(e)
	if code := reportError(e, err); code != exitUserError {
		t.Errorf("missing artifact: exit %d, want %d", code, exitUserError)
	}
	if msg := errOut.String(); strings.Count(msg, "\n") != 1 || !strings.Contains(msg, "missing.tar.gz does not exist") {
		t.Errorf("missing artifact: stderr %q", msg)
	}
}
