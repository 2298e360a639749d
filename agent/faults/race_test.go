//go:build linux && race

package faults

// raceEnabled: this test binary (and so the agent process it runs) has the race detector,
// which multiplies the memory of every goroutine; memory bounds are asserted without it.
const raceEnabled = true
