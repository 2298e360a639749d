//go:build windows

package config

import (
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/windows"
)

// A secret file gets a protected ACL for its owner, SYSTEM and
// Administrators only, even when it replaces a file others could read.
func TestSecretFileACLIsOwnerOnly(t *testing.T) {
	skipUnderWine(t)
	path := filepath.Join(t.TempDir(), "tentacle.config")
	os.WriteFile(path, []byte("old"), 0o644)
	grantUsers(t, path, windows.GENERIC_READ)
	if a, err := pathAccess(path); err != nil || !a.othersRead {
		t.Fatalf("Users were not granted read: %+v %v", a, err)
	}
	if err := WriteSecretFileAtomic(path, []byte("secret")); err != nil {
		t.Fatal(err)
	}
	a, err := pathAccess(path)
	if err != nil {
		t.Fatal(err)
	}
	if a.othersRead || a.othersWrite || !a.ownerTrusted {
		t.Errorf("after a secret write: %+v", a)
	}
	sd, err := windows.GetNamedSecurityInfo(path, windows.SE_FILE_OBJECT, windows.DACL_SECURITY_INFORMATION)
	if err != nil {
		t.Fatal(err)
	}
	if ctl, _, err := sd.Control(); err != nil || ctl&windows.SE_DACL_PROTECTED == 0 {
		t.Errorf("the ACL still inherits: %v %v", ctl, err)
	}
}

func TestCheckPermissionsRefusesAConfigurationUsersCanChange(t *testing.T) {
	skipUnderWine(t)
	path := filepath.Join(t.TempDir(), "tentacle.config")
	if err := WriteSecretFileAtomic(path, []byte("<octopus-settings />")); err != nil {
		t.Fatal(err)
	}
	if err := RefusePermissions(CheckPermissions(path, "")); err != nil {
		t.Fatalf("a protected configuration: %v", err)
	}
	grantUsers(t, path, windows.GENERIC_ALL)
	if err := RefusePermissions(CheckPermissions(path, "")); err == nil {
		t.Error("a configuration BUILTIN\\Users can change was accepted")
	}
}

func grantUsers(t *testing.T, path string, mask windows.ACCESS_MASK) {
	t.Helper()
	users, err := windows.CreateWellKnownSid(windows.WinBuiltinUsersSid)
	if err != nil {
		t.Fatal(err)
	}
	sd, err := windows.GetNamedSecurityInfo(path, windows.SE_FILE_OBJECT, windows.DACL_SECURITY_INFORMATION)
	if err != nil {
		t.Fatal(err)
	}
	old, _, _ := sd.DACL()
	acl, err := windows.ACLFromEntries([]windows.EXPLICIT_ACCESS{{
		AccessPermissions: mask, AccessMode: windows.GRANT_ACCESS, Inheritance: windows.NO_INHERITANCE,
		Trustee: windows.TRUSTEE{TrusteeForm: windows.TRUSTEE_IS_SID, TrusteeType: windows.TRUSTEE_IS_WELL_KNOWN_GROUP, TrusteeValue: windows.TrusteeValueFromSID(users)},
	}}, old)
	if err != nil {
		t.Fatal(err)
	}
	if err := windows.SetNamedSecurityInfo(path, windows.SE_FILE_OBJECT, windows.DACL_SECURITY_INFORMATION, nil, nil, acl, nil); err != nil {
		t.Fatal(err)
	}
}

// Wine 8 accepts a file's new ACL and forgets it: it derives every ACL from
// the Unix mode. These tests need Windows.
func skipUnderWine(t *testing.T) {
	if underWine() {
		t.Skip("Wine does not keep file ACLs (it derives them from the Unix mode); this test needs Windows")
	}
}

func underWine() bool {
	return windows.NewLazySystemDLL("ntdll.dll").NewProc("wine_get_version").Find() == nil
}

// assertPrivateFile checks what makes a secret file private on Windows: a
// protected ACL that lets only its owner, SYSTEM and Administrators in
// (Wine cannot show it: it keeps no ACLs).
func assertPrivateFile(t *testing.T, path string) {
	t.Helper()
	if underWine() {
		t.Logf("%s: its ACL is not checked: Wine keeps no file ACLs (real Windows only)", path)
		return
	}
	a, err := pathAccess(path)
	if err != nil {
		t.Fatal(err)
	}
	if a.othersRead || a.othersWrite || !a.ownerTrusted {
		t.Errorf("%s is not private: %s", path, a.describe)
	}
	sd, err := windows.GetNamedSecurityInfo(path, windows.SE_FILE_OBJECT, windows.DACL_SECURITY_INFORMATION)
	if err != nil {
		t.Fatal(err)
	}
	if ctl, _, err := sd.Control(); err != nil || ctl&windows.SE_DACL_PROTECTED == 0 {
		t.Errorf("%s: its ACL still inherits from its folder (control %#x, %v)", path, ctl, err)
	}
}
