// Package faults holds the agent's fault-injection tests (issue 20, "Faults"): a silently
// dropped link, a restarted server, resetting and stalling proxies, hostile peers, a full
// disk and kill -9, each asserting what must hold (nothing lost, nothing run twice, bounded
// resources). It has no code of its own: everything is in its tests, which run on Linux as
// root, each in a network and mount namespace of its own (unshare), so that firewall rules
// and mounts touch nothing outside. `make test` runs them with tuned-down deadlines;
// `make soak` runs the dropped link again with the agent's default limits.
package faults
