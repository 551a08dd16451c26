// Package gateway keeps gateway -> {snpacket, mqttcore} but imports a test
// helper.
package gateway

import (
	"example.com/brokenarrows/internal/memlink"
	"example.com/brokenarrows/mqttcore"
	"example.com/brokenarrows/snpacket"
)

// X uses the imports.
const X = snpacket.X + mqttcore.X + memlink.X
