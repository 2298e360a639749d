package config

import (
	"bufio"
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"unicode/utf8"
)

// MachineKey encrypts the secrets upstream keeps in the configuration file
// (the certificate and proxy passwords) so that they can only be read on this
// machine. It must match upstream exactly, so that a machine moved from
// upstream Tentacle keeps its identity (tentacle-surface §3.5).
type MachineKey interface {
	Encrypt(plain []byte) (string, error)
	Decrypt(encoded string) ([]byte, error)
}

// machineIDIV is upstream's fixed IV for the machine-id key source. It is a
// known weakness (the key is readable machine-wide and the IV never changes);
// we keep it only to read and write files upstream can read.
var machineIDIV = []byte("743677397A244326")

// UnixMachineKey is upstream's Linux scheme: AES-256-CBC with PKCS#7 padding
// and base64 output, keyed by the ASCII of /etc/machine-id with a fixed IV,
// or, when that is missing or not 32 characters, by a generated key stored
// as base64(key).base64(iv) in /etc/octopus/machinekey.
type UnixMachineKey struct {
	MachineIDPath    string // normally /etc/machine-id
	GeneratedKeyPath string // normally /etc/octopus/machinekey
}

// NewUnixMachineKey returns the key sources upstream uses, with the generated
// key under the machine config root.
func NewUnixMachineKey(root string) *UnixMachineKey {
	return &UnixMachineKey{MachineIDPath: "/etc/machine-id", GeneratedKeyPath: filepath.Join(root, "machinekey")}
}

type keyIV struct{ key, iv []byte }

func (m *UnixMachineKey) machineIDKey() (keyIV, error) {
	f, err := os.Open(m.MachineIDPath)
	if err != nil {
		return keyIV{}, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Scan()
	id := sc.Text()
	if len(id) != 32 {
		return keyIV{}, fmt.Errorf("%s is empty or not 32 characters", m.MachineIDPath)
	}
	return keyIV{[]byte(id), machineIDIV}, nil
}

func (m *UnixMachineKey) generatedKey(create bool) (keyIV, error) {
	data, err := os.ReadFile(m.GeneratedKeyPath)
	if errors.Is(err, os.ErrNotExist) && create {
		key, iv := make([]byte, 32), make([]byte, 16)
		rand.Read(key)
		rand.Read(iv)
		if _, err := EnsurePrivateDirAll(filepath.Dir(m.GeneratedKeyPath)); err != nil {
			return keyIV{}, err
		}
		text := base64.StdEncoding.EncodeToString(key) + "." + base64.StdEncoding.EncodeToString(iv)
		if err := WriteSecretFileAtomic(m.GeneratedKeyPath, []byte(text)); err != nil {
			return keyIV{}, err
		}
		return keyIV{key, iv}, nil
	}
	if err != nil {
		return keyIV{}, err
	}
	parts := strings.Split(strings.TrimSpace(string(data)), ".")
	if len(parts) < 2 {
		return keyIV{}, fmt.Errorf("machine key file %s is corrupt", m.GeneratedKeyPath)
	}
	key, err1 := base64.StdEncoding.DecodeString(parts[0])
	iv, err2 := base64.StdEncoding.DecodeString(parts[1])
	if err1 != nil || err2 != nil || len(iv) != aes.BlockSize {
		return keyIV{}, fmt.Errorf("machine key file %s is corrupt", m.GeneratedKeyPath)
	}
	return keyIV{key, iv}, nil
}

// sources returns the keys to try, in upstream's order.
func (m *UnixMachineKey) sources(create bool) ([]keyIV, []error) {
	var keys []keyIV
	var errs []error
	if k, err := m.machineIDKey(); err == nil {
		keys = append(keys, k)
	} else {
		errs = append(errs, err)
	}
	// Only generate a key file when there is no machine-id to use, as upstream.
	if k, err := m.generatedKey(create && len(keys) == 0); err == nil {
		keys = append(keys, k)
	} else if !errors.Is(err, os.ErrNotExist) {
		errs = append(errs, err)
	}
	return keys, errs
}

func (m *UnixMachineKey) Encrypt(plain []byte) (string, error) {
	keys, errs := m.sources(true)
	if len(keys) == 0 {
		return "", fmt.Errorf("no machine key is available to encrypt secrets: %w", errors.Join(errs...))
	}
	k := keys[0]
	block, err := aes.NewCipher(k.key)
	if err != nil {
		return "", err
	}
	pad := aes.BlockSize - len(plain)%aes.BlockSize
	buf := append(append([]byte(nil), plain...), bytes.Repeat([]byte{byte(pad)}, pad)...)
	cipher.NewCBCEncrypter(block, k.iv).CryptBlocks(buf, buf)
	return base64.StdEncoding.EncodeToString(buf), nil
}

// ErrMachineKeyMismatch means a secret was encrypted on another machine (or
// before /etc/machine-id changed).
var ErrMachineKeyMismatch = errors.New("the secret was encrypted with a different machine key")

func (m *UnixMachineKey) Decrypt(encoded string) ([]byte, error) {
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(encoded))
	if err != nil || len(raw) == 0 || len(raw)%aes.BlockSize != 0 {
		return nil, errors.New("the encrypted value is not valid base64 AES ciphertext")
	}
	keys, errs := m.sources(false)
	if len(keys) == 0 {
		return nil, fmt.Errorf("no machine key is available to decrypt secrets: %w", errors.Join(errs...))
	}
	for _, k := range keys {
		block, err := aes.NewCipher(k.key)
		if err != nil {
			continue
		}
		buf := make([]byte, len(raw))
		cipher.NewCBCDecrypter(block, k.iv).CryptBlocks(buf, raw)
		// Without a MAC, a wrong key still yields valid padding about once in
		// 256 tries; what upstream encrypts is always UTF-8 text, so garbage
		// is told apart by that too.
		if plain, ok := unpadPKCS7(buf); ok && utf8.Valid(plain) {
			return plain, nil
		}
	}
	return nil, ErrMachineKeyMismatch
}

func unpadPKCS7(b []byte) ([]byte, bool) {
	if len(b) == 0 {
		return nil, false
	}
	n := int(b[len(b)-1])
	if n == 0 || n > aes.BlockSize || n > len(b) {
		return nil, false
	}
	for _, c := range b[len(b)-n:] {
		if int(c) != n {
			return nil, false
		}
	}
	return b[:len(b)-n], true
}
