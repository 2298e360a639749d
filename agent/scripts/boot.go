package scripts

import (
	"os"
	"runtime"
	"strings"
	"sync"
)

// bootID names this boot of the machine (Linux's boot_id); "" where there is
// none. A workspace prepared or launched in an earlier boot is never launched
// again: after a power loss its files may be torn, and a script the server
// started before the machine went down must not start behind its back later.
// That is also what lets the writes before a launch skip fsync (see
// durability): nothing written before a launch is ever used after a reboot.
var bootID = sync.OnceValue(func() string {
	if runtime.GOOS != "linux" {
		return ""
	}
	b, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
})

// beforeLaunch is the durability of the writes that prepare and launch a
// script: with a boot ID they are never read after a reboot, so surviving the
// agent's crash is enough; without one, a rebooted machine may resume a
// pending script, which must then find its files whole.
func beforeLaunch() durability {
	if bootID() != "" {
		return survivesProcessCrash
	}
	return survivesPowerLoss
}

// fromEarlierBoot reports whether st was written before the machine last
// started.
func fromEarlierBoot(st *scriptState) bool {
	return st.BootID != "" && st.BootID != bootID()
}
