package release

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"time"

	"github.com/tentacle-go/tentacle/agent/config"
	"github.com/tentacle-go/tentacle/agent/scripts"
)

// PackageName is the name the deb and rpm packages install tentacle under.
const PackageName = "tentacle-go"

// versionCheckTimeout bounds `<binary> version`, run on a new binary before it
// is put in place (and on the previous one before a rollback).
const versionCheckTimeout = 30 * time.Second

// InstallMethod is how this machine's tentacle was installed, and so how a
// release is put in place.
type InstallMethod string

const (
	// MethodBinary replaces the binary itself, keeping the previous one.
	MethodBinary InstallMethod = "binary"
	// MethodDeb installs the release's .deb through apt-get or dpkg.
	MethodDeb InstallMethod = "deb"
	// MethodRPM upgrades through rpm with the release's .rpm.
	MethodRPM InstallMethod = "rpm"
	// MethodMSI installs the release's .msi through msiexec (Windows).
	MethodMSI InstallMethod = "msi"
)

// InstallOptions say where and how Install works.
type InstallOptions struct {
	// Target is the binary to replace; empty means the running executable,
	// symlinks resolved.
	Target string
	// DryRun checks the artifact (it is extracted to a temporary directory
	// and its binary must run) and reports the steps without taking them.
	DryRun bool
	// Limits bound the extraction; zero means DefaultExtractLimits.
	Limits ExtractLimits
	// Output receives the package manager's output; nil discards it.
	Output io.Writer
	// AllowDowngrade lets the package manager install an older package
	// than the installed one (a rollback does).
	AllowDowngrade bool
}

// InstallResult says what Install did (or, for a dry run, would do).
type InstallResult struct {
	Method          InstallMethod `json:"method"`
	Target          string        `json:"target"`
	Package         string        `json:"package,omitempty"`
	Previous        string        `json:"previous,omitempty"`
	Version         string        `json:"version,omitempty"`
	PreviousVersion string        `json:"previousVersion,omitempty"`
	// Supervisor is where a binary install put the release's
	// tentacle-supervisor (SupervisorPath), or removed an older one from
	// when the release has none.
	Supervisor string   `json:"supervisor,omitempty"`
	DryRun     bool     `json:"dryRun"`
	Steps      []string `json:"steps"`
}

// PreviousPath is where Install keeps the binary it replaced (and the
// tentacle-supervisor it replaced, as PreviousPath(SupervisorPath(target))).
func PreviousPath(target string) string { return target + ".previous" }

// SupervisorPath is where a binary install of target keeps the release's
// tentacle-supervisor, in one of the two places the agent looks for it
// (scripts.FindSupervisor): where one already is (beside target first, as
// the agent looks), else <dir>/../libexec/tentacle when target is in a bin
// folder (off PATH, as install.sh's /usr/local/libexec/tentacle), else
// beside target (the archive's own layout: /opt/octopus/tentacle).
func SupervisorPath(target string) string {
	beside, libexec := scripts.SupervisorPlaces(target)
	for _, p := range []string{beside, libexec} {
		if _, err := os.Lstat(p); err == nil {
			return p
		}
	}
	if filepath.Base(filepath.Dir(target)) == "bin" {
		return libexec
	}
	return beside
}

// ResolveTarget returns the binary to replace: target, or the running
// executable, with symlinks resolved so that a /usr/local/bin link is not
// replaced by a copy.
func ResolveTarget(target string) (string, error) {
	if target == "" {
		exe, err := os.Executable()
		if err != nil {
			return "", fmt.Errorf("find the running tentacle binary: %w", err)
		}
		target = exe
	}
	abs, err := filepath.Abs(target)
	if err != nil {
		return "", err
	}
	resolved, err := filepath.EvalSymlinks(abs)
	if errors.Is(err, fs.ErrNotExist) {
		return abs, nil // a first install
	}
	if err != nil {
		return "", config.Userf("Cannot resolve the install target %s: %v.", abs, errors.Unwrap(err))
	}
	return resolved, nil
}

// DetectInstall tells how binary was installed: by our MSI (it is the
// Tentacle.exe in the folder the MSI recorded; the second value is the
// MSI's ProductCode), owned by the tentacle-go package according to dpkg
// (deb) or rpm, or not owned by any package (binary). A binary owned by
// another package is refused, since replacing it would fight that package.
func DetectInstall(ctx context.Context, binary string) (InstallMethod, string, error) {
	if code, ok := detectMSI(binary); ok {
		return MethodMSI, code, nil
	}
	if _, err := exec.LookPath("dpkg"); err == nil {
		out, err := exec.CommandContext(ctx, "dpkg", "-S", binary).Output()
		if err == nil {
			// "tentacle-go: /usr/bin/tentacle" or "tentacle-go:amd64: ...".
			line, _, _ := strings.Cut(string(out), "\n")
			owner, _, _ := strings.Cut(line, ": ")
			owner, _, _ = strings.Cut(owner, ":")
			return ownedBy(MethodDeb, strings.TrimSpace(owner), binary)
		}
	}
	if _, err := exec.LookPath("rpm"); err == nil {
		out, err := exec.CommandContext(ctx, "rpm", "-qf", "--queryformat", "%{NAME}\n", binary).Output()
		if err == nil {
			owner, _, _ := strings.Cut(string(out), "\n")
			return ownedBy(MethodRPM, strings.TrimSpace(owner), binary)
		}
	}
	return MethodBinary, "", nil
}

func ownedBy(method InstallMethod, owner, binary string) (InstallMethod, string, error) {
	if owner != PackageName {
		return method, owner, config.Userf("%s belongs to the %s package %q, not %s; upgrade it the way that package is maintained, or pass --target to install elsewhere.", binary, method, owner, PackageName)
	}
	return method, owner, nil
}

// Install puts a downloaded (and already verified) release artifact in place
// the way this machine's tentacle was installed: a .deb through apt-get (or
// dpkg), an .rpm through rpm, an .msi through msiexec, or, for a binary not owned by a package, the
// binary from a tar.gz or zip release archive, atomically renamed over the
// target with the previous one kept as PreviousPath(target). A new binary
// that does not answer `version` is never put in place.
func Install(ctx context.Context, artifact string, opts InstallOptions) (InstallResult, error) {
	res := InstallResult{DryRun: opts.DryRun}
	abs, err := filepath.Abs(artifact)
	if err != nil {
		return res, err
	}
	if fi, err := os.Stat(abs); err != nil || !fi.Mode().IsRegular() {
		return res, config.Userf("The release artifact %s does not exist or is not a file; download it first (tentacle release download).", artifact)
	}
	res.Target, err = ResolveTarget(opts.Target)
	if err != nil {
		return res, err
	}
	res.Method, res.Package, err = DetectInstall(ctx, res.Target)
	if err != nil {
		return res, err
	}
	lower := strings.ToLower(abs)
	switch res.Method {
	case MethodDeb:
		if !strings.HasSuffix(lower, ".deb") {
			return res, config.Userf("%s was installed by the %s deb package, so install the release's .deb, not %s.", res.Target, PackageName, filepath.Base(abs))
		}
		cmd := []string{"dpkg", "-i", abs}
		if _, err := exec.LookPath("apt-get"); err == nil {
			cmd = []string{"apt-get", "install", "-y", abs} // an absolute path: apt-get reads it as a file
			if opts.AllowDowngrade {
				cmd = []string{"apt-get", "install", "-y", "--allow-downgrades", abs}
			}
		}
		return installPackage(ctx, res, cmd, opts)
	case MethodRPM:
		if !strings.HasSuffix(lower, ".rpm") {
			return res, config.Userf("%s was installed by the %s rpm package, so install the release's .rpm, not %s.", res.Target, PackageName, filepath.Base(abs))
		}
		cmd := []string{"rpm", "-U", abs}
		if opts.AllowDowngrade {
			cmd = []string{"rpm", "-U", "--oldpackage", abs}
		}
		return installPackage(ctx, res, cmd, opts)
	case MethodMSI:
		if !strings.HasSuffix(lower, ".msi") {
			return res, config.Userf("%s was installed by the tentacle MSI, so install the release's .msi (through msiexec), not %s.", res.Target, filepath.Base(abs))
		}
		return installMSI(ctx, res, abs, opts)
	}
	if strings.HasSuffix(lower, ".deb") || strings.HasSuffix(lower, ".rpm") || strings.HasSuffix(lower, ".msi") {
		return res, config.Userf("%s is not owned by a package or the MSI, so install the release's tar.gz (or zip) archive, not %s.", res.Target, filepath.Base(abs))
	}
	return installBinary(ctx, res, abs, opts)
}

func installPackage(ctx context.Context, res InstallResult, argv []string, opts InstallOptions) (InstallResult, error) {
	res.Steps = append(res.Steps, "run "+strings.Join(argv, " "))
	if opts.DryRun {
		return res, nil
	}
	out := opts.Output
	if out == nil {
		out = io.Discard
	}
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Run(); err != nil {
		return res, config.Userf("%s failed (%v); its output says why, and the installed version is unchanged unless it says otherwise.", strings.Join(argv, " "), err)
	}
	res.Version, _ = binaryVersion(ctx, res.Target)
	return res, nil
}

func installBinary(ctx context.Context, res InstallResult, archive string, opts InstallOptions) (InstallResult, error) {
	limits := opts.Limits
	if limits == (ExtractLimits{}) {
		limits = DefaultExtractLimits
	}
	// Unpack beside the target so the final rename stays on one file
	// system; a dry run must not write there, so it uses the temp dir.
	workParent := filepath.Dir(res.Target)
	if opts.DryRun {
		workParent = ""
	}
	work, err := os.MkdirTemp(workParent, ".tentacle-install-*")
	if err != nil {
		return res, config.Userf("Cannot write beside %s (%v); run the install as a user who may replace it.", res.Target, errors.Unwrap(err))
	}
	defer os.RemoveAll(work)
	unpacked := filepath.Join(work, "archive")
	if err := Extract(archive, unpacked, limits); err != nil {
		return res, err
	}
	newBinary, err := archiveBinary(unpacked)
	if err != nil {
		return res, config.Userf("%s holds no tentacle/Tentacle binary; is it a tentacle release archive for this OS?", archive)
	}
	perm := fs.FileMode(0o755)
	old, err := os.Lstat(res.Target)
	if err == nil {
		perm = old.Mode().Perm() | 0o100
		res.Previous = PreviousPath(res.Target)
		res.PreviousVersion, _ = binaryVersion(ctx, res.Target)
	}
	if err := os.Chmod(newBinary, perm); err != nil {
		return res, err
	}
	res.Version, err = binaryVersion(ctx, newBinary)
	if err != nil {
		return res, config.Userf("The binary in %s does not run (%v), so it was not installed; is the archive for this OS and architecture (%s/%s)?", filepath.Base(archive), err, runtime.GOOS, runtime.GOARCH)
	}
	// The release's tentacle-supervisor (none in an older release): it must
	// be of the same build, or the agent would pass it over anyway.
	newSupervisor, err := archiveSupervisor(unpacked)
	if err == nil {
		if err := os.Chmod(newSupervisor, 0o755); err != nil {
			return res, err
		}
		if v, err := binaryVersion(ctx, newSupervisor); err != nil || v != res.Version {
			if err == nil {
				err = fmt.Errorf("it is version %s, its Tentacle %s", v, res.Version)
			}
			return res, config.Userf("The tentacle-supervisor in %s is not of its binary's build (%v), so nothing was installed.", filepath.Base(archive), err)
		}
	}
	supervisorPath := SupervisorPath(res.Target)
	res.Supervisor = supervisorPath
	_, oldSupervisor := os.Lstat(supervisorPath)
	if res.Previous != "" {
		res.Steps = append(res.Steps, fmt.Sprintf("keep %s (%s) as %s", res.Target, orUnknownVersion(res.PreviousVersion), res.Previous))
	}
	switch {
	case newSupervisor != "":
		res.Steps = append(res.Steps, fmt.Sprintf("put tentacle-supervisor %s from %s at %s", res.Version, filepath.Base(archive), res.Supervisor))
	case oldSupervisor == nil:
		res.Steps = append(res.Steps, fmt.Sprintf("remove %s (the release has no tentacle-supervisor), keeping it as %s", res.Supervisor, PreviousPath(res.Supervisor)))
	default:
		res.Supervisor = ""
	}
	res.Steps = append(res.Steps, fmt.Sprintf("put %s from %s at %s", res.Version, filepath.Base(archive), res.Target))
	if opts.DryRun {
		return res, nil
	}
	// The supervisor first, so that the new binary finds its own. A
	// running supervisor keeps the file it started from (Unix: the old
	// inode; Windows: the file moved aside), so scripts carry on.
	if err := replaceSupervisor(newSupervisor, supervisorPath, oldSupervisor == nil); err != nil {
		return res, err
	}
	if res.Previous != "" {
		if err := keepPrevious(res.Target, res.Previous); err != nil {
			return res, fmt.Errorf("keep the previous binary as %s: %w", res.Previous, err)
		}
	}
	if err := os.Rename(newBinary, res.Target); err != nil {
		if runtime.GOOS == "windows" && res.Previous != "" {
			os.Rename(res.Previous, res.Target) // keepPrevious moved it away
		}
		return res, fmt.Errorf("move the new binary to %s: %w", res.Target, err)
	}
	syncRenameDir(filepath.Dir(res.Target))
	return res, nil
}

// replaceSupervisor puts the new tentacle-supervisor (none: "") at path,
// keeping the old one (when there is one) as PreviousPath(path) for a
// rollback. Without an old one a stale previous is removed, so that a
// rollback knows there was none.
func replaceSupervisor(newSupervisor, path string, hadOld bool) error {
	previous := PreviousPath(path)
	if hadOld {
		if err := keepPrevious(path, previous); err != nil {
			return fmt.Errorf("keep the previous tentacle-supervisor as %s: %w", previous, err)
		}
	} else if err := os.Remove(previous); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if newSupervisor == "" {
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("remove the old %s: %w", path, err)
		}
		syncRenameDir(filepath.Dir(path))
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	if err := os.Rename(newSupervisor, path); err != nil {
		if runtime.GOOS == "windows" && hadOld {
			os.Rename(previous, path) // keepPrevious moved it away
		}
		return fmt.Errorf("move the new tentacle-supervisor to %s: %w", path, err)
	}
	syncRenameDir(filepath.Dir(path))
	return nil
}

// keepPrevious saves target as previous. On Unix a hard link keeps target in
// place until the rename replaces it, so there is never a moment without a
// binary; Windows cannot rename over a running executable but can move it
// aside.
func keepPrevious(target, previous string) error {
	if err := os.Remove(previous); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if runtime.GOOS == "windows" {
		return os.Rename(target, previous)
	}
	if err := os.Link(target, previous); err == nil {
		return nil
	}
	return copyPreviousBinary(target, previous)
}

func copyPreviousBinary(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	fi, err := in.Stat()
	if err != nil {
		return err
	}
	out, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_EXCL, fi.Mode().Perm())
	if err != nil {
		return err
	}
	_, err = io.Copy(out, in)
	if err == nil {
		err = out.Sync()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(to)
	}
	return err
}

// archiveBinary finds the program in an unpacked release archive: goreleaser
// wraps it as tentacle/Tentacle (Tentacle.exe on Windows), as upstream's
// tarball does.
func archiveBinary(dir string) (string, error) {
	names := []string{"tentacle/Tentacle", "Tentacle"}
	if runtime.GOOS == "windows" {
		names = []string{"tentacle/Tentacle.exe", "Tentacle.exe"}
	}
	for _, n := range names {
		p := filepath.Join(dir, filepath.FromSlash(n))
		if fi, err := os.Lstat(p); err == nil && fi.Mode().IsRegular() {
			return p, nil
		}
	}
	return "", fs.ErrNotExist
}

// archiveSupervisor finds tentacle/tentacle-supervisor (.exe on Windows) in
// an unpacked release archive; releases before it have none.
func archiveSupervisor(dir string) (string, error) {
	for _, n := range []string{"tentacle/" + scripts.SupervisorFileName(), scripts.SupervisorFileName()} {
		p := filepath.Join(dir, filepath.FromSlash(n))
		if fi, err := os.Lstat(p); err == nil && fi.Mode().IsRegular() {
			return p, nil
		}
	}
	return "", fs.ErrNotExist
}

// versionPattern is what `tentacle version` prints: SemVer.
var versionPattern = regexp.MustCompile(`^v?[0-9]+\.[0-9]+\.[0-9]+\S*$`)

// binaryVersion runs `<binary> version` and returns the version it prints.
func binaryVersion(ctx context.Context, binary string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, versionCheckTimeout)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, binary, "version")
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		if msg := strings.TrimSpace(stderr.String()); msg != "" {
			return "", fmt.Errorf("`version` failed: %v: %s", err, firstLineOf(msg))
		}
		return "", fmt.Errorf("`version` failed: %v", err)
	}
	v := strings.TrimSpace(stdout.String())
	if !versionPattern.MatchString(v) {
		return "", fmt.Errorf("`version` printed %q, not a version", firstLineOf(v))
	}
	return v, nil
}

func firstLineOf(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

func orUnknownVersion(v string) string {
	if v == "" {
		return "version unknown"
	}
	return v
}

// RollbackResult says what Rollback did.
type RollbackResult struct {
	Target  string `json:"target"`
	Version string `json:"version"`
	DryRun  bool   `json:"dryRun"`
}

// Rollback puts PreviousPath(target) back in place of target (empty: the
// running executable), after checking that it runs. The previous binary is
// used up: a second rollback has nothing to restore. It is for binary
// installs; a package's previous version is the package manager's to
// restore.
func Rollback(ctx context.Context, target string, dryRun bool) (RollbackResult, error) {
	res := RollbackResult{DryRun: dryRun}
	var err error
	res.Target, err = ResolveTarget(target)
	if err != nil {
		return res, err
	}
	previous := PreviousPath(res.Target)
	if fi, err := os.Lstat(previous); err != nil || !fi.Mode().IsRegular() {
		return res, config.Userf("There is no previous binary %s to roll back to; only an install that replaced a binary keeps one.", previous)
	}
	res.Version, err = binaryVersion(ctx, previous)
	if err != nil {
		return res, config.Userf("The previous binary %s does not run (%v), so it was not restored.", previous, err)
	}
	if dryRun {
		return res, nil
	}
	if runtime.GOOS == "windows" {
		failed := res.Target + ".failed"
		os.Remove(failed)
		if err := os.Rename(res.Target, failed); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return res, fmt.Errorf("move %s aside: %w", res.Target, err)
		}
	}
	if err := os.Rename(previous, res.Target); err != nil {
		return res, fmt.Errorf("restore %s: %w", previous, err)
	}
	syncRenameDir(filepath.Dir(res.Target))
	rollbackSupervisor(ctx, res.Target, res.Version)
	return res, nil
}

// rollbackSupervisor puts back the tentacle-supervisor the install kept
// beside the restored binary's, or, when it kept none (the restored
// version had none), removes the one the install put there unless it is
// of the restored build. Best effort: the agent passes over a supervisor
// of another build anyway.
func rollbackSupervisor(ctx context.Context, target, version string) {
	path := SupervisorPath(target)
	// The install kept the previous one where it was, which (when it then
	// removed it) SupervisorPath may no longer point at.
	beside, libexec := scripts.SupervisorPlaces(target)
	for _, p := range []string{beside, libexec} {
		if _, err := os.Lstat(PreviousPath(p)); err == nil {
			path = p
			break
		}
	}
	previous := PreviousPath(path)
	aside := func() {
		if runtime.GOOS == "windows" { // a running one cannot be replaced, but moved
			os.Remove(path + ".failed")
			os.Rename(path, path+".failed")
		}
	}
	if fi, err := os.Lstat(previous); err == nil && fi.Mode().IsRegular() {
		aside()
		if os.Rename(previous, path) == nil {
			syncRenameDir(filepath.Dir(path))
		}
		return
	}
	if v, err := binaryVersion(ctx, path); err == nil && v == version {
		return
	}
	if _, err := os.Lstat(path); err == nil {
		aside()
		os.Remove(path)
		syncRenameDir(filepath.Dir(path))
	}
}
