// Package snpacket breaks "the standard library only".
package snpacket

import "example.com/elsewhere"

// X uses the import.
const X = elsewhere.X
