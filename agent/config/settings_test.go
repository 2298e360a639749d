package config

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
)

const fixtureDir = "../../testdata/config"

func readFixture(t *testing.T, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(fixtureDir, name))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestParseUpstreamConfigKeepsEveryKey(t *testing.T) {
	s, err := ParseSettings(readFixture(t, "upstream-linux.config"))
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Get("future.unknown.setting"); got != `keep & <me> "as is"` {
		t.Errorf("unknown key value = %q", got)
	}
	if _, ok := s.Get(KeyIsRegistered); ok {
		t.Error("an empty <set/> must read as unset")
	}
	if b, err := s.NoListen(); err != nil || !b {
		t.Errorf("NoListen = %v, %v; want true (written as .NET's True)", b, err)
	}
	if p, err := s.Port(); err != nil || p != 10933 {
		t.Errorf("Port = %v, %v", p, err)
	}
	servers, err := s.TrustedServers()
	if err != nil {
		t.Fatal(err)
	}
	if len(servers) != 2 || servers[0].CommunicationStyle != StyleTentacleActive || servers[1].CommunicationStyle != StyleTentaclePassive {
		t.Fatalf("servers = %+v", servers)
	}
	if servers[0].SubscriptionID != "poll://abcdefghjkmnpqrstuvw/" || servers[0].Address != "https://octopus.example:10943/" {
		t.Errorf("polling entry = %+v", servers[0])
	}

	// Writing it back loses nothing: every key and value survives.
	again, err := ParseSettings(s.Marshal())
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(again.Keys(), ",") != strings.Join(s.Keys(), ",") {
		t.Fatalf("keys changed: %v -> %v", s.Keys(), again.Keys())
	}
	for _, k := range s.Keys() {
		a, _ := s.Get(k)
		b, _ := again.Get(k)
		if a != b {
			t.Errorf("%s: %q -> %q", k, a, b)
		}
	}
	// And a second marshal is byte-identical to the first (stable output).
	if !bytes.Equal(again.Marshal(), s.Marshal()) {
		t.Error("marshal is not stable")
	}
}

func TestMarshalMatchesUpstreamLayout(t *testing.T) {
	s := NewSettings("x")
	s.Set("group2.setting3", "a string")
	s.Set("group1.setting2", "123")
	s.Set("group1.setting1", FormatBool(true))
	s.Set("json", `[{"A":"<b>&"}]`)
	want := "\uFEFF" + `<?xml version="1.0" encoding="utf-8"?>
<octopus-settings xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:xsd="http://www.w3.org/2001/XMLSchema">
  <set key="group1.setting1">true</set>
  <set key="group1.setting2">123</set>
  <set key="group2.setting3">a string</set>
  <set key="json">[{"A":"&lt;b&gt;&amp;"}]</set>
</octopus-settings>`
	if runtime.GOOS == "windows" { // upstream's XmlSerializer writes Environment.NewLine
		want = strings.ReplaceAll(want, "\n", "\r\n")
	}
	if got := string(s.Marshal()); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	if got := string(NewSettings("x").Marshal()); !strings.HasSuffix(got, `xmlns:xsd="http://www.w3.org/2001/XMLSchema" />`) {
		t.Errorf("empty document = %q", got)
	}
}

func TestParseAcceptsUpstreamEmptyFile(t *testing.T) {
	s, err := ParseSettings([]byte(`<?xml version='1.0' encoding='UTF-8' ?><octopus-settings></octopus-settings>`))
	if err != nil || len(s.Keys()) != 0 {
		t.Fatalf("%v %v", s, err)
	}
}

func TestParseRejectsCorruptFiles(t *testing.T) {
	for name, doc := range map[string]string{
		"truncated":  `<?xml version="1.0"?><octopus-settings><set key="a">b</set>`,
		"wrong root": `<configuration><set key="a">b</set></configuration>`,
		"no key":     `<octopus-settings><set>b</set></octopus-settings>`,
		"empty":      ``,
		"not xml":    `{"json": true}`,
	} {
		if _, err := ParseSettings([]byte(doc)); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestSetIsCaseInsensitiveAndReportsChanges(t *testing.T) {
	s, _ := ParseSettings([]byte(`<octopus-settings><set key="Tentacle.Services.PortNumber">10933</set></octopus-settings>`))
	if s.Set("tentacle.services.portnumber", "10933") {
		t.Error("same value reported as a change")
	}
	if !s.Set("TENTACLE.SERVICES.PORTNUMBER", "10934") {
		t.Error("new value not reported as a change")
	}
	if keys := s.Keys(); len(keys) != 1 || keys[0] != "Tentacle.Services.PortNumber" {
		t.Errorf("the spelling in the file must win: %v", keys)
	}
	if s.Set("absent", "") {
		t.Error("setting an absent key to null is not a change")
	}
}

func TestUpdateWritesAtomicallyWithPrivateMode(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "t.config")
	if err := NewSettings(path).Save(); err != nil {
		t.Fatal(err)
	}
	assertPrivateFile(t, path)
	changed, err := Update(path, func(s *Settings) error { s.Set("a", "1"); return nil })
	if err != nil || !changed {
		t.Fatal(changed, err)
	}
	before, _ := os.ReadFile(path)
	changed, err = Update(path, func(s *Settings) error { s.Set("a", "1"); return nil })
	if err != nil || changed {
		t.Fatalf("identical update: changed=%v err=%v", changed, err)
	}
	changed, err = Update(path, func(s *Settings) error { s.Set("a", "2"); return fmt.Errorf("boom") })
	if err == nil || changed {
		t.Fatal("failing update must not write")
	}
	after, _ := os.ReadFile(path)
	if !bytes.Equal(before, after) {
		t.Error("file changed by a no-op or failed update")
	}
	// Windows cannot lock a directory: the lock is a sidecar file that stays.
	want := []string{"t.config"}
	if runtime.GOOS == "windows" {
		want = append(want, "t.config.lock")
	}
	ents, _ := os.ReadDir(dir)
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	if !slices.Equal(names, want) {
		t.Errorf("files after the updates: %v, want %v (temp files left behind?)", names, want)
	}
}

func TestConcurrentUpdatesLoseNothing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "t.config")
	if err := NewSettings(path).Save(); err != nil {
		t.Fatal(err)
	}
	const n = 32
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := Update(path, func(s *Settings) error {
				s.Set(fmt.Sprintf("key.%02d", i), "v")
				return nil
			}); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	s, err := LoadSettings(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := len(s.Keys()); got != n {
		t.Errorf("%d keys after %d concurrent updates", got, n)
	}
}

func TestLoadSettingsErrorsSayWhatToDo(t *testing.T) {
	dir := t.TempDir()
	_, err := LoadSettings(filepath.Join(dir, "missing.config"))
	if err == nil || !strings.Contains(err.Error(), "does not exist") || !strings.Contains(err.Error(), "create-instance") {
		t.Errorf("missing: %v", err)
	}
	bad := filepath.Join(dir, "bad.config")
	os.WriteFile(bad, []byte("<octopus-settings><set key="), 0o600)
	_, err = LoadSettings(bad)
	if err == nil || !strings.Contains(err.Error(), "not a valid Tentacle configuration") {
		t.Errorf("corrupt: %v", err)
	}
	if _, err := Update(bad, func(*Settings) error { return nil }); err == nil {
		t.Error("update of a corrupt file must fail")
	}
}

// A directory given where the configuration file is expected is named as
// one on every platform (Windows reports reading it as "Incorrect
// function.", which once read "cannot be read: Invalid function..").
func TestLoadSettingsNamesADirectory(t *testing.T) {
	dir := t.TempDir()
	_, err := LoadSettings(dir)
	var ue *UserError
	if !errors.As(err, &ue) {
		t.Fatalf("err = %v, want a UserError", err)
	}
	if msg := err.Error(); !strings.Contains(msg, dir+" is a directory, not a file") || strings.Contains(msg, "..") {
		t.Errorf("err = %q, want it to say %s is a directory", msg, dir)
	}
}

// An unreadable file's reason is the OS's, without the period Windows ends
// its messages with doubled by ours.
func TestUnreadableEndsOneSentence(t *testing.T) {
	err := Unreadable("The file", "x", &os.PathError{Op: "read", Path: "x", Err: errors.New("Access is denied.")}, "Fix it.")
	if got, want := err.Error(), "The file x cannot be read: Access is denied. Fix it."; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}
