//go:build race

package gateway_test

// raceEnabled: the race detector's shadow memory and slower scheduling
// distort memory measurements, so they are skipped under -race (.ci/run runs
// them without it).
const raceEnabled = true
