package mqttcore_test

import (
	"testing"

	"example.com/brokenarrows/snpacket"
)

// TestX breaks the rule in a test file too.
func TestX(t *testing.T) { _ = snpacket.X }
