//go:build !windows

package config

// DefaultMachineKey is the platform's machine key, upstream's scheme.
func DefaultMachineKey(root string) MachineKey { return NewUnixMachineKey(root) }
