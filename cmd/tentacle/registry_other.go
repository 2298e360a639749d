//go:build !windows

package main

import "github.com/tentacle-go/tentacle/agent/config"

func readRegistryCertificate() (string, error) {
	return "", config.Userf("--from-registry imports a Tentacle 1.x certificate from the Windows registry and only works on Windows. On this machine, export the certificate as a PFX and use --from-file=PATH --pfx-password=PASSWORD.")
}
