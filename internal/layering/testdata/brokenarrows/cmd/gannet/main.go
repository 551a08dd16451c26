// Command gannet keeps cmd -> {gateway, snclient} and breaks cmd -> snpacket.
package main

import (
	"example.com/brokenarrows/gateway"
	"example.com/brokenarrows/snclient"
	"example.com/brokenarrows/snpacket"
)

func main() { _ = gateway.X + snclient.X + snpacket.X }
