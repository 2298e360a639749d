package agent

import (
	"bufio"
	"bytes"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// releaseStartupPages drops this process's mappings of its own binary's
// read-only pages (code and read-only data), once start-up is over.
//
// Go runs the initialisation of every package linked in before main, in
// every process, and the kernel maps file pages 64 KB at a time around each
// one touched: start-up leaves several MB of the binary mapped that an idle
// agent never runs again (the cloud SDKs' package initialisation alone
// leaves ~3 MB; docs/benchmarks.md). MADV_DONTNEED on a read-only private
// file mapping only removes this process's page-table entries: the pages
// stay in the page cache, shared, and whatever the agent runs next is
// mapped back from there on its first touch (a minor fault). Writable
// mappings (the binary's data) are never touched: for them it would throw
// away their contents. It returns the bytes it unmapped.
func releaseStartupPages() (int64, error) {
	exe, err := os.Readlink("/proc/self/exe")
	if err != nil {
		return 0, err
	}
	maps, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		return 0, err
	}
	var released int64
	sc := bufio.NewScanner(bytes.NewReader(maps))
	for sc.Scan() {
		// 00400000-00c6e000 r-xp 00000000 fd:01 1234  /usr/bin/tentacle
		fields := strings.Fields(sc.Text())
		if len(fields) < 6 || strings.Join(fields[5:], " ") != exe {
			continue
		}
		perms := fields[1]
		if len(perms) < 4 || perms[1] != '-' || perms[3] != 'p' {
			continue // writable, or shared: keep
		}
		lo, hi, ok := strings.Cut(fields[0], "-")
		if !ok {
			continue
		}
		start, err1 := strconv.ParseUint(lo, 16, 64)
		end, err2 := strconv.ParseUint(hi, 16, 64)
		if err1 != nil || err2 != nil || end <= start {
			continue
		}
		if _, _, errno := unix.Syscall(unix.SYS_MADVISE, uintptr(start), uintptr(end-start), unix.MADV_DONTNEED); errno != 0 {
			return released, errno
		}
		released += int64(end - start)
	}
	return released, sc.Err()
}
