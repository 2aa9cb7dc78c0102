//go:build race

package server

// raceEnabled: the race detector slows every message about tenfold.
const raceEnabled = true
