// Package radio breaks "radio parses nothing".
package radio

import "example.com/brokenarrows/snpacket"

// X uses the import.
const X = snpacket.X
