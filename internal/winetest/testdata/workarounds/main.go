// Command workarounds exercises what Go 1.26 needs the two Wine workarounds
// for: ProcessPrng at start-up (crypto/rand) and os.RemoveAll.
package main

import (
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
)

func main() {
	dir, err := os.MkdirTemp("", "winetest-")
	if err != nil {
		fail(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "a", "b"), 0o755); err != nil {
		fail(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "a", "b", "f"), []byte(rand.Text()), 0o644); err != nil {
		fail(err)
	}
	if err := os.RemoveAll(dir); err != nil {
		fail(err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		fail(fmt.Errorf("%s still there after RemoveAll: %v", dir, err))
	}
	fmt.Println("removed", dir)
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, err)
	os.Exit(1)
}
