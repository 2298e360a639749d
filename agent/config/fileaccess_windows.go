//go:build windows

package config

import (
	"fmt"
	"os"
	"strings"
	"unsafe"

	"golang.org/x/sys/windows"
)

// Rights that let a holder change a file, or for a directory remove, rename
// or replace what is in it (FILE_DELETE_CHILD), or the directory itself.
// Adding a new file to a directory (FILE_ADD_FILE) is not among them: it
// cannot replace an existing one, and %ProgramData% grants it to Users.
const (
	fileDeleteChild = 0x40
	deleteRight     = 0x00010000
	genericWrite    = 0x40000000
	fileWriteRights = windows.FILE_WRITE_DATA | windows.FILE_APPEND_DATA | deleteRight | windows.WRITE_DAC | windows.WRITE_OWNER | genericWrite | windows.GENERIC_ALL
	dirWriteRights  = fileDeleteChild | deleteRight | windows.WRITE_DAC | windows.WRITE_OWNER | windows.GENERIC_ALL
	readRights      = windows.FILE_READ_DATA | windows.GENERIC_READ | windows.GENERIC_ALL
)

// broadGroups are the accounts that stand for "other local users".
var broadGroups = []windows.WELL_KNOWN_SID_TYPE{
	windows.WinWorldSid, windows.WinBuiltinUsersSid, windows.WinAuthenticatedUserSid,
	windows.WinBuiltinGuestsSid, windows.WinAnonymousSid, windows.WinInteractiveSid,
	windows.WinLocalSid, windows.WinNetworkSid,
}

func pathAccess(path string) (access, error) {
	sd, err := windows.GetNamedSecurityInfo(path, windows.SE_FILE_OBJECT, windows.OWNER_SECURITY_INFORMATION|windows.DACL_SECURITY_INFORMATION)
	if err != nil {
		return access{}, &os.PathError{Op: "GetNamedSecurityInfo", Path: path, Err: err}
	}
	fi, err := os.Stat(path)
	if err != nil {
		return access{}, err
	}
	return sdAccess(sd, fi.IsDir())
}

// openedAccess checks the file that is open (its handle), not whatever the
// name points at now.
func openedAccess(f *os.File) (access, os.FileInfo, error) {
	fi, err := f.Stat()
	if err != nil {
		return access{}, nil, err
	}
	sd, err := windows.GetSecurityInfo(windows.Handle(f.Fd()), windows.SE_FILE_OBJECT, windows.OWNER_SECURITY_INFORMATION|windows.DACL_SECURITY_INFORMATION)
	if err != nil {
		return access{}, nil, &os.PathError{Op: "GetSecurityInfo", Path: f.Name(), Err: err}
	}
	a, err := sdAccess(sd, fi.IsDir())
	return a, fi, err
}

func sdAccess(sd *windows.SECURITY_DESCRIPTOR, dir bool) (access, error) {
	var a access
	owner, _, err := sd.Owner()
	if err != nil {
		return a, err
	}
	a.owner = accountName(owner)
	a.ownerTrusted = owner.IsWellKnown(windows.WinLocalSystemSid) || owner.IsWellKnown(windows.WinBuiltinAdministratorsSid) || isCurrentUser(owner)
	dacl, _, err := sd.DACL()
	if err != nil {
		return a, err
	}
	if dacl == nil { // a NULL DACL grants everyone everything
		a.othersRead, a.othersWrite, a.describe = true, true, "it has no ACL (everyone has full control)"
		return a, nil
	}
	write := uint32(fileWriteRights)
	if dir {
		write = dirWriteRights
	}
	var readers, writers []string
	for i := range uint32(dacl.AceCount) {
		var ace *windows.ACCESS_ALLOWED_ACE
		if err := windows.GetAce(dacl, i, &ace); err != nil {
			return a, err
		}
		if ace.Header.AceType != windows.ACCESS_ALLOWED_ACE_TYPE || ace.Header.AceFlags&windows.INHERIT_ONLY_ACE != 0 {
			continue
		}
		sid := (*windows.SID)(unsafe.Pointer(&ace.SidStart))
		if !isBroadGroup(sid) {
			continue
		}
		if uint32(ace.Mask)&write != 0 {
			writers = append(writers, accountName(sid))
		}
		if uint32(ace.Mask)&readRights != 0 {
			readers = append(readers, accountName(sid))
		}
	}
	a.othersWrite, a.othersRead = len(writers) > 0, len(readers) > 0
	switch {
	case a.othersWrite:
		a.describe = "its ACL lets " + strings.Join(writers, ", ") + " change it"
	case a.othersRead:
		a.describe = "its ACL lets " + strings.Join(readers, ", ") + " read it"
	default:
		a.describe = "owner " + a.owner
	}
	return a, nil
}

func isBroadGroup(sid *windows.SID) bool {
	for _, t := range broadGroups {
		if sid.IsWellKnown(t) {
			return true
		}
	}
	return false
}

func currentUserSID() *windows.SID {
	u, err := windows.GetCurrentProcessToken().GetTokenUser()
	if err != nil {
		return nil
	}
	return u.User.Sid
}

func isCurrentUser(sid *windows.SID) bool {
	me := currentUserSID()
	return me != nil && sid.Equals(me)
}

func accountName(sid *windows.SID) string {
	if acct, dom, _, err := sid.LookupAccount(""); err == nil {
		if dom != "" {
			return dom + `\` + acct
		}
		return acct
	}
	return sid.String()
}

func agentUser() string {
	if me := currentUserSID(); me != nil {
		return accountName(me)
	}
	return "the agent's account"
}

// The fixes grant full control to SYSTEM, Administrators and the agent's
// account and drop everything inherited (SIDs, so that they work whatever
// the language of Windows).
func fixReadable(path string, dir bool) string {
	grants := `*S-1-5-18:(F) *S-1-5-32-544:(F)`
	if dir {
		grants = `*S-1-5-18:(OI)(CI)(F) *S-1-5-32-544:(OI)(CI)(F)`
	}
	if me := currentUserSID(); me != nil && !me.IsWellKnown(windows.WinLocalSystemSid) {
		if dir {
			grants += " *" + me.String() + ":(OI)(CI)(F)"
		} else {
			grants += " *" + me.String() + ":(F)"
		}
	}
	return fmt.Sprintf(`icacls "%s" /inheritance:r /grant:r %s`, path, grants)
}

func fixNotWritable(path string, dir bool) string {
	return fmt.Sprintf(`icacls "%s" /remove:g *S-1-1-0 *S-1-5-32-545 *S-1-5-11 (and check the ACLs of the folders above it)`, path)
}

func fixOwner(path string) string {
	return fmt.Sprintf(`icacls "%s" /setowner *S-1-5-32-544`, path)
}

// restrictSecretFile gives a new file a protected ACL (nothing inherited)
// that grants full control to SYSTEM, Administrators, the agent's account
// and the owner of the file it replaces, before anything is written to it.
func restrictSecretFile(f *os.File, replacedPath string, replaced os.FileInfo) error {
	var sids []*windows.SID
	for _, t := range []windows.WELL_KNOWN_SID_TYPE{windows.WinLocalSystemSid, windows.WinBuiltinAdministratorsSid} {
		sid, err := windows.CreateWellKnownSid(t)
		if err != nil {
			return err
		}
		sids = append(sids, sid)
	}
	if me := currentUserSID(); me != nil {
		sids = append(sids, me)
	}
	if replaced != nil {
		if sd, err := windows.GetNamedSecurityInfo(replacedPath, windows.SE_FILE_OBJECT, windows.OWNER_SECURITY_INFORMATION); err == nil {
			if owner, _, err := sd.Owner(); err == nil && !isBroadGroup(owner) {
				sids = append(sids, owner)
			}
		}
	}
	entries := make([]windows.EXPLICIT_ACCESS, len(sids))
	for i, sid := range sids {
		entries[i] = windows.EXPLICIT_ACCESS{
			AccessPermissions: windows.GENERIC_ALL,
			AccessMode:        windows.GRANT_ACCESS,
			Inheritance:       windows.NO_INHERITANCE,
			Trustee: windows.TRUSTEE{
				TrusteeForm:  windows.TRUSTEE_IS_SID,
				TrusteeType:  windows.TRUSTEE_IS_UNKNOWN,
				TrusteeValue: windows.TrusteeValueFromSID(sid),
			},
		}
	}
	acl, err := windows.ACLFromEntries(entries, nil)
	if err != nil {
		return err
	}
	// By name: the handle os.CreateTemp returns was not opened with WRITE_DAC.
	return windows.SetNamedSecurityInfo(f.Name(), windows.SE_FILE_OBJECT,
		windows.DACL_SECURITY_INFORMATION|windows.PROTECTED_DACL_SECURITY_INFORMATION, nil, nil, acl, nil)
}

func openNoBlock(path string) (*os.File, error) { return os.Open(path) }

// trustedOwners names who may own what the agent trusts, for messages.
func trustedOwners() string {
	return `SYSTEM, BUILTIN\Administrators or ` + agentUser()
}
