//go:build !race

package mqttcore_test

// raceEnabled: see race_on_test.go.
const raceEnabled = false
