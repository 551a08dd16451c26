package main

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"io/fs"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/gannet-mqtt/gannet/gateway"
	"github.com/gannet-mqtt/gannet/mqttcore"
	"github.com/gannet-mqtt/gannet/mqttcore/boltstore"
	"github.com/gannet-mqtt/gannet/mqttcore/listener"
	"github.com/gannet-mqtt/gannet/mqttcore/transparent"
	"github.com/gannet-mqtt/gannet/radio"
)

// The status page is static HTML, CSS and JavaScript embedded in the
// binary (no build step, no CDN); the script reads the JSON API below and
// puts every string it shows into the page with textContent, never as
// HTML, because client ids, topics and addresses are chosen by whoever
// sends a datagram. The Content-Security-Policy allows scripts from the
// page's own origin only, so even a mistake there would not run an
// injected script.

//go:embed status
var statusFiles embed.FS

// instance is what the HTTP handlers see of a running gannet: the parts
// serve started. Fields are set before the HTTP listener starts and not
// changed after, except ready.
type instance struct {
	version string
	started time.Time
	log     *slog.Logger
	broker  *mqttcore.Broker
	store   *boltstore.Store // nil for [store] type = "memory"
	gw      *gateway.Gateway
	links   []gateway.Link
	mqtt    *listener.Server // nil when [mqtt] is disabled
	bridges *bridgeSet       // nil in tests that have none
	// transparent is [transparent]'s upstream, nil when it is off.
	transparent *transparent.Upstream
	limiters    []namedLimiter
	// ready is set once every listener is serving and cleared at shutdown.
	ready atomic.Bool
	// reload, when set, rereads the configuration (POST /-/reload).
	reload func() reloadReport
	// reloadMu makes reloads one at a time.
	reloadMu sync.Mutex
}

// namedLimiter is a [rate_limit] limiter and its table's name.
type namedLimiter struct {
	name    string
	limiter *swapLimiter
}

// handler returns the HTTP handler of the [http] listener.
func (in *instance) handler() http.Handler {
	mux := http.NewServeMux()
	static, _ := fs.Sub(statusFiles, "status") // the directory is embedded
	files := http.FileServerFS(static)
	mux.Handle("GET /{$}", securePage(files))
	mux.Handle("GET /static/", securePage(http.StripPrefix("/static", files)))
	mux.Handle("GET /metrics", promhttp.HandlerFor(newRegistry(in), promhttp.HandlerOpts{
		ErrorLog: slog.NewLogLogger(in.log.Handler(), slog.LevelError),
	}))
	mux.HandleFunc("GET /healthz", in.healthz)
	mux.HandleFunc("GET /readyz", in.readyz)
	mux.HandleFunc("GET /api/status", in.apiStatus)
	mux.HandleFunc("GET /api/sensors", in.apiSensors)
	mux.HandleFunc("GET /api/sensor", in.apiSensor)
	mux.HandleFunc("POST /-/reload", in.apiReload)
	mux.HandleFunc("GET "+backupPath, in.apiBackup) // backup.go
	return mux
}

// securePage sets the headers that keep the page's own origin the only
// source of script and forbid framing and content sniffing.
func securePage(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'")
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("X-Frame-Options", "DENY")
		hd.Set("Referrer-Policy", "no-referrer")
		hd.Set("Cache-Control", "no-cache")
		h.ServeHTTP(w, r)
	})
}

// writeJSON writes v. encoding/json escapes <, > and & in strings, so
// attacker-chosen strings cannot close a tag even if the JSON were taken
// for HTML.
func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v) // the client went away: nothing to do
}

func jsonError(w http.ResponseWriter, code int, err error) {
	writeJSON(w, code, map[string]string{"error": err.Error()})
}

// inspectTimeout bounds the wait for the gateway's loops in an API call.
const inspectTimeout = 5 * time.Second

// healthz answers 200 while the gateway's event loops answer (a loop stuck
// in a handler would stop every sensor it owns) and 503 otherwise.
func (in *instance) healthz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := in.gw.Ping(ctx); err != nil {
		http.Error(w, "unhealthy: "+err.Error(), http.StatusServiceUnavailable)
		return
	}
	_, _ = w.Write([]byte("ok\n"))
}

// readyz answers 200 once every configured listener serves, until
// shutdown begins.
func (in *instance) readyz(w http.ResponseWriter, _ *http.Request) {
	if !in.ready.Load() {
		http.Error(w, "not ready", http.StatusServiceUnavailable)
		return
	}
	_, _ = w.Write([]byte("ready\n"))
}

// statusReport is /api/status: the box at a glance.
type statusReport struct {
	Hostname      string                `json:"hostname"`
	Version       string                `json:"version"`
	Started       time.Time             `json:"started"`
	UptimeSeconds float64               `json:"uptime_seconds"`
	Ready         bool                  `json:"ready"`
	Listeners     []listenerReport      `json:"listeners"`
	Bridges       []bridgeReport        `json:"bridges"`
	Counts        *gateway.SensorCounts `json:"counts,omitempty"`
	Gateway       gateway.Stats         `json:"gateway"`
	Broker        mqttcore.Stats        `json:"broker"`
}

type listenerReport struct {
	Protocol string `json:"protocol"` // mqtt-sn or mqtt
	Network  string `json:"network"`
	Address  string `json:"address"`
}

type bridgeReport struct {
	Name             string  `json:"name"`
	Connected        bool    `json:"connected"`
	Queued           int     `json:"queued"`
	OldestAgeSeconds float64 `json:"oldest_age_seconds"`
}

func (in *instance) apiStatus(w http.ResponseWriter, r *http.Request) {
	rep := statusReport{
		Hostname: hostname(), Version: in.version, Started: in.started,
		UptimeSeconds: time.Since(in.started).Seconds(), Ready: in.ready.Load(),
		Listeners: []listenerReport{}, Bridges: []bridgeReport{},
		Gateway: in.gw.Stats(), Broker: in.broker.Stats(),
	}
	for _, l := range in.links {
		network := "udp"
		switch l.(type) {
		case *radio.DTLSLink:
			network = "dtls"
		case *radio.MulticastLink:
			network = "multicast"
		}
		rep.Listeners = append(rep.Listeners, listenerReport{"mqtt-sn", network, l.LocalAddr().String()})
	}
	if in.mqtt != nil {
		for _, name := range []string{"tcp", "tls", "websocket"} {
			if a := in.mqtt.Addr(name); a != nil {
				rep.Listeners = append(rep.Listeners, listenerReport{"mqtt", name, a.String()})
			}
		}
	}
	for _, b := range in.bridges.bridges() {
		s := b.Stats()
		rep.Bridges = append(rep.Bridges, bridgeReport{b.Name(), s.Connected, s.Depth, s.OldestAge.Seconds()})
	}
	// The gauges kept as clients change: the page refreshes itself, and
	// must not walk 100,000 sensors each time (Counts would).
	g := rep.Gateway
	rep.Counts = &gateway.SensorCounts{
		Active: int(g.Active), Asleep: int(g.Asleep), Awake: int(g.Awake), Registrations: int(g.Registrations),
		Forwarded: int(g.Forwarded), Forwarders: int(g.Forwarders),
	}
	writeJSON(w, http.StatusOK, rep)
}

// apiSensors is /api/sensors?q=&state=&offset=&limit=: a page of sensors.
func (in *instance) apiSensors(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var sq gateway.SensorQuery
	sq.Search, sq.State = q.Get("q"), q.Get("state")
	for key, dst := range map[string]*int{"offset": &sq.Offset, "limit": &sq.Limit} {
		if v := q.Get(key); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				jsonError(w, http.StatusBadRequest, errors.New(key+" must be a whole number"))
				return
			}
			*dst = n
		}
	}
	ctx, cancel := context.WithTimeout(r.Context(), inspectTimeout)
	defer cancel()
	page, err := in.gw.Sensors(ctx, sq)
	if err != nil {
		jsonError(w, http.StatusBadRequest, err)
		return
	}
	writeJSON(w, http.StatusOK, page)
}

// apiSensor is /api/sensor?id=CLIENT_ID: one sensor in detail.
func (in *instance) apiSensor(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), inspectTimeout)
	defer cancel()
	d, ok, err := in.gw.Sensor(ctx, r.URL.Query().Get("id"))
	switch {
	case err != nil:
		jsonError(w, http.StatusServiceUnavailable, err)
	case !ok:
		jsonError(w, http.StatusNotFound, errors.New("no sensor with this client id"))
	default:
		writeJSON(w, http.StatusOK, d)
	}
}

// apiReload is POST /-/reload: reread the configuration, as SIGHUP does,
// and answer with what was applied.
func (in *instance) apiReload(w http.ResponseWriter, _ *http.Request) {
	if in.reload == nil {
		jsonError(w, http.StatusNotImplemented, errors.New("reload is not available"))
		return
	}
	rep := in.reload()
	code := http.StatusOK
	if rep.Error != "" {
		code = http.StatusUnprocessableEntity
	}
	writeJSON(w, code, rep)
}
