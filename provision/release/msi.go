package release

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/tentacle-go/tentacle/agent/config"
	"github.com/tentacle-go/tentacle/agent/scripts"
)

// MSIRegistryKey is the key under HKEY_LOCAL_MACHINE (64-bit view) where
// the MSI (packaging/windows/tentacle.wxs) records where it installed
// Tentacle.exe (InstallLocation), its ProductCode and Version. Upstream's
// MSI writes Software\Octopus\Tentacle instead, which ours also writes for
// upstream's automation: only this key says the binary is ours.
const MSIRegistryKey = `Software\tentacle-go\Tentacle`

// msiRegistration is what the MSI recorded in MSIRegistryKey.
type msiRegistration struct {
	InstallLocation string
	ProductCode     string
}

// readMSIRegistration reads MSIRegistryKey; ok is false where there is no
// such key (no MSI install, or not Windows). A variable so tests point it
// at a key of their own.
var readMSIRegistration = readMSIRegistrationFromRegistry

// MSIMovedAsidePath is where an upgrade through msiexec moves the running
// Tentacle.exe (target) so that the MSI can put the new one in place.
func MSIMovedAsidePath(target string) string { return target + ".old" }

// RemoveMovedAside deletes the Tentacle.exe.old and
// tentacle-supervisor.exe.old that an upgrade through msiexec left beside
// the running binary (the process that moved them was running from one,
// and a script's supervisor from the other, so they could not be
// deleted). Every start on Windows tries: the MSI's uninstall runs
// Tentacle.exe before it removes the folder, so no such file is left
// behind. While an old binary still runs its delete fails, harmlessly.
func RemoveMovedAside() {
	if runtime.GOOS != "windows" {
		return
	}
	if exe, err := os.Executable(); err == nil {
		os.Remove(MSIMovedAsidePath(exe))
		os.Remove(MSIMovedAsidePath(filepath.Join(filepath.Dir(exe), scripts.SupervisorFileName())))
	}
}

// msiExitRebootRequired is msiexec's ERROR_SUCCESS_REBOOT_REQUIRED: the
// install succeeded and a file in use is replaced at the next restart.
const msiExitRebootRequired = 3010

// detectMSI reports whether binary is the Tentacle.exe our MSI installed:
// it sits in the InstallLocation the MSI recorded.
func detectMSI(binary string) (productCode string, ok bool) {
	reg, found := readMSIRegistration()
	if !found || reg.InstallLocation == "" {
		return "", false
	}
	installed := filepath.Join(reg.InstallLocation, "Tentacle.exe")
	if !strings.EqualFold(filepath.Clean(installed), filepath.Clean(binary)) {
		return "", false
	}
	return reg.ProductCode, true
}

// msiexecArgv is the command that installs msi over an MSI install, with a
// verbose log: /qn shows nothing, so the log is the only account of a
// failure. The MSI removes the installed version itself (its Upgrade
// table) and installs where that one was.
func msiexecArgv(msi, log string) []string {
	return []string{"msiexec", "/i", msi, "/qn", "/norestart", "/l*v", log}
}

// installMSI runs msiexec with the release's MSI.
func installMSI(ctx context.Context, res InstallResult, msi string, opts InstallOptions) (InstallResult, error) {
	log := filepath.Join(os.TempDir(), "tentacle-msiexec-"+strings.TrimSuffix(filepath.Base(msi), filepath.Ext(msi))+".log")
	argv := msiexecArgv(msi, log)
	res.Steps = append(res.Steps, "run "+strings.Join(argv, " "))
	if opts.DryRun {
		return res, nil
	}
	res.PreviousVersion, _ = binaryVersion(ctx, res.Target)
	// While a process runs the installed Tentacle.exe (this one, or the
	// supervisor of a script still running, which outlives its agent),
	// Windows Installer cannot replace it until a restart (exit 3010). A
	// running executable may be renamed, so it is moved aside first and
	// the MSI installs the new file in its place; the processes carry on
	// from the moved file, which the next start of Tentacle.exe deletes
	// (RemoveMovedAside; the MSI's custom actions run it at uninstall).
	// The tentacle-supervisor.exe beside it is what running scripts'
	// supervisors run (scripts.FindSupervisor): moved aside the same way.
	var moved [][2]string // {installed, aside}
	for _, installed := range []string{res.Target, filepath.Join(filepath.Dir(res.Target), scripts.SupervisorFileName())} {
		if _, err := os.Stat(installed); err != nil {
			continue
		}
		aside := MSIMovedAsidePath(installed)
		os.Remove(aside) // one left by the previous upgrade
		if err := os.Rename(installed, aside); err != nil {
			for _, m := range moved {
				os.Rename(m[1], m[0])
			}
			return res, fmt.Errorf("move the running %s aside for msiexec: %w", installed, err)
		}
		moved = append(moved, [2]string{installed, aside})
	}
	out := opts.Output
	if out == nil {
		out = io.Discard
	}
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = out, out
	err := cmd.Run()
	for _, m := range moved {
		if _, serr := os.Stat(m[0]); serr != nil {
			os.Rename(m[1], m[0]) // msiexec failed before installing: put it back
		} else {
			os.Remove(m[1]) // fails while it runs; the MSI removes it later
		}
	}
	var exit *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exit) && exit.ExitCode() == msiExitRebootRequired:
		res.Steps = append(res.Steps, "a restart of Windows completes the install (msiexec exit 3010: a file was in use)")
	default:
		return res, config.Userf("%s failed (%v); its log %s says why (search it for \"Return value 3\"), and the installed version is unchanged unless it says otherwise.", strings.Join(argv, " "), err, log)
	}
	res.Version, err = binaryVersion(ctx, res.Target)
	if err != nil {
		return res, fmt.Errorf("msiexec installed %s, but %s does not run: %w", filepath.Base(msi), res.Target, err)
	}
	return res, nil
}
