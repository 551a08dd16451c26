package benchfleet

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

// Report is the result of one run. Counts that do not apply to a scenario
// are zero; Notes say what a number means where it is not obvious.
type Report struct {
	Scenario string `json:"scenario"`
	Sensors  int    `json:"sensors"`
	// Protocol is the sensors' MQTT-SN version, "1.2" or "2.0" (empty in
	// the echo and mqtt-publish scenarios, which have no MQTT-SN sensors).
	Protocol    string  `json:"protocol,omitempty"`
	QoS         int     `json:"qos"`
	PayloadSize int     `json:"payload_size"`
	TopicMode   string  `json:"topic_mode,omitempty"`
	Rate        float64 `json:"rate"` // configured rate, 0 flat out
	// Window is the echo mode's datagrams in flight per socket (0: open
	// loop).
	Window int `json:"window,omitempty"`
	// LoadBefore and LoadAfter are /proc/loadavg at the start and end: the
	// machine's noise.
	LoadBefore string `json:"load_before"`
	LoadAfter  string `json:"load_after"`

	// Connect is the connection phase, when there was one.
	Connect *ConnectReport `json:"connect,omitempty"`

	// Sent counts messages sent (publish attempts that reached the socket).
	Sent uint64 `json:"sent"`
	// Acknowledged counts QoS 1/2 publishes the gateway (publish) or broker
	// (fanout, sleepers) confirmed.
	Acknowledged uint64 `json:"acknowledged"`
	// Expected is how many deliveries a lossless run makes (Sent times the
	// receivers per message).
	Expected uint64 `json:"expected"`
	// Delivered counts unique deliveries; Duplicated repeated ones; Lost is
	// Expected minus Delivered; Foreign counts messages that were not this
	// run's.
	Delivered  uint64 `json:"delivered"`
	Duplicated uint64 `json:"duplicated"`
	Lost       uint64 `json:"lost"`
	Foreign    uint64 `json:"foreign,omitempty"`
	// Errors counts failed operations; FirstErrors keeps a few of them.
	Errors      uint64   `json:"errors"`
	FirstErrors []string `json:"first_errors,omitempty"`

	// SendSeconds is the length of the sending phase; SentPerSec is Sent
	// over it. DeliveredPerSec is Delivered over the time from the first
	// send to the last delivery.
	SendSeconds     float64 `json:"send_seconds"`
	SentPerSec      float64 `json:"sent_per_s"`
	DeliveredPerSec float64 `json:"delivered_per_s"`
	// Latency is from the stamp in the payload to its delivery.
	Latency Latency `json:"latency"`

	// BenchCPUPercent is this bench process's own CPU use during the
	// sending phase (100 % = one core): on a small machine the load
	// generator competes with the gateway for the same cores.
	BenchCPUPercent float64 `json:"bench_cpu_percent,omitempty"`

	// Gateway is what /proc says about the gateway process, when its pid
	// was given.
	Gateway *GatewayReport `json:"gateway,omitempty"`

	Notes []string `json:"notes,omitempty"`

	// Histogram and Timeline feed the plot.
	Histogram []Bucket `json:"histogram,omitempty"`
	Timeline  []Slot   `json:"timeline,omitempty"`
}

// ConnectReport describes a connection phase.
type ConnectReport struct {
	Connected int     `json:"connected"`
	Failed    int     `json:"failed"`
	Seconds   float64 `json:"seconds"` // until the last CONNACK
	PerSec    float64 `json:"per_s"`
	Latency   Latency `json:"latency"` // per CONNECT, retransmissions included
	// Retransmitted counts the sensors' retransmissions during the phase.
	Retransmitted uint64 `json:"retransmitted"`
	// StartUnixNano and EndUnixNano are when the phase began and when the
	// last CONNACK arrived, so runs in several processes can be merged.
	StartUnixNano int64 `json:"start_unix_ns"`
	EndUnixNano   int64 `json:"end_unix_ns"`
	// Histogram is the per-CONNECT latency distribution.
	Histogram []Bucket `json:"histogram,omitempty"`
}

// GatewayReport is the gateway's memory and CPU, from /proc.
type GatewayReport struct {
	PID int `json:"pid"`
	// RSSBefore is the RSS before the sensors connected; RSSAfter once the
	// sessions were established (and, for sleepers, their messages
	// queued); RSSPerSession is the difference divided by the sessions.
	RSSBefore     uint64  `json:"rss_before_bytes"`
	RSSAfter      uint64  `json:"rss_after_bytes"`
	RSSPerSession float64 `json:"rss_per_session_bytes"`
	// RSSAsleep (sleepers) is the RSS once all slept, before messages were
	// queued.
	RSSAsleep uint64 `json:"rss_asleep_bytes,omitempty"`
	// CPUSeconds is the gateway's user+system CPU time during the sending
	// phase (or the connect phase); CPUPercent is that over the phase's wall
	// time (100 % = one core).
	CPUSeconds float64 `json:"cpu_seconds"`
	CPUPercent float64 `json:"cpu_percent"`
	// CPUMeasured is false when /proc could not give the CPU time at both
	// ends of the phase; CPUSeconds and CPUPercent are then meaningless.
	// An RSS of 0 likewise means it was not measured.
	CPUMeasured bool `json:"cpu_measured"`
}

// WriteJSON writes r as indented JSON.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(r); err != nil {
		return fmt.Errorf("write json report: %w", err)
	}
	return nil
}

// WriteText writes r for a human.
func (r *Report) WriteText(w io.Writer) error {
	var b strings.Builder
	qos := fmt.Sprintf("QoS %d", r.QoS)
	rate := "flat out"
	if r.Rate > 0 {
		rate = fmt.Sprintf("%g msg/s", r.Rate)
	}
	if r.Window > 0 {
		rate = fmt.Sprintf("closed loop, %d in flight per socket", r.Window)
	}
	switch r.Scenario {
	case ScenarioConnectStorm, ScenarioIdle:
		fmt.Fprintf(&b, "scenario %s: %d sensors", r.Scenario, r.Sensors)
	case ScenarioSleepers:
		fmt.Fprintf(&b, "scenario %s: %d sensors, %s, %d-octet payload", r.Scenario, r.Sensors, qos, r.PayloadSize)
	default:
		fmt.Fprintf(&b, "scenario %s: %d sensors, %s, %d-octet payload, %s", r.Scenario, r.Sensors, qos, r.PayloadSize, rate)
	}
	if r.TopicMode != "" {
		fmt.Fprintf(&b, ", topic ids: %s", r.TopicMode)
	}
	if r.Protocol != "" {
		fmt.Fprintf(&b, ", MQTT-SN %s", r.Protocol)
	}
	fmt.Fprintf(&b, "\nload average: %s before, %s after\n", r.LoadBefore, r.LoadAfter)
	if c := r.Connect; c != nil {
		fmt.Fprintf(&b, "connect:    %d connected, %d failed in %.3f s (%.0f/s), %d retransmissions\n",
			c.Connected, c.Failed, c.Seconds, c.PerSec, c.Retransmitted)
		fmt.Fprintf(&b, "            per CONNECT p50 %.3f ms  p90 %.3f ms  p99 %.3f ms  max %.3f ms\n",
			c.Latency.P50Ms, c.Latency.P90Ms, c.Latency.P99Ms, c.Latency.MaxMs)
	}
	if r.Sent > 0 || r.Expected > 0 {
		fmt.Fprintf(&b, "sent        %d in %.3f s (%.0f msg/s)\n", r.Sent, r.SendSeconds, r.SentPerSec)
		if r.QoS >= 1 {
			fmt.Fprintf(&b, "acknowledged %d\n", r.Acknowledged)
		}
		fmt.Fprintf(&b, "delivered   %d of %d expected (%.0f msg/s)\n", r.Delivered, r.Expected, r.DeliveredPerSec)
		fmt.Fprintf(&b, "lost        %d\nduplicated  %d\n", r.Lost, r.Duplicated)
		if r.Foreign > 0 {
			fmt.Fprintf(&b, "foreign     %d\n", r.Foreign)
		}
		fmt.Fprintf(&b, "latency     p50 %.3f ms  p90 %.3f ms  p99 %.3f ms  max %.3f ms  (mean %.3f ms)\n",
			r.Latency.P50Ms, r.Latency.P90Ms, r.Latency.P99Ms, r.Latency.MaxMs, r.Latency.MeanMs)
	}
	if r.Errors > 0 {
		fmt.Fprintf(&b, "errors      %d\n", r.Errors)
		for _, e := range r.FirstErrors {
			fmt.Fprintf(&b, "  %s\n", e)
		}
	}
	if r.BenchCPUPercent > 0 {
		fmt.Fprintf(&b, "bench CPU   %.0f %% of one core while sending\n", r.BenchCPUPercent)
	}
	if g := r.Gateway; g != nil {
		// Only what was measured: a failed /proc read leaves a zero, which
		// is not a measurement.
		var parts []string
		switch {
		case g.RSSBefore > 0 && g.RSSAfter > 0:
			parts = append(parts, fmt.Sprintf("RSS %.1f MiB -> %.1f MiB (%.0f bytes per session)", mib(g.RSSBefore), mib(g.RSSAfter), g.RSSPerSession))
		case g.RSSAfter > 0:
			parts = append(parts, fmt.Sprintf("RSS %.1f MiB", mib(g.RSSAfter)))
		default:
			parts = append(parts, "RSS not measured")
		}
		if g.CPUMeasured {
			parts = append(parts, fmt.Sprintf("CPU %.2f s (%.0f %% of one core)", g.CPUSeconds, g.CPUPercent))
		} else {
			parts = append(parts, "CPU not measured")
		}
		fmt.Fprintf(&b, "gateway     pid %d: %s\n", g.PID, strings.Join(parts, ", "))
		if g.RSSAsleep > 0 {
			fmt.Fprintf(&b, "            RSS with all asleep, nothing queued: %.1f MiB\n", mib(g.RSSAsleep))
		}
	}
	for _, n := range r.Notes {
		fmt.Fprintf(&b, "note: %s\n", n)
	}
	_, err := io.WriteString(w, b.String())
	if err != nil {
		return fmt.Errorf("write text report: %w", err)
	}
	return nil
}

func mib(b uint64) float64 { return float64(b) / (1 << 20) }
