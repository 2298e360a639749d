//go:build windows

package host

import (
	"errors"

	"github.com/tentacle-go/tentacle/firewall"
	"golang.org/x/sys/windows"
	"golang.org/x/sys/windows/registry"
)

// windowsRulesKey is Windows Firewall's local rule store, the one netsh
// advfirewall writes to (Group Policy rules live elsewhere).
const windowsRulesKey = `SYSTEM\CurrentControlSet\Services\SharedAccess\Parameters\FirewallPolicy\FirewallRules`

// registryRuleStore reads a rule store key.
type registryRuleStore struct {
	root registry.Key
	path string
}

func localRuleStore() windowsRuleStore {
	return registryRuleStore{root: registry.LOCAL_MACHINE, path: windowsRulesKey}
}

func (s registryRuleStore) ruleValues() ([]string, error) {
	k, err := registry.OpenKey(s.root, s.path, registry.QUERY_VALUE)
	if errors.Is(err, registry.ErrNotExist) {
		// No rule was ever stored (or no firewall service, as under Wine).
		return nil, nil
	}
	if errors.Is(err, windows.ERROR_ACCESS_DENIED) {
		return nil, firewall.Userf("Reading Windows Firewall's rules needs administrator rights (HKLM\\%s was refused): run tentacle as Administrator.", s.path)
	}
	if err != nil {
		return nil, err
	}
	defer k.Close()
	names, err := k.ReadValueNames(-1)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, n := range names {
		v, _, err := k.GetStringValue(n)
		if err != nil {
			continue // not a REG_SZ rule: nothing netsh made
		}
		out = append(out, v)
	}
	return out, nil
}
