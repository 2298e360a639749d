//go:build !windows

package host

import "github.com/tentacle-go/tentacle/firewall"

// unreadableRuleStore stands where there is no Windows registry.
type unreadableRuleStore struct{}

func localRuleStore() windowsRuleStore { return unreadableRuleStore{} }

func (unreadableRuleStore) ruleValues() ([]string, error) {
	return nil, firewall.Userf("Windows Firewall can only be read on Windows: choose another firewall with --backend.")
}
