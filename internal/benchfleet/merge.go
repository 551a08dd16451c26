package benchfleet

import (
	"fmt"
	"math"
)

// histogramOf rebuilds a histogram from buckets (of one or more reports);
// maxNanos is the largest recorded value.
func histogramOf(maxNanos uint64, lists ...[]Bucket) *Histogram {
	h := new(Histogram)
	var minSeen uint64 = math.MaxUint64
	for _, l := range lists {
		for _, b := range l {
			h.counts[bucketOf(b.UpperNanos)].Add(b.Count)
			h.n.Add(b.Count)
			h.sum.Add(b.UpperNanos * b.Count) // an upper bound: buckets lose the exact values
			if lo, _ := bucketBounds(bucketOf(b.UpperNanos)); lo < minSeen {
				minSeen = lo
			}
		}
	}
	if h.n.Load() > 0 {
		h.max.Store(maxNanos)
		h.min.Store(minSeen + 1)
	}
	return h
}

// Merge combines the reports of one scenario run as several processes
// (gannet bench -procs), each with its share of the sensors, into one: counts
// add up, the connect phase runs from the earliest start to the last
// CONNACK, rates add up, and percentiles come from the merged histograms (so
// they keep the histogram's 6.25 % resolution; the mean is an upper bound).
// The gateway section is left to the caller, which measured it.
func Merge(reps []*Report) (*Report, error) {
	if len(reps) == 0 {
		return nil, fmt.Errorf("merge bench reports: none")
	}
	out := *reps[0]
	out.Connect, out.Gateway, out.Notes, out.FirstErrors = nil, nil, nil, nil
	out.Sensors, out.Sent, out.Acknowledged, out.Expected, out.Delivered = 0, 0, 0, 0, 0
	out.Duplicated, out.Lost, out.Foreign, out.Errors = 0, 0, 0, 0
	out.SentPerSec, out.DeliveredPerSec, out.SendSeconds = 0, 0, 0
	out.LoadBefore, out.LoadAfter = reps[0].LoadBefore, reps[len(reps)-1].LoadAfter
	var lists, connLists [][]Bucket
	var maxLat, maxConn float64
	var conn *ConnectReport
	slots := map[int]Slot{}
	for _, r := range reps {
		if r.Scenario != out.Scenario {
			return nil, fmt.Errorf("merge bench reports: scenario %q with %q", r.Scenario, out.Scenario)
		}
		out.Sensors += r.Sensors
		out.Sent += r.Sent
		out.Acknowledged += r.Acknowledged
		out.Expected += r.Expected
		out.Delivered += r.Delivered
		out.Duplicated += r.Duplicated
		out.Lost += r.Lost
		out.Foreign += r.Foreign
		out.Errors += r.Errors
		out.SentPerSec += r.SentPerSec
		out.DeliveredPerSec += r.DeliveredPerSec
		out.SendSeconds = math.Max(out.SendSeconds, r.SendSeconds)
		for _, e := range r.FirstErrors {
			if len(out.FirstErrors) < 5 {
				out.FirstErrors = append(out.FirstErrors, e)
			}
		}
		lists = append(lists, r.Histogram)
		maxLat = math.Max(maxLat, r.Latency.MaxMs)
		for i, s := range r.Timeline {
			m := slots[i]
			m.StartSeconds = s.StartSeconds
			m.SentPerSec += s.SentPerSec
			m.DeliveredPerSec += s.DeliveredPerSec
			slots[i] = m
		}
		if c := r.Connect; c != nil {
			if conn == nil {
				conn = &ConnectReport{StartUnixNano: c.StartUnixNano}
			}
			conn.Connected += c.Connected
			conn.Failed += c.Failed
			conn.Retransmitted += c.Retransmitted
			conn.StartUnixNano = min(conn.StartUnixNano, c.StartUnixNano)
			conn.EndUnixNano = max(conn.EndUnixNano, c.EndUnixNano)
			connLists = append(connLists, c.Histogram)
			maxConn = math.Max(maxConn, c.Latency.MaxMs)
		}
	}
	h := histogramOf(uint64(maxLat*1e6), lists...)
	out.Latency, out.Histogram = h.Summary(), h.Buckets()
	out.Timeline = nil
	for i := range len(slots) {
		out.Timeline = append(out.Timeline, slots[i])
	}
	if conn != nil {
		ch := histogramOf(uint64(maxConn*1e6), connLists...)
		conn.Latency, conn.Histogram = ch.Summary(), ch.Buckets()
		if conn.EndUnixNano > conn.StartUnixNano {
			conn.Seconds = float64(conn.EndUnixNano-conn.StartUnixNano) / 1e9
			conn.PerSec = float64(conn.Connected) / conn.Seconds
		}
		out.Connect = conn
		if out.Scenario == ScenarioConnectStorm || out.Scenario == ScenarioIdle {
			out.Latency = conn.Latency
		}
	}
	out.Notes = append(out.Notes, fmt.Sprintf("merged from %d processes", len(reps)))
	for _, n := range reps[0].Notes {
		out.Notes = append(out.Notes, n)
	}
	return &out, nil
}
