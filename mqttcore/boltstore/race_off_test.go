//go:build !race

package boltstore_test

const raceEnabled = false
