package host

import (
	"context"
	"encoding/json"
	"runtime"
	"strings"

	"github.com/tentacle-go/tentacle/firewall"
)

// Backends are the names --backend takes, besides "auto".
var Backends = []string{"nftables", "iptables", "ufw", "firewalld", "windows"}

// New is the backend with this name, driving its tool through r.
func New(name string, r Runner) (firewall.Firewall, error) {
	switch strings.ToLower(name) {
	case "nftables", "nft":
		return NewNFTables(r), nil
	case "iptables":
		return NewIPTables(r), nil
	case "ufw":
		return NewUFW(r), nil
	case "firewalld":
		return NewFirewalld(r), nil
	case "windows", "netsh":
		return NewWindows(r), nil
	}
	return nil, firewall.Userf("The firewall %q is not supported: use auto, %s.", name, strings.Join(Backends, ", "))
}

// Detect picks the firewall that is in charge on this machine and says why:
// on Windows, Windows Firewall; elsewhere firewalld if it is running, else
// ufw if it is active (both manage the kernel's rules themselves, and would
// undo or shadow rules added behind their backs), else nftables, else
// iptables. Between the last two it prefers the one that already filters
// incoming traffic: an nftables accept cannot override an iptables drop.
func Detect(ctx context.Context, r Runner) (firewall.Firewall, string, error) {
	if runtime.GOOS == "windows" {
		return NewWindows(r), "this is Windows", nil
	}
	if runtime.GOOS != "linux" {
		return nil, "", firewall.Userf("There is no supported firewall on %s: open the port with the system's own tools, or in your cloud's firewall (tentacle firewall aws|azure).", runtime.GOOS)
	}
	if r.Installed("firewall-cmd") {
		if _, err := r.Run(ctx, "firewall-cmd", "--state"); err == nil {
			return NewFirewalld(r), "firewalld is running", nil
		}
	}
	if r.Installed("ufw") {
		out, err := r.Run(ctx, "ufw", "status")
		if err != nil {
			return nil, "", explain(err)
		}
		if strings.Contains(string(out), "Status: active") {
			return NewUFW(r), "ufw is active", nil
		}
	}
	if r.Installed("nft") {
		out, err := r.Run(ctx, "nft", "-j", "list", "ruleset")
		if err != nil {
			return nil, "", explain(err)
		}
		native, iptables := inputFilters(out)
		if iptables && !native && r.Installed("iptables") {
			return NewIPTables(r), "iptables rules filter incoming traffic and no nftables table does", nil
		}
		if r.Installed("firewall-cmd") || r.Installed("ufw") {
			return NewNFTables(r), "firewalld is not running and ufw is not active", nil
		}
		return NewNFTables(r), "nft is installed", nil
	}
	if r.Installed("iptables") {
		return NewIPTables(r), "nft is not installed", nil
	}
	return nil, "", firewall.Userf("No supported firewall tool was found (firewall-cmd, ufw, nft, iptables): if the machine has no firewall there is nothing to open here; otherwise install nftables, or pass --backend.")
}

// inputFilters reports whether a native nftables table, and whether
// iptables (its compatibility tables "ip filter"/"ip6 filter" with their
// upper-case INPUT chain), filter incoming traffic: a base chain on the
// input hook with a drop policy or any rule. tentacle's own table does not
// count.
func inputFilters(ruleset []byte) (native, iptables bool) {
	var doc struct {
		Nftables []struct {
			Chain *struct{ Family, Table, Name, Hook, Policy string }
			Rule  *struct{ Family, Table, Chain string }
		}
	}
	if json.Unmarshal(ruleset, &doc) != nil {
		return false, false
	}
	isIPTables := func(family, table, chain string) bool {
		return (family == "ip" || family == "ip6") && table == "filter" && chain == "INPUT"
	}
	inputChains := map[[3]string]bool{}
	for _, o := range doc.Nftables {
		if c := o.Chain; c != nil && c.Hook == "input" && !(c.Family == nftFamily && c.Table == nftTable) {
			inputChains[[3]string{c.Family, c.Table, c.Name}] = true
			if c.Policy == "drop" {
				if isIPTables(c.Family, c.Table, c.Name) {
					iptables = true
				} else {
					native = true
				}
			}
		}
		if r := o.Rule; r != nil && inputChains[[3]string{r.Family, r.Table, r.Chain}] {
			if isIPTables(r.Family, r.Table, r.Chain) {
				iptables = true
			} else {
				native = true
			}
		}
	}
	return native, iptables
}
