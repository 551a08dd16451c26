package main

import (
	"fmt"
	"log/slog"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"github.com/gannet-mqtt/gannet/gateway"
	"github.com/gannet-mqtt/gannet/mqttcore"
	"github.com/gannet-mqtt/gannet/mqttcore/auth"
	"github.com/gannet-mqtt/gannet/mqttcore/listener"
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
//     http.password_file; [gateway] and [broker] (gateway.SetConfig,
//     mqttcore.Broker.SetConfig: every key but those below), including
//     [[gateway.predefined]]; [mqtt]'s limits (listener.Server.SetConfig:
//     for connections accepted from then on); [[bridge]] (bridgeSet.reload:
//     sections added, removed, reconfigured in place or restarted on their
//     queue);
//   - needs a restart, each key named: gateway.loops, .loop_queue,
//     .max_pending_auth, .qos_minus_one.client_id, .advertise.*;
//     broker.sys_interval, .sys_disabled; and everything that changed in
//     [[listen]], [store], [transparent], mqtt.disabled, mqtt.address,
//     [mqtt.tls], [mqtt.websocket], [mqtt.auth]'s keys (its files'
//     contents are reread), [http] (but password_file), and log.format.
//     Those size, bind or start what serve built once, and rebuilding
//     them would drop the sessions or connections they hold.

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
	gw       *gateway.Gateway
	mqtt     *listener.Server // nil when [mqtt] is disabled
	broker   *mqttcore.Broker
	bridges  *bridgeSet
	http     *httpServer // nil when disabled
}

// restartReasons says why a key of [gateway] or [broker] cannot change
// while gannet runs.
var restartReasons = map[string]string{
	"gateway.loops":                   "it sets the number of event loops",
	"gateway.loop_queue":              "it sizes each event loop's queue",
	"gateway.max_pending_auth":        "it sizes the queue of password checks",
	"gateway.qos_minus_one.client_id": "it names the core client made at start",
	"gateway.advertise.interval":      "each listener's ADVERTISE sender is set up at start",
	"gateway.advertise.address":       "each listener's ADVERTISE sender is set up at start",
	"broker.sys_interval":             "the $SYS timers of the core, gateway and transparent mode are set at start",
	"broker.sys_disabled":             "the $SYS timers of the core, gateway and transparent mode are set at start",
}

// keyValue returns the value of cfg's field with the toml key path key
// ("qos_minus_one.enabled"), for the report.
func keyValue(cfg any, key string) string {
	v := reflect.ValueOf(cfg)
	for _, part := range strings.Split(key, ".") {
		t := v.Type()
		found := false
		for i := range t.NumField() {
			if t.Field(i).Tag.Get("toml") == part {
				v, found = v.Field(i), true
				break
			}
		}
		if !found {
			return "?"
		}
	}
	switch x := v.Interface().(type) {
	case []gateway.PredefinedTopic:
		return fmt.Sprintf("(%d topic ids)", len(x))
	case string:
		return strconv.Quote(x)
	}
	return fmt.Sprint(v.Interface())
}

// reloadMQTT applies [mqtt]'s limits to the running MQTT listener
// (listener.Server.SetConfig) and reports the rest as needing a restart;
// next.MQTT is left as it runs.
func (lc *liveConfig) reloadMQTT(rep *reloadReport, old, next *fileConfig, restart func(what, why string), restartKeys func(prefix string, a, b any, why string)) {
	oldMQTT, nextMQTT := old.MQTT, next.MQTT
	oldMQTT.Auth, nextMQTT.Auth = auth.Config{}, auth.Config{} // handled above
	const bound = "the MQTT listener is bound at start"
	if lc.mqtt == nil || old.MQTT.Disabled != next.MQTT.Disabled {
		restartKeys("mqtt", oldMQTT, nextMQTT, bound)
		auth := next.MQTT.Auth
		next.MQTT = old.MQTT
		next.MQTT.Auth = auth
		return
	}
	changed := diffKeys("mqtt", reflect.ValueOf(oldMQTT), reflect.ValueOf(nextMQTT))
	// Unset in [mqtt], max_packet_size follows broker.max_packet_size.
	pktFromBroker := next.MQTT.MaxPacketSize == 0 && !slices.Contains(changed, "mqtt.max_packet_size") &&
		lc.broker.Config().MaxPacketSize != lc.mqtt.Config().MaxPacketSize
	if len(changed) == 0 && !pktFromBroker {
		return
	}
	lcfg := next.MQTT.Config
	if lcfg.MaxPacketSize == 0 {
		lcfg.MaxPacketSize = lc.broker.Config().MaxPacketSize // as serve_mqtt.go does
	}
	kept, err := lc.mqtt.SetConfig(lcfg)
	if err != nil {
		rep.NotApplied = append(rep.NotApplied, "[mqtt]: "+err.Error()+" (the previous limits stay)")
		auth := next.MQTT.Auth
		next.MQTT = old.MQTT
		next.MQTT.Auth = auth
		return
	}
	for _, k := range changed {
		rel := strings.TrimPrefix(k, "mqtt.")
		top, _, _ := strings.Cut(rel, ".")
		if slices.Contains(kept, top) {
			restart(k, bound)
			continue
		}
		rep.Applied = append(rep.Applied, k+" = "+keyValue(next.MQTT.Config, rel))
	}
	if pktFromBroker {
		rep.Applied = append(rep.Applied, fmt.Sprintf("mqtt.max_packet_size = %d (from broker.max_packet_size)", lcfg.MaxPacketSize))
	}
	// The kept keys as they run.
	next.MQTT.Address, next.MQTT.TLS, next.MQTT.WebSocket = old.MQTT.Address, old.MQTT.TLS, old.MQTT.WebSocket
}

// diffKeys returns the toml key paths under prefix whose values differ
// between a and b: "listen[0].address", "store.path". A list whose length
// changed, a list of plain values, a map or a value of another kind is
// named whole.
func diffKeys(prefix string, a, b reflect.Value) []string {
	if reflect.DeepEqual(a.Interface(), b.Interface()) {
		return nil
	}
	switch a.Kind() {
	case reflect.Struct:
		var out []string
		t := a.Type()
		for i := range t.NumField() {
			tag, _, _ := strings.Cut(t.Field(i).Tag.Get("toml"), ",")
			if tag == "" && t.Field(i).Anonymous && t.Field(i).Type.Kind() == reflect.Struct {
				out = append(out, diffKeys(prefix, a.Field(i), b.Field(i))...) // embedded: its keys are the table's
				continue
			}
			if tag == "" || tag == "-" || !t.Field(i).IsExported() {
				if !reflect.DeepEqual(a.Field(i).Interface(), b.Field(i).Interface()) {
					out = append(out, prefix) // not a key of its own: name the table
				}
				continue
			}
			out = append(out, diffKeys(prefix+"."+tag, a.Field(i), b.Field(i))...)
		}
		return slices.Compact(out)
	case reflect.Slice:
		if a.Len() != b.Len() || a.Type().Elem().Kind() != reflect.Struct {
			return []string{prefix}
		}
		var out []string
		for i := range a.Len() {
			out = append(out, diffKeys(fmt.Sprintf("%s[%d]", prefix, i), a.Index(i), b.Index(i))...)
		}
		return out
	}
	return []string{prefix}
}

// reportKeys adds each changed key of a section to the report: applied,
// with its new value, or needing a restart, with why.
func (rep *reloadReport) reportKeys(section string, changed, kept []string, next any) {
	for _, k := range changed {
		name := section + "." + k
		if slices.Contains(kept, k) {
			rep.NotApplied = append(rep.NotApplied, name+" changed: needs a restart ("+restartReasons[name]+")")
			continue
		}
		rep.Applied = append(rep.Applied, name+" = "+keyValue(next, k))
	}
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
	restart := func(what, why string) {
		rep.NotApplied = append(rep.NotApplied, what+" changed: needs a restart ("+why+")")
	}
	restartKeys := func(prefix string, a, b any, why string) {
		for _, k := range diffKeys(prefix, reflect.ValueOf(a), reflect.ValueOf(b)) {
			restart(k, why)
		}
	}

	// log
	if next.Log.Level != old.Log.Level {
		level, _ := next.Log.level() // checked by loadConfig
		lc.level.Set(level)
		rep.Applied = append(rep.Applied, "log.level = "+level.String())
	}
	if next.Log.Format != old.Log.Format {
		restart("log.format", "the log handler is made at start")
	}
	// [mqtt.auth]: the files are reread, since their contents may have
	// changed; the ACL binds MQTT and MQTT-SN clients alike. Other file
	// names or another anonymous policy need a restart (Authenticator
	// rereads the files it was built with).
	if next.MQTT.Auth != old.MQTT.Auth {
		restartKeys("mqtt.auth", old.MQTT.Auth, next.MQTT.Auth, "the authenticator is built with them at start; the files' contents are reread")
		next.MQTT.Auth = old.MQTT.Auth
	} else if old.MQTT.Auth.PasswordFile == "" && old.MQTT.Auth.ACLFile == "" {
		// no files to reread
	} else if err := lc.authn.Reload(); err != nil {
		rep.NotApplied = append(rep.NotApplied, "mqtt.auth: "+err.Error()+" (the previous rules stay)")
	} else {
		rep.Applied = append(rep.Applied, "mqtt.auth (password file, ACL) reread")
	}
	// [[listen]]: DTLS credentials are reread from the files the running
	// listeners were opened with.
	restartKeys("listen", old.Listen, next.Listen, "the listeners are bound at start; DTLS files' contents are reread")
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
	restartKeys("http", oldHTTP, nextHTTP, "the HTTP listener is set up at start")
	if lc.http != nil && (old.HTTP.PasswordFile != "" || next.HTTP.PasswordFile != "") {
		lc.http.setPasswords(httpPw)
		rep.Applied = append(rep.Applied, "http.password_file reread")
	}
	// [broker], then [gateway] (whose max_clients must stay below the
	// broker's max_sessions; check has seen the pair).
	if changed := mqttcore.ConfigChanges(old.Broker, next.Broker); len(changed) > 0 {
		kept, err := lc.broker.SetConfig(next.Broker)
		if err != nil {
			rep.NotApplied = append(rep.NotApplied, "[broker]: "+err.Error()+" (the previous limits stay)")
			next.Broker = old.Broker
		} else {
			rep.reportKeys("broker", changed, kept, next.Broker)
			next.Broker.SysInterval, next.Broker.SysDisabled = old.Broker.SysInterval, old.Broker.SysDisabled
		}
	}
	if changed := gateway.ConfigChanges(old.Gateway, next.Gateway); len(changed) > 0 {
		kept, err := lc.gw.SetConfig(next.Gateway)
		if err != nil {
			rep.NotApplied = append(rep.NotApplied, "[gateway]: "+err.Error()+" (the previous settings stay)")
			next.Gateway = old.Gateway
		} else {
			rep.reportKeys("gateway", changed, kept, next.Gateway)
			// The kept keys as they run, so the next reload compares with them.
			next.Gateway.Loops, next.Gateway.LoopQueue, next.Gateway.MaxPendingAuth = old.Gateway.Loops, old.Gateway.LoopQueue, old.Gateway.MaxPendingAuth
			next.Gateway.QoSMinus1.ClientID, next.Gateway.Advertise = old.Gateway.QoSMinus1.ClientID, old.Gateway.Advertise
		}
	}
	// [mqtt], after [broker]: without its own max_packet_size the
	// listener takes the broker's.
	lc.reloadMQTT(&rep, old, next, restart, restartKeys)
	// [[bridge]]
	if !reflect.DeepEqual(old.Bridges, next.Bridges) {
		applied, notApplied, inForce := lc.bridges.reload(old.Bridges, next.Bridges)
		rep.Applied = append(rep.Applied, applied...)
		rep.NotApplied = append(rep.NotApplied, notApplied...)
		next.Bridges = inForce
	}
	restartKeys("store", old.Store, next.Store, "the store is opened at start")
	restartKeys("transparent", old.Transparent, next.Transparent, "transparent mode is set up at start")
	// What was not applied stays as it runs: keep the old values, so the
	// next reload compares with what is in force.
	applied := *old
	applied.Log.Level = next.Log.Level
	applied.MQTT = next.MQTT // reloadMQTT left the keys it could not apply as they run
	applied.RateLimit = next.RateLimit
	applied.Gateway = next.Gateway
	applied.Broker = next.Broker
	applied.Bridges = next.Bridges
	applied.HTTP.PasswordFile = next.HTTP.PasswordFile
	lc.cfg = &applied

	lc.log.Info("configuration reloaded", "config", lc.path,
		"applied", strings.Join(rep.Applied, "; "), "not_applied", strings.Join(rep.NotApplied, "; "))
	for _, n := range rep.NotApplied {
		lc.log.Warn("reload: not applied", "what", n)
	}
	return rep
}
