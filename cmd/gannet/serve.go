package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/gannet-mqtt/gannet/gateway"
	"github.com/gannet-mqtt/gannet/mqttcore"
	"github.com/gannet-mqtt/gannet/mqttcore/auth"
)

func checkConfig(args []string, stdout, stderr io.Writer) error {
	fs := flagSet("check-config", stderr)
	path := configFlag(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	cfg, err := loadConfig(*path)
	if err != nil {
		return err
	}
	if err := cfg.check(*path); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s: ok\n", *path)
	return nil
}

// serve runs the gateway until ctx ends. SIGHUP (and POST /-/reload on the
// [http] listener) rereads the configuration (reload.go).
func serve(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flagSet("serve", stderr)
	path := configFlag(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	// Catch SIGHUP before anything else: its default action ends the
	// process, and a reload must never do that, whatever is configured.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)

	cfg, err := loadConfig(*path)
	if err != nil {
		return err
	}
	if err := cfg.check(*path); err != nil {
		return err
	}
	log, level := cfg.Log.loggerVar(stderr)
	in := &instance{version: version(), started: time.Now(), log: log}

	store, closeStore, err := openStore(cfg.Store, *path) // serve_store.go
	if err != nil {
		return err
	}
	defer func() { // after broker.Close
		if err := closeStore(); err != nil {
			log.Error("closing the store", "err", err)
		}
	}()
	in.store = store
	// [mqtt.auth]'s ACL binds every client, sensors included
	// (docs/security.md); a reload calls authn.Reload.
	authn, err := auth.New(cfg.MQTT.Auth)
	if err != nil {
		return err
	}
	up, err := startTransparent(cfg.Transparent, log) // serve_transparent.go
	if err != nil {
		return err
	}
	defer up.stop() // after broker.Close: the remote sessions are left to their expiry
	broker, err := mqttcore.New(cfg.Broker, mqttcore.Options{Version: version(), Journal: journalOf(store), Authorizer: authn})
	if err != nil {
		return err
	}
	defer broker.Close()
	in.broker = broker
	in.transparent = up.up
	up.install(broker)
	bridges, err := startBridges(ctx, cfg.Bridges, broker, backendOf(store), log) // serve_bridge.go
	if err != nil {
		return err
	}
	defer func() { // runs before broker.Close
		if err := bridges.stop(); err != nil {
			log.Error("stopping bridges", "err", err)
		}
	}()
	in.bridges = bridges
	mqttSrv, stopMQTT, err := startMQTT(ctx, cfg.MQTT, broker, log) // serve_mqtt.go
	if err != nil {
		return err
	}
	defer func() { // runs before broker.Close
		if err := stopMQTT(); err != nil {
			log.Error("stopping mqtt listener", "err", err)
		}
	}()
	in.mqtt = mqttSrv
	// MQTT-SN 2.0 CONNECTs authenticate as MQTT clients do, against
	// [mqtt.auth]'s password file (gateway/auth2.go); a reload reaches both.
	gwOpts := gateway.Options{Logger: log, Authenticator: authn}
	limiters, err := cfg.RateLimit.apply(&gwOpts) // serve_limits.go
	if err != nil {
		return err
	}
	in.limiters = limiters.named()
	gw, err := gateway.New(cfg.Gateway, broker, gwOpts)
	if err != nil {
		return err
	}
	in.gw = gw

	links, err := openLinks(cfg.Listen, log) // serve_radio.go
	if err != nil {
		gw.Close()
		return err
	}
	in.links = links
	live := &liveConfig{path: *path, cfg: cfg, level: level, log: log, links: links, authn: authn, limiters: limiters, gw: gw,
		broker: broker, bridges: bridges, mqtt: mqttSrv}
	in.reload = func() reloadReport {
		in.reloadMu.Lock()
		defer in.reloadMu.Unlock()
		return live.reload()
	}
	httpSrv, err := startHTTP(cfg.HTTP, in.handler(), log) // serve_http.go
	if err != nil {
		gw.Close()
		for _, l := range links {
			l.Close()
		}
		return err
	}
	in.reloadMu.Lock() // a POST /-/reload may already be waiting
	live.http = httpSrv
	in.reloadMu.Unlock()
	defer func() {
		if err := httpSrv.stop(); err != nil {
			log.Error("stopping http listener", "err", err)
		}
	}()

	var wg sync.WaitGroup
	errc := make(chan error, len(links))
	for _, link := range links {
		wg.Add(1)
		go func() { // exits when the gateway closes the link
			defer wg.Done()
			if err := gw.Serve(link); err != nil {
				errc <- err
			}
		}()
	}
	in.ready.Store(true)
loop:
	for {
		select {
		case <-ctx.Done():
			log.Info("shutting down")
			break loop
		case err = <-errc:
			break loop
		case <-hup:
			log.Info("SIGHUP: reloading the configuration", "config", *path)
			in.reload() // logs what it applied and what not
		}
	}
	in.ready.Store(false)
	if cerr := gw.Close(); cerr != nil && err == nil {
		err = cerr
	}
	wg.Wait()
	return err
}
