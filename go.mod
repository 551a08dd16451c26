module github.com/gannet-mqtt/gannet

go 1.25.0

require (
	github.com/BurntSushi/toml v1.6.0
	github.com/mochi-mqtt/server/v2 v2.7.9
	golang.org/x/crypto v0.55.0
)

require golang.org/x/sys v0.47.0 // indirect
