package release

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"

	"aead.dev/minisign"
)

// fixtureVersions are the fixture feed's versions, newest first.
var fixtureVersions = []string{"2.0.0", "1.5.0-rc.1", "1.4.2", "1.4.0"}

// fixture is a feed folder laid out as `make package` writes it, with the
// artifact names of packaging/README.md (contents are random bytes: these
// tests are about the feed, not the artifacts), signed with a fresh key.
type fixture struct {
	dir    string
	pubKey string // RW… text
	priv   minisign.PrivateKey
}

// artifactSize is large enough that a download spans many reads.
const artifactSize = 256 << 10

func newFixture(t testing.TB) *fixture {
	t.Helper()
	pub, priv, err := minisign.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pubText, err := pub.MarshalText()
	if err != nil {
		t.Fatal(err)
	}
	fx := &fixture{dir: t.TempDir(), pubKey: string(pubText), priv: priv}
	idx := Index{Schema: Schema}
	for i, v := range fixtureVersions {
		vdir := filepath.Join(fx.dir, v)
		if err := os.MkdirAll(vdir, 0o755); err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, p := range []Platform{{"linux", "amd64"}, {"linux", "arm64"}, {"linux", "armv7"}, {"windows", "amd64"}} {
			for _, k := range []Kind{KindArchive, KindDeb, KindRPM} {
				if n, err := ArtifactName(k, v, p); err == nil {
					names = append(names, n)
				}
			}
		}
		var sums bytes.Buffer
		slices.Sort(names)
		for _, n := range names {
			data := make([]byte, artifactSize)
			rand.Read(data)
			writeFile(t, filepath.Join(vdir, n), data)
			sum := sha256.Sum256(data)
			fmt.Fprintf(&sums, "%s  %s\n", hex.EncodeToString(sum[:]), n)
		}
		writeFile(t, filepath.Join(vdir, ChecksumsFile), sums.Bytes())
		writeFile(t, filepath.Join(vdir, SignatureFile), minisign.Sign(priv, sums.Bytes()))
		files := append([]string{ChecksumsFile, SignatureFile}, names...)
		slices.Sort(files)
		idx.Versions = append(idx.Versions, Version{
			Version: v, Date: fmt.Sprintf("2026-12-0%dT09:00:00Z", 4-i),
			Prerelease: strings.Contains(v, "-"), Files: files,
		})
	}
	data, _ := json.MarshalIndent(idx, "", "  ")
	writeFile(t, filepath.Join(fx.dir, IndexFile), data)
	return fx
}

func writeFile(t testing.TB, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func (fx *fixture) artifact(t testing.TB, version, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(fx.dir, version, name))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// serveHTTPS serves the feed folder over TLS on loopback.
func serveHTTPS(t testing.TB, dir string, wrap func(http.Handler) http.Handler) (string, *http.Client) {
	t.Helper()
	var h http.Handler = http.FileServer(http.Dir(dir))
	if wrap != nil {
		h = wrap(h)
	}
	srv := httptest.NewTLSServer(h)
	t.Cleanup(srv.Close)
	return srv.URL, srv.Client()
}

// serveGitHub is a GitHub Releases stand-in on loopback built from the feed
// folder: the releases API (two releases a page, linked as GitHub does) and
// the assets' download URLs. It checks the token when one is expected.
func serveGitHub(t testing.TB, dir, token string) (api string, client *http.Client) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, IndexFile))
	if err != nil {
		t.Fatal(err)
	}
	var idx Index
	if err := json.Unmarshal(data, &idx); err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	var srv *httptest.Server
	mux.HandleFunc("GET /repos/owner/repo/releases", func(w http.ResponseWriter, r *http.Request) {
		if token != "" && r.Header.Get("Authorization") != "Bearer "+token {
			http.Error(w, "bad credentials", http.StatusUnauthorized)
			return
		}
		page, _ := strconv.Atoi(r.URL.Query().Get("page"))
		page = max(page, 1)
		const perPage = 2
		type asset struct {
			Name string `json:"name"`
			URL  string `json:"browser_download_url"`
		}
		type release struct {
			TagName     string  `json:"tag_name"`
			Prerelease  bool    `json:"prerelease"`
			PublishedAt string  `json:"published_at"`
			Assets      []asset `json:"assets"`
		}
		var out []release
		for i, v := range idx.Versions {
			if i < (page-1)*perPage || i >= page*perPage {
				continue
			}
			rel := release{TagName: "v" + v.Version, Prerelease: v.Prerelease, PublishedAt: v.Date}
			for _, f := range v.Files {
				rel.Assets = append(rel.Assets, asset{Name: f, URL: srv.URL + "/download/v" + v.Version + "/" + f})
			}
			out = append(out, rel)
		}
		if page*perPage < len(idx.Versions) {
			w.Header().Set("Link", fmt.Sprintf(`<%s/repos/owner/repo/releases?per_page=100&page=%d>; rel="next"`, srv.URL, page+1))
		}
		json.NewEncoder(w).Encode(out)
	})
	mux.HandleFunc("GET /download/{tag}/{name}", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "" {
			t.Errorf("the GitHub token was sent with an asset download")
		}
		http.ServeFile(w, r, filepath.Join(dir, strings.TrimPrefix(r.PathValue("tag"), "v"), r.PathValue("name")))
	})
	srv = httptest.NewTLSServer(mux)
	t.Cleanup(srv.Close)
	return srv.URL, srv.Client()
}

// backends opens the fixture through every kind of feed.
func backends(t *testing.T, fx *fixture) map[string]Feed {
	t.Helper()
	out := map[string]Feed{}
	open := func(name, spec string, o Options) {
		f, err := Open(spec, o)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		out[name] = f
	}
	open("directory", fx.dir, Options{})
	open("file-url", "file://"+filepath.ToSlash(fx.dir), Options{})
	u, c := serveHTTPS(t, fx.dir, nil)
	open("https", u+"/", Options{Client: c})
	api, gc := serveGitHub(t, fx.dir, "s3cret")
	open("github", "github:owner/repo", Options{Client: gc, GitHubAPI: api, GitHubToken: "s3cret"})
	// A mirror of the whole feed is itself a feed.
	mirror := t.TempDir()
	if _, err := Mirror(context.Background(), out["https"], mirror, "", true, Trust{PublicKey: fx.pubKey}, nil); err != nil {
		t.Fatalf("mirror: %v", err)
	}
	open("mirror", mirror, Options{})
	return out
}

func versionNames(vs []Version) []string {
	var out []string
	for _, v := range vs {
		out = append(out, v.Version)
	}
	return out
}

func TestConformance(t *testing.T) {
	fx := newFixture(t)
	ctx := context.Background()
	for name, f := range backends(t, fx) {
		t.Run(name, func(t *testing.T) {
			all, err := f.Versions(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if got := versionNames(all); !slices.Equal(got, fixtureVersions) {
				t.Fatalf("versions %v, want %v", got, fixtureVersions)
			}
			for _, v := range all {
				if v.Prerelease != strings.Contains(v.Version, "-") || !v.HasFile(ChecksumsFile) || !v.HasFile(SignatureFile) || len(v.Files) != 2+4*3-2 {
					t.Errorf("version %+v", v)
				}
			}
			for _, c := range []struct {
				constraint string
				pre        bool
				want       []string
			}{
				{"latest", false, []string{"2.0.0", "1.4.2", "1.4.0"}},
				{"", true, fixtureVersions},
				{"~> 1.4", false, []string{"1.4.2", "1.4.0"}},
				{"~> 1.4", true, []string{"1.5.0-rc.1", "1.4.2", "1.4.0"}},
				{">= 1.2, < 2", false, []string{"1.4.2", "1.4.0"}},
				{"~> 1.4.0", false, []string{"1.4.2", "1.4.0"}},
				{"1.4.0", false, []string{"1.4.0"}},
				{"v2.0.0", false, []string{"2.0.0"}},
				{"1.5.0-rc.1", false, []string{"1.5.0-rc.1"}},
				// Named pre-releases compare exactly, not through their release.
				{"> 1.5.0-rc.1", false, []string{"2.0.0"}},
				{">= 1.4.2, < 1.5.0-rc.1", false, []string{"1.4.2"}},
				{"> 1.4.2-rc.1, < 3", false, []string{"2.0.0", "1.5.0-rc.1", "1.4.2"}},
				{">= 3", true, nil},
			} {
				sel, err := Select(all, c.constraint, c.pre)
				if err != nil {
					t.Fatal(err)
				}
				if got := versionNames(sel); !slices.Equal(got, c.want) {
					t.Errorf("Select(%q, prerelease=%v) = %v, want %v", c.constraint, c.pre, got, c.want)
				}
			}
			v, err := Newest(all, "~> 1.4", false)
			if err != nil {
				t.Fatal(err)
			}
			sums, _, _, err := FetchChecksums(ctx, f, v, Trust{PublicKey: fx.pubKey})
			if err != nil {
				t.Fatal(err)
			}
			for _, k := range []Kind{KindArchive, KindDeb, KindRPM} {
				name, err := ArtifactName(k, v.Version, Platform{"linux", "arm64"})
				if err != nil {
					t.Fatal(err)
				}
				dir := t.TempDir()
				path, err := Download(ctx, f, v, name, sums, dir, nil)
				if err != nil {
					t.Fatal(err)
				}
				got, err := os.ReadFile(path)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got, fx.artifact(t, v.Version, name)) {
					t.Errorf("%s differs from the feed's", name)
				}
				if ents, _ := os.ReadDir(dir); len(ents) != 1 {
					t.Errorf("download left %d entries in the target, want 1", len(ents))
				}
			}
			if _, err := f.Open(ctx, v, "no-such-file", 0); err == nil || !strings.Contains(err.Error(), "not in the feed") {
				t.Errorf("a missing file: %v", err)
			}
		})
	}
}

func TestNewestSaysWhatToDo(t *testing.T) {
	vs := []Version{{Version: "1.5.0-rc.1", Prerelease: true}, {Version: "1.4.0"}}
	_, err := Newest(vs, ">= 1.5", false)
	if err == nil || !strings.Contains(err.Error(), "--prerelease") {
		t.Errorf("got %v, want a hint at --prerelease", err)
	}
	if _, err := Select(vs, "one point four", false); err == nil || !strings.Contains(err.Error(), "~> 1.4") {
		t.Errorf("a bad constraint: %v", err)
	}
}

func TestOpenRefuses(t *testing.T) {
	for spec, want := range map[string]string{
		"":                         "TENTACLE_RELEASES_FEED",
		"http://example.com/feed":  "only allowed to this machine",
		"github:owner":             "github:OWNER/REPO",
		"ftp://example.com/feed":   "does not read",
		"/no/such/feed/directory/": "does not exist",
	} {
		if _, err := Open(spec, Options{}); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Open(%q) = %v, want an error saying %q", spec, err, want)
		}
	}
	if _, err := Open("http://127.0.0.1:1/feed", Options{}); err != nil {
		t.Errorf("plain http to loopback: %v", err)
	}
}

func TestArtifactNamesAreMakePackages(t *testing.T) {
	const v = "0.0.1-snapshot.20261203090302.0e62c3f"
	for _, c := range []struct {
		kind Kind
		p    Platform
		want string
	}{
		{KindArchive, Platform{"linux", "amd64"}, "tentacle_" + v + "_linux_amd64.tar.gz"},
		{KindArchive, Platform{"linux", "arm"}, "tentacle_" + v + "_linux_armv7.tar.gz"},
		{KindArchive, Platform{"darwin", "arm64"}, "tentacle_" + v + "_darwin_arm64.tar.gz"},
		{KindArchive, Platform{"windows", "amd64"}, "tentacle_" + v + "_windows_amd64.zip"},
		{KindDeb, Platform{"linux", "amd64"}, "tentacle-go_0.0.1~snapshot.20261203090302.0e62c3f-1_amd64.deb"},
		{KindDeb, Platform{"linux", "armv7"}, "tentacle-go_0.0.1~snapshot.20261203090302.0e62c3f-1_armhf.deb"},
		{KindRPM, Platform{"linux", "amd64"}, "tentacle-go-0.0.1~snapshot.20261203090302.0e62c3f-1.x86_64.rpm"},
		{KindRPM, Platform{"linux", "arm64"}, "tentacle-go-0.0.1~snapshot.20261203090302.0e62c3f-1.aarch64.rpm"},
		{KindRPM, Platform{"linux", "armv7"}, "tentacle-go-0.0.1~snapshot.20261203090302.0e62c3f-1.armv7hl.rpm"},
		{KindDeb, Platform{"linux", "1.2.3"}, ""},
		// The container images (packaging/container/image.sh's names), for
		// linux/amd64 whatever OS downloads them.
		{KindImage, Platform{"linux", "amd64"}, "tentacle_" + v + "_linux_amd64.oci.tar"},
		{KindImageStatic, Platform{"darwin", "amd64"}, "tentacle_" + v + "-static_linux_amd64.oci.tar"},
		{KindImage, Platform{"linux", "arm64"}, ""},
	} {
		got, err := ArtifactName(c.kind, v, c.p)
		if got != c.want || (err != nil) != (c.want == "") {
			t.Errorf("ArtifactName(%s, %v) = %q, %v; want %q", c.kind, c.p, got, err, c.want)
		}
	}
	if _, err := ArtifactName(KindDeb, "1.0.0", Platform{"windows", "amd64"}); err == nil || !strings.Contains(err.Error(), "--kind archive") {
		t.Errorf("a deb for windows: %v", err)
	}
}

// A file:// feed names a local folder in each platform's spelling.
func TestFileURLNamesTheLocalFolder(t *testing.T) {
	cases := map[string]string{"file:///srv/feed": "/srv/feed", "file:///srv/my%20feed/": "/srv/my feed/"}
	if runtime.GOOS == "windows" {
		cases = map[string]string{
			"file:///C:/feed":                    `C:\feed`,
			"file://C:/feed":                     `C:\feed`,
			"file://localhost/C:/feed":           `C:\feed`,
			"file://server/share/feed":           `\\server\share\feed`,
			"file:///D:/Octopus%20Feed/tentacle": `D:\Octopus Feed\tentacle`,
		}
	}
	for in, want := range cases {
		u, err := url.Parse(in)
		if err != nil {
			t.Fatal(err)
		}
		if got := fileURLPath(u); got != want {
			t.Errorf("%s names %q, want %q", in, got, want)
		}
	}
}
