package benchfleet

import (
	"bufio"
	"encoding/xml"
	"fmt"
	"io"
	"math"
	"strings"
)

// Plot geometry: two panels stacked in one SVG.
const (
	svgWidth   = 800
	panelH     = 300
	marginL    = 80
	marginR    = 30
	marginT    = 40
	marginB    = 50
	plotW      = svgWidth - marginL - marginR
	plotH      = panelH - marginT - marginB
	svgHeight  = 2 * panelH
	colorSent  = "#1f77b4"
	colorDeliv = "#d62728"
	colorHist  = "#9ecae1"
)

// WriteSVG draws r as an SVG image: on top the latency distribution (a
// histogram of the buckets and the cumulative distribution, on a
// logarithmic time axis), below the sent and delivered rates over time.
func (r *Report) WriteSVG(w io.Writer) error {
	bw := bufio.NewWriter(w)
	fmt.Fprintf(bw, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n",
		svgWidth, svgHeight, svgWidth, svgHeight)
	fmt.Fprintf(bw, `<rect width="%d" height="%d" fill="white"/>`+"\n", svgWidth, svgHeight)
	title := fmt.Sprintf("gannet bench %s: %d sensors, QoS %d, p50 %.3f ms, p99 %.3f ms, max %.3f ms",
		r.Scenario, r.Sensors, r.QoS, r.Latency.P50Ms, r.Latency.P99Ms, r.Latency.MaxMs)
	text(bw, svgWidth/2, 20, "middle", title)
	latencyPanel(bw, r.Histogram, 0)
	throughputPanel(bw, r.Timeline, panelH)
	fmt.Fprintln(bw, "</svg>")
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("write svg plot: %w", err)
	}
	return nil
}

// text writes an escaped text element.
func text(w io.Writer, x, y float64, anchor, s string) {
	var b strings.Builder
	_ = xml.EscapeText(&b, []byte(s)) // writing to a strings.Builder cannot fail
	fmt.Fprintf(w, `<text x="%.1f" y="%.1f" text-anchor="%s">%s</text>`+"\n", x, y, anchor, b.String())
}

// axes draws a panel's frame and its axis titles.
func axes(w io.Writer, top float64, xTitle, yTitle string) {
	fmt.Fprintf(w, `<rect x="%d" y="%.1f" width="%d" height="%d" fill="none" stroke="black"/>`+"\n", marginL, top+marginT, plotW, plotH)
	text(w, marginL+plotW/2, top+panelH-10, "middle", xTitle)
	fmt.Fprintf(w, `<text x="15" y="%.1f" text-anchor="middle" transform="rotate(-90 15 %.1f)">%s</text>`+"\n",
		top+marginT+plotH/2, top+marginT+plotH/2, yTitle)
}

// latencyPanel draws the latency histogram (bars, left axis: share of
// messages per bucket) and its CDF (line, 0 to 100 %) on a log10 time axis.
func latencyPanel(w io.Writer, hist []Bucket, top float64) {
	axes(w, top, "latency (ms, log scale)", "% (see the key above)")
	if len(hist) == 0 {
		text(w, marginL+plotW/2, top+marginT+plotH/2, "middle", "no latencies recorded")
		return
	}
	var total uint64
	var peak uint64
	for _, b := range hist {
		total += b.Count
		peak = max(peak, b.Count)
	}
	ms := func(ns uint64) float64 { return math.Max(float64(ns)/1e6, 1e-3) }
	lo := math.Floor(math.Log10(ms(hist[0].UpperNanos)))
	hi := math.Ceil(math.Log10(ms(hist[len(hist)-1].UpperNanos)))
	if hi <= lo {
		hi = lo + 1
	}
	x := func(v float64) float64 { return marginL + (math.Log10(v)-lo)/(hi-lo)*plotW }
	y := func(frac float64) float64 { return top + marginT + plotH - frac*plotH }
	for d := lo; d <= hi; d++ {
		v := math.Pow(10, d)
		fmt.Fprintf(w, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#ddd"/>`+"\n", x(v), y(0), x(v), y(1))
		text(w, x(v), y(0)+15, "middle", fmt.Sprintf("%g", v))
	}
	for _, f := range []float64{0, 0.5, 1} {
		text(w, marginL-5, y(f)+4, "end", fmt.Sprintf("%.0f", 100*f))
	}
	prev := math.Pow(10, lo)
	for _, b := range hist {
		v := ms(b.UpperNanos)
		x0, x1 := x(prev), x(v)
		if x1-x0 < 1 {
			x0 = x1 - 1
		}
		h := float64(b.Count) / float64(peak)
		fmt.Fprintf(w, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"/>`+"\n", x0, y(h), x1-x0, h*plotH, colorHist)
		prev = v
	}
	var pts strings.Builder
	var cum uint64
	fmt.Fprintf(&pts, "%.1f,%.1f", x(math.Pow(10, lo)), y(0))
	for _, b := range hist {
		cum += b.Count
		fmt.Fprintf(&pts, " %.1f,%.1f", x(ms(b.UpperNanos)), y(float64(cum)/float64(total)))
	}
	fmt.Fprintf(w, `<polyline points="%s" fill="none" stroke="%s" stroke-width="2"/>`+"\n", pts.String(), colorDeliv)
	// The key sits above the plot, where no data is drawn.
	text(w, marginL+plotW, top+marginT-6, "end", fmt.Sprintf("bars: %% of the busiest bucket (%d msgs); line: cumulative %% of all messages", peak))
}

// throughputPanel draws sent and delivered messages per second over time.
func throughputPanel(w io.Writer, tl []Slot, top float64) {
	axes(w, top, "time since sending started (s)", "messages per second")
	if len(tl) == 0 {
		text(w, marginL+plotW/2, top+marginT+plotH/2, "middle", "no messages")
		return
	}
	peak := 1.0
	for _, s := range tl {
		peak = math.Max(peak, math.Max(s.SentPerSec, s.DeliveredPerSec))
	}
	width := 1.0
	if len(tl) > 1 {
		width = tl[1].StartSeconds - tl[0].StartSeconds
	}
	span := tl[len(tl)-1].StartSeconds + width
	x := func(t float64) float64 { return marginL + t/span*plotW }
	y := func(v float64) float64 { return top + marginT + plotH - v/peak*plotH }
	for _, f := range []float64{0, 0.5, 1} {
		text(w, marginL-5, y(f*peak)+4, "end", fmt.Sprintf("%.0f", f*peak))
	}
	for _, f := range []float64{0, 0.25, 0.5, 0.75, 1} {
		text(w, x(f*span), y(0)+15, "middle", fmt.Sprintf("%.1f", f*span))
	}
	line := func(get func(Slot) float64, color, label string, lx float64) {
		var pts strings.Builder
		for i, s := range tl {
			if i > 0 {
				pts.WriteByte(' ')
			}
			fmt.Fprintf(&pts, "%.1f,%.1f", x(s.StartSeconds+width/2), y(get(s)))
		}
		fmt.Fprintf(w, `<polyline points="%s" fill="none" stroke="%s" stroke-width="2"/>`+"\n", pts.String(), color)
		// The key sits above the plot, where no data is drawn.
		fmt.Fprintf(w, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s" stroke-width="2"/>`+"\n",
			lx, top+marginT-10, lx+20, top+marginT-10, color)
		text(w, lx+25, top+marginT-6, "start", label)
	}
	line(func(s Slot) float64 { return s.SentPerSec }, colorSent, "sent/s", float64(marginL+plotW-190))
	line(func(s Slot) float64 { return s.DeliveredPerSec }, colorDeliv, "delivered/s", float64(marginL+plotW-110))
}
