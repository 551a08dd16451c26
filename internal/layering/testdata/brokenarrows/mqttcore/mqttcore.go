// Package mqttcore breaks "knows nothing of MQTT-SN".
package mqttcore

import "example.com/brokenarrows/snpacket"

// X uses the import.
const X = snpacket.X
