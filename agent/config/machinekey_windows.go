//go:build windows

package config

import (
	"encoding/base64"
	"fmt"
	"strings"
	"unsafe"

	"golang.org/x/sys/windows"
)

// DPAPIMachineKey is upstream's Windows scheme: DPAPI with the LocalMachine
// scope, base64 output.
type DPAPIMachineKey struct{}

// DefaultMachineKey is the platform's machine key, upstream's scheme.
func DefaultMachineKey(root string) MachineKey { return DPAPIMachineKey{} }

func blob(b []byte) *windows.DataBlob {
	if len(b) == 0 {
		return &windows.DataBlob{}
	}
	return &windows.DataBlob{Size: uint32(len(b)), Data: &b[0]}
}

func takeBlob(out *windows.DataBlob) []byte {
	defer windows.LocalFree(windows.Handle(unsafe.Pointer(out.Data)))
	return append([]byte(nil), unsafe.Slice(out.Data, out.Size)...)
}

func (DPAPIMachineKey) Encrypt(plain []byte) (string, error) {
	var out windows.DataBlob
	if err := windows.CryptProtectData(blob(plain), nil, nil, 0, nil, windows.CRYPTPROTECT_LOCAL_MACHINE|windows.CRYPTPROTECT_UI_FORBIDDEN, &out); err != nil {
		return "", fmt.Errorf("DPAPI encryption failed: %w", err)
	}
	return base64.StdEncoding.EncodeToString(takeBlob(&out)), nil
}

func (DPAPIMachineKey) Decrypt(encoded string) ([]byte, error) {
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(encoded))
	if err != nil {
		return nil, fmt.Errorf("the encrypted value is not valid base64: %w", err)
	}
	var out windows.DataBlob
	if err := windows.CryptUnprotectData(blob(raw), nil, nil, 0, nil, windows.CRYPTPROTECT_UI_FORBIDDEN, &out); err != nil {
		return nil, ErrMachineKeyMismatch
	}
	return takeBlob(&out), nil
}
