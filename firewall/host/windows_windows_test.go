package host

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/tentacle-go/tentacle/firewall"
	"golang.org/x/sys/windows"
	"golang.org/x/sys/windows/registry"
)

// underWine reports whether this process runs under Wine, whose ntdll
// exports wine_get_version.
func underWine() bool {
	return windows.NewLazySystemDLL("ntdll.dll").NewProc("wine_get_version").Find() == nil
}

// The registry reader reads a real key: REG_SZ rules in the store's syntax,
// other value types ignored. The key is a scratch one under HKCU, so the test
// changes nothing of the machine's firewall.
func TestRegistryRuleStore(t *testing.T) {
	path := fmt.Sprintf(`Software\tentacle-test\FirewallRules-%d`, os.Getpid())
	k, _, err := registry.CreateKey(registry.CURRENT_USER, path, registry.ALL_ACCESS)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		k.Close()
		registry.DeleteKey(registry.CURRENT_USER, path)
	})
	if err := k.SetStringValue("{a}", storeRestrictedRule); err != nil {
		t.Fatal(err)
	}
	if err := k.SetDWordValue("NotARule", 1); err != nil {
		t.Fatal(err)
	}
	w := &Windows{run: ExecRunner{}, store: registryRuleStore{root: registry.CURRENT_USER, path: path}}
	rules, err := w.ListNamed(context.Background(), firewall.DefaultRuleName)
	if err != nil {
		t.Fatal(err)
	}
	if len(rules) != 1 || rules[0].Ports != (firewall.PortRange{First: 20000, Last: 20010}) || len(rules[0].Sources) != 2 {
		t.Fatalf("listed %+v", rules)
	}
	missing := &Windows{run: ExecRunner{}, store: registryRuleStore{root: registry.CURRENT_USER, path: path + `\none`}}
	if rules, err := missing.List(context.Background()); err != nil || len(rules) != 0 {
		t.Fatalf("a missing key: %v %v", rules, err)
	}
}

// Wine's netsh.exe is a stub that exits 0 and changes nothing: `firewall
// open` through it must fail, because the rule is read back and is not
// there. On real Windows this would change the machine's firewall, so it
// runs under Wine only.
func TestStubNetshIsAFailure(t *testing.T) {
	if !underWine() {
		t.Skip("SKIP: runs under Wine only (on Windows it would add a real firewall rule)")
	}
	ctx := context.Background()
	w := NewWindows(ExecRunner{})
	rule := firewall.NewRule("", firewall.SinglePort(10933), nil)
	p, err := w.PlanOpen(ctx, rule)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Steps) != 1 {
		t.Fatalf("planned %v", stepsOf(p))
	}
	// netsh itself reports success...
	if err := p.Apply(ctx, nil); err != nil {
		t.Fatalf("Wine's netsh failed (%v): the premise of this test is gone", err)
	}
	// ...and the read-back says it did nothing.
	err = firewall.Verify(ctx, w, p)
	if ue, ok := err.(*firewall.UserError); !ok || !strings.Contains(ue.Msg, "reported success, but reading its rules back shows the rule is not there") {
		t.Fatalf("got %v, want the read-back failure", err)
	}
}
