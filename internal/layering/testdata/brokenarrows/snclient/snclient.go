// Package snclient keeps its arrow: snclient -> snpacket.
package snclient

import "example.com/brokenarrows/snpacket"

// X uses the import.
const X = snpacket.X
