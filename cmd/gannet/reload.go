package main

import (
	"fmt"
	"log/slog"
	"reflect"
	"strings"

	"github.com/gannet-mqtt/gannet/gateway"
	"github.com/gannet-mqtt/gannet/mqttcore/auth"
)

// A reload (SIGHUP, or POST /-/reload which "gannet reload" sends) rereads
// the configuration file. A file that does not load, or fails a check
// serve would make at start-up, is rejected whole and the running
// configuration stays. Otherwise what can change in a running process
// changes, every session is kept, and the rest is reported as needing a
// restart:
//
//   - applied live: log.level; the contents of [mqtt.auth]'s password file
//     and ACL (which binds MQTT and MQTT-SN clients); the DTLS listeners' PSK file,
//     certificate, key and CA file (their contents: reread); [rate_limit];
//     http.password_file;
//   - needs a restart: everything else that changed ([[listen]] addresses,
//     [gateway], [broker], [[bridge]], the rest of [mqtt] and [http],
//     log.format). Those parts would have to be rebuilt, dropping the
//     sessions or connections they hold.

// reloadReport says what a reload did.
type reloadReport struct {
	// Error is why the new configuration was rejected; nothing changed.
	Error string `json:"error,omitempty"`
	// Applied lists what took effect.
	Applied []string `json:"applied"`
	// NotApplied lists what changed in the file but needs a restart, or
	// could not be applied, with why.
	NotApplied []string `json:"not_applied"`
}

// liveConfig is what a reload changes in a running serve.
type liveConfig struct {
	path     string
	cfg      *fileConfig // in force
	level    *slog.LevelVar
	log      *slog.Logger
	links    []gateway.Link
	authn    *auth.Authenticator // [mqtt.auth]: the broker's Authorizer and the listener's passwords
	limiters *limiters
	http     *httpServer // nil when disabled
}

// reload rereads the file and applies it. Not safe for concurrent use.
func (lc *liveConfig) reload() reloadReport {
	rep := reloadReport{Applied: []string{}, NotApplied: []string{}}
	fail := func(err error) reloadReport {
		rep.Error = err.Error()
		lc.log.Error("reload rejected; the running configuration stays", "config", lc.path, "err", err)
		return rep
	}
	next, err := loadConfig(lc.path)
	if err != nil {
		return fail(err)
	}
	if err := next.check(lc.path); err != nil {
		return fail(err)
	}
	// Build everything that can fail before changing anything (check
	// has parsed the [mqtt.auth] files already).
	var httpPw *auth.Passwords
	if lc.http != nil && next.HTTP.PasswordFile != "" {
		if httpPw, err = auth.LoadPasswords(next.HTTP.PasswordFile); err != nil {
			return fail(fmt.Errorf("http.password_file: %w", err))
		}
	}
	old := lc.cfg
	restart := func(what string) { rep.NotApplied = append(rep.NotApplied, what+" changed: needs a restart") }

	// log
	if next.Log.Level != old.Log.Level {
		level, _ := next.Log.level() // checked by loadConfig
		lc.level.Set(level)
		rep.Applied = append(rep.Applied, "log.level = "+level.String())
	}
	if next.Log.Format != old.Log.Format {
		restart("log.format")
	}
	// [mqtt.auth]: the files are reread, since their contents may have
	// changed; the ACL binds MQTT and MQTT-SN clients alike. Other file
	// names or another anonymous policy need a restart (Authenticator
	// rereads the files it was built with).
	if next.MQTT.Auth != old.MQTT.Auth {
		restart("[mqtt.auth] (file names or anonymous)")
		next.MQTT.Auth = old.MQTT.Auth
	} else if err := lc.authn.Reload(); err != nil {
		rep.NotApplied = append(rep.NotApplied, "mqtt.auth: "+err.Error()+" (the previous rules stay)")
	} else {
		rep.Applied = append(rep.Applied, "mqtt.auth (password file, ACL) reread")
	}
	oldMQTT, nextMQTT := old.MQTT, next.MQTT
	oldMQTT.Auth, nextMQTT.Auth = auth.Config{}, auth.Config{}
	if !reflect.DeepEqual(oldMQTT, nextMQTT) {
		if old.MQTT.Disabled != next.MQTT.Disabled {
			restart("mqtt.disabled")
		} else {
			restart("[mqtt] (other than [mqtt.auth])")
		}
	}
	// [[listen]]: DTLS credentials are reread from the files the running
	// listeners were opened with.
	if !reflect.DeepEqual(old.Listen, next.Listen) {
		restart("[[listen]]")
	}
	if err := reloadLinks(lc.links, lc.log); err != nil {
		rep.NotApplied = append(rep.NotApplied, "dtls credentials: "+err.Error()+" (the previous ones stay)")
	} else {
		for _, l := range lc.links {
			if _, ok := l.(reloader); ok {
				rep.Applied = append(rep.Applied, "dtls credentials reread on "+l.LocalAddr().String())
			}
		}
	}
	// [rate_limit]
	if !reflect.DeepEqual(old.RateLimit, next.RateLimit) {
		if err := lc.limiters.set(&next.RateLimit); err != nil {
			rep.NotApplied = append(rep.NotApplied, err.Error())
			next.RateLimit = old.RateLimit
		} else {
			rep.Applied = append(rep.Applied, "[rate_limit]")
		}
	}
	// [http]
	oldHTTP, nextHTTP := old.HTTP, next.HTTP
	oldHTTP.PasswordFile, nextHTTP.PasswordFile = "", ""
	if !reflect.DeepEqual(oldHTTP, nextHTTP) {
		restart("[http] (other than password_file)")
	}
	if lc.http != nil && (old.HTTP.PasswordFile != "" || next.HTTP.PasswordFile != "") {
		lc.http.setPasswords(httpPw)
		rep.Applied = append(rep.Applied, "http.password_file reread")
	}
	// The parts that hold sessions and connections.
	for _, part := range []struct {
		name      string
		old, next any
	}{
		{"[gateway]", old.Gateway, next.Gateway},
		{"[broker]", old.Broker, next.Broker},
		{"[[bridge]]", old.Bridges, next.Bridges},
		{"[transparent]", old.Transparent, next.Transparent},
	} {
		if !reflect.DeepEqual(part.old, part.next) {
			restart(part.name)
		}
	}
	// What was not applied stays as it runs: keep the old values, so the
	// next reload compares with what is in force.
	applied := *old
	applied.Log.Level = next.Log.Level
	applied.MQTT.Auth = next.MQTT.Auth
	applied.RateLimit = next.RateLimit
	applied.HTTP.PasswordFile = next.HTTP.PasswordFile
	lc.cfg = &applied

	lc.log.Info("configuration reloaded", "config", lc.path,
		"applied", strings.Join(rep.Applied, "; "), "not_applied", strings.Join(rep.NotApplied, "; "))
	for _, n := range rep.NotApplied {
		lc.log.Warn("reload: not applied", "what", n)
	}
	return rep
}
