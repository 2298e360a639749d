//go:build windows

package main

import (
	"golang.org/x/sys/windows/registry"

	"github.com/tentacle-go/tentacle/agent/config"
)

// readRegistryCertificate reads the Tentacle 1.x certificate upstream stored
// in HKLM\Software\Octopus, value "Cert-cn=Octopus Tentacle" (base64 PKCS#12).
func readRegistryCertificate() (string, error) {
	k, err := registry.OpenKey(registry.LOCAL_MACHINE, `Software\Octopus`, registry.QUERY_VALUE|registry.WOW64_64KEY)
	if err != nil {
		return "", config.Userf("No Octopus 1.x Tentacle certificate was found (HKLM\\Software\\Octopus cannot be opened: %v).", err)
	}
	defer k.Close()
	v, _, err := k.GetStringValue("Cert-cn=Octopus Tentacle")
	if err != nil || v == "" {
		return "", config.Userf("No Octopus 1.x Tentacle certificate was found.")
	}
	return v, nil
}
