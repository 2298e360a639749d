package scripts

import (
	"path/filepath"
	"strings"
	"testing"
)

func TestValidateTicket(t *testing.T) {
	for _, ok := range []string{"Z7pQa9b0", "20240101120000-123-1", "a.b_c-d", strings.Repeat("a", 200)} {
		if err := ValidateTicket(ok); err != nil {
			t.Errorf("%q rejected: %v", ok, err)
		}
	}
	for _, bad := range []string{"", ".", "..", ".hidden", "a/b", `a\b`, "a b", "a:b", "a\x00", strings.Repeat("a", 201), "ü"} {
		if err := ValidateTicket(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestScriptFilePath(t *testing.T) {
	for name, want := range map[string]string{
		"a.txt":            "a.txt",
		`dir\sub\file.ps1`: filepath.Join("dir", "sub", "file.ps1"),
		"dir/./x":          filepath.Join("dir", "x"),
		"dir/../y":         "y",
		"Bootstrap.sh.bak": "Bootstrap.sh.bak",
	} {
		got, err := scriptFilePath(name)
		if err != nil || got != want {
			t.Errorf("%q: got %q, %v; want %q", name, got, err, want)
		}
	}
	for _, bad := range []string{"", "..", "../x", `..\x`, "a/../../x", "/etc/passwd", `\\server\share\x`, "Bootstrap.sh", "bootstrap.SH", "Output.seqlog", "scriptstate.json", "./Supervisor.lock", "a\x00b"} {
		if _, err := scriptFilePath(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
