package release

import (
	"fmt"
	"os"
	"testing"

	"golang.org/x/sys/windows/registry"
)

// The registration is read from the registry as the MSI writes it (a key of
// the test's own under HKEY_CURRENT_USER, not the machine's).
func TestReadMSIRegistrationFromTheRegistry(t *testing.T) {
	path := fmt.Sprintf(`Software\tentacle-go-test-%d\Tentacle`, os.Getpid())
	if _, ok := readMSIRegistrationAt(registry.CURRENT_USER, path); ok {
		t.Fatal("a registration was found before it was written")
	}
	k, _, err := registry.CreateKey(registry.CURRENT_USER, path, registry.ALL_ACCESS|registry.WOW64_64KEY)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		registry.DeleteKey(registry.CURRENT_USER, path)
		registry.DeleteKey(registry.CURRENT_USER, fmt.Sprintf(`Software\tentacle-go-test-%d`, os.Getpid()))
	})
	k.SetStringValue("InstallLocation", `C:\Program Files\Octopus Deploy\Tentacle\`)
	k.SetStringValue("ProductCode", "{6D14F8A4-2DE3-495F-8EEE-12C67B0F916F}")
	k.Close()
	reg, ok := readMSIRegistrationAt(registry.CURRENT_USER, path)
	if !ok || reg.InstallLocation != `C:\Program Files\Octopus Deploy\Tentacle\` || reg.ProductCode != "{6D14F8A4-2DE3-495F-8EEE-12C67B0F916F}" {
		t.Errorf("read %+v %v", reg, ok)
	}
}

// A Tentacle.exe.old beside the running binary is deleted at start.
func TestRemoveMovedAside(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	old := MSIMovedAsidePath(exe)
	if err := os.WriteFile(old, []byte("the previous binary"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(old) })
	RemoveMovedAside()
	if _, err := os.Stat(old); !os.IsNotExist(err) {
		t.Errorf("%s is still there: %v", old, err)
	}
}
