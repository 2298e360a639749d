package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestIndexFilesAreUpstreamJSON(t *testing.T) {
	root := t.TempDir()
	x := NewIndex(root)
	changed, err := x.Register(Instance{Name: "My Tentacle", ConfigurationFilePath: "/etc/octopus/My/t.config"})
	if err != nil || !changed {
		t.Fatal(changed, err)
	}
	data, err := os.ReadFile(filepath.Join(root, "Tentacle", "Instances", "my-tentacle.config"))
	if err != nil {
		t.Fatal(err)
	}
	want := "{\n  \"Name\": \"My Tentacle\",\n  \"ConfigurationFilePath\": \"/etc/octopus/My/t.config\"\n}"
	if string(data) != want {
		t.Errorf("got %q want %q", data, want)
	}
	if changed, _ := x.Register(Instance{Name: "My Tentacle", ConfigurationFilePath: "/etc/octopus/My/t.config"}); changed {
		t.Error("registering the same instance twice is not a change")
	}
}

func TestSelectFollowsUpstreamRules(t *testing.T) {
	root, cwd := t.TempDir(), t.TempDir()
	x := NewIndex(root)
	if _, err := x.Select("", "", cwd); err == nil || !strings.Contains(err.Error(), "Unable to find default instance") {
		t.Errorf("no instances: %v", err)
	}
	x.Register(Instance{Name: "Alpha", ConfigurationFilePath: "/a.config"})
	if sel, err := x.Select("", "", cwd); err != nil || sel.Name != "Alpha" {
		t.Errorf("single instance: %+v %v", sel, err)
	}
	x.Register(Instance{Name: "Beta", ConfigurationFilePath: "/b.config"})
	if _, err := x.Select("", "", cwd); err == nil || !strings.Contains(err.Error(), "Alpha, Beta") {
		t.Errorf("two instances: %v", err)
	}
	x.Register(Instance{Name: "Tentacle", ConfigurationFilePath: "/t.config"})
	if sel, _ := x.Select("", "", cwd); sel.Name != "Tentacle" {
		t.Errorf("default instance not preferred: %+v", sel)
	}
	if sel, err := x.Select("beta", "", cwd); err != nil || sel.ConfigPath != "/b.config" {
		t.Errorf("case-insensitive: %+v %v", sel, err)
	}
	if _, err := x.Select("gamma", "", cwd); err == nil || !strings.Contains(err.Error(), "has not been configured") {
		t.Errorf("unknown: %v", err)
	}
	// Names that differ only by case share one index file (upstream's file
	// name rule lower-cases), so the later registration replaces the earlier.
	x.Register(Instance{Name: "beta", ConfigurationFilePath: "/b2.config"})
	if sel, _ := x.Select("BETA", "", cwd); sel.ConfigPath != "/b2.config" || sel.Name != "beta" {
		t.Errorf("re-registered with another case: %+v", sel)
	}
	// --config wins and bypasses the index; relative to the working directory.
	if sel, _ := x.Select("", "sub/x.config", cwd); sel.ConfigPath != filepath.Join(cwd, "sub/x.config") || !sel.Rootless {
		t.Errorf("--config: %+v", sel)
	}
	// ./Tentacle.config makes a rootless instance, before the index.
	os.WriteFile(filepath.Join(cwd, RootlessConfigFile), []byte("<octopus-settings/>"), 0o600)
	if sel, _ := x.Select("", "", cwd); !sel.Rootless || sel.ConfigPath != filepath.Join(cwd, RootlessConfigFile) {
		t.Errorf("rootless: %+v", sel)
	}
}

func TestDeleteRemovesOnlyTheIndexEntry(t *testing.T) {
	root := t.TempDir()
	cfg := filepath.Join(t.TempDir(), "t.config")
	NewSettings(cfg).Save()
	x := NewIndex(root)
	x.Register(Instance{Name: "Tentacle", ConfigurationFilePath: cfg})
	if _, err := x.Delete("TENTACLE"); err != nil {
		t.Fatal(err)
	}
	if list, _ := x.List(); len(list) != 0 {
		t.Errorf("still listed: %v", list)
	}
	if _, err := os.Stat(cfg); err != nil {
		t.Error("the configuration file must stay")
	}
}

func TestCorruptIndexEntryIsAClearError(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "Tentacle", "Instances")
	os.MkdirAll(dir, 0o700)
	os.WriteFile(filepath.Join(dir, "broken.config"), []byte("{not json"), 0o600)
	_, err := NewIndex(root).List()
	if err == nil || !strings.Contains(err.Error(), "corrupt") {
		t.Errorf("%v", err)
	}
}
