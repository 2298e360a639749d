//go:build !windows

package host

import "os/exec"

// resolveTool finds a firewall tool on PATH; these tools live in sbin, which
// a non-login root shell may lack, so the usual sbin directories are tried too.
func resolveTool(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, dir := range []string{"/usr/sbin/", "/sbin/", "/usr/local/sbin/"} {
		if p, err := exec.LookPath(dir + name); err == nil {
			return p, nil
		}
	}
	return "", exec.ErrNotFound
}

func prepare(*exec.Cmd) {}
