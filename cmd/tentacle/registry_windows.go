//go:build windows

package main

import (
	"errors"
	"strings"

	"golang.org/x/sys/windows/registry"

	"github.com/tentacle-go/tentacle/agent/config"
)

// readRegistryCertificate reads the Tentacle 1.x certificate upstream stored
// in HKLM\Software\Octopus, value "Cert-cn=Octopus Tentacle" (base64 PKCS#12).
func readRegistryCertificate() (string, error) {
	k, err := registry.OpenKey(registry.LOCAL_MACHINE, `Software\Octopus`, registry.QUERY_VALUE|registry.WOW64_64KEY)
	if errors.Is(err, registry.ErrNotExist) {
		return "", config.Userf("No Octopus 1.x Tentacle certificate was found: this machine has no registry key HKLM\\Software\\Octopus. Export the certificate as a PFX and use --from-file=PATH --pfx-password=PASSWORD.")
	}
	if err != nil {
		// Windows' messages end with a period; ours follows.
		return "", config.Userf("No Octopus 1.x Tentacle certificate was found: HKLM\\Software\\Octopus cannot be opened (%s). Run the command as an administrator.", strings.TrimRight(err.Error(), "."))
	}
	defer k.Close()
	v, _, err := k.GetStringValue("Cert-cn=Octopus Tentacle")
	if err != nil || v == "" {
		return "", config.Userf("No Octopus 1.x Tentacle certificate was found.")
	}
	return v, nil
}
