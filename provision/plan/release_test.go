package plan

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tentacle-go/tentacle/provision/release"
)

// releaseFeed is a feed folder listing version with this machine's archive
// (unsigned: enough to plan, and to see verification refuse it).
func releaseFeed(t *testing.T, version string) string {
	t.Helper()
	dir := t.TempDir()
	name, err := release.ArtifactName(release.KindArchive, version, release.HostPlatform())
	if err != nil {
		t.Fatal(err)
	}
	idx, _ := json.Marshal(release.Index{Schema: 1, Versions: []release.Version{{Version: version, Date: "2026-01-01T00:00:00Z", Files: []string{name, release.ChecksumsFile}}}})
	if err := os.Mkdir(filepath.Join(dir, version), 0o755); err != nil {
		t.Fatal(err)
	}
	for file, data := range map[string]string{"index.json": string(idx), version + "/" + release.ChecksumsFile: strings.Repeat("0", 64) + "  " + name + "\n", version + "/" + name: "not an archive"} {
		if err := os.WriteFile(filepath.Join(dir, file), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestReleaseStep(t *testing.T) {
	feed := releaseFeed(t, "1.4.0")
	target := filepath.Join(t.TempDir(), "tentacle")
	if err := os.WriteFile(target, []byte("the installed binary"), 0o755); err != nil {
		t.Fatal(err)
	}
	src := "release:\n  feed: " + feed + "\n  version: \"~> 1.4\"\n  target: " + target + "\n  public-key: RWQf6LRCGA9i53mlYecO4IzT51TGPpvWucNSCh1CBM0QTaLn73Y7GFO3\ninstances:\n  - name: A\n"
	f := parse(t, src)

	opts := machine(t, nil)
	opts.CurrentVersion = "1.4.0"
	opts.DryRun = true
	res, err := Apply(context.Background(), f, opts)
	if err != nil || res.Steps[0].Step != "release" || res.Steps[0].Status != Unchanged {
		t.Fatalf("at the newest version: %v %+v", err, res.Steps)
	}

	opts.CurrentVersion = "1.3.0"
	res, err = Apply(context.Background(), f, opts)
	if err != nil || res.Steps[0].Status != Changed || !strings.Contains(res.Steps[0].Changes[0], "install tentacle 1.4.0") {
		t.Fatalf("dry run from 1.3.0: %v %+v", err, res.Steps)
	}

	// A feed whose checksums are not signed with the pinned key stops the
	// run at the release step, with the binary untouched.
	opts.DryRun = false
	_, err = Apply(context.Background(), f, opts)
	var se *StepError
	if !errors.As(err, &se) || se.Step != "release" || !strings.Contains(err.Error(), "is not signed (no checksums.txt.minisig) but a release key is pinned") {
		t.Fatalf("unsigned feed: %v", err)
	}
	if data, _ := os.ReadFile(target); string(data) != "the installed binary" {
		t.Fatal("a refused release changed the binary")
	}
	if entries, _ := os.ReadDir(opts.Root); len(entries) != 0 {
		t.Fatalf("the steps after a failed release ran: %v", entries)
	}
}
