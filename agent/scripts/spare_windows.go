package scripts

import "errors"

// os/exec cannot pass a Windows process extra handles, so supervisors there are always
// started when a script is launched.
const extraFilesSupported = false

func redirectStdio(string) error { return errors.New("not used on Windows") }

func closeOnExec(int) {}
