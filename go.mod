module github.com/gannet-mqtt/gannet

go 1.25.0
