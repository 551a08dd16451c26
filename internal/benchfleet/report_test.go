package benchfleet

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"io"
	"regexp"
	"strings"
	"testing"
	"time"
)

// sampleReport returns a report with every section filled.
func sampleReport() *Report {
	var h Histogram
	for i := range 1000 {
		h.Record(time.Duration(100+i) * time.Microsecond)
	}
	tl := NewTimeline(time.Unix(0, 0), 2*time.Second, 100*time.Millisecond)
	for i := range 20 {
		tl.Sent(time.Unix(0, int64(i)*int64(100*time.Millisecond)))
		tl.Delivered(time.Unix(0, int64(i)*int64(100*time.Millisecond)))
	}
	return &Report{
		Scenario: ScenarioPublish, Sensors: 10, QoS: 1, PayloadSize: 64, TopicMode: TopicRegister,
		LoadBefore: "0.10 0.20 0.30", LoadAfter: "1.00 0.50 0.40",
		Connect: &ConnectReport{Connected: 10, Seconds: 0.5, PerSec: 20},
		Sent:    1000, Acknowledged: 1000, Expected: 1000, Delivered: 998, Lost: 2, Duplicated: 1,
		SendSeconds: 2, SentPerSec: 500, DeliveredPerSec: 499, BenchCPUPercent: 80,
		Latency:   h.Summary(),
		Histogram: h.Buckets(),
		Timeline:  tl.Slots(),
		Gateway:   &GatewayReport{PID: 42, RSSBefore: 10 << 20, RSSAfter: 11 << 20, RSSPerSession: 104857.6, CPUSeconds: 1, CPUPercent: 50, CPUMeasured: true},
		Notes:     []string{"a note"},
	}
}

func TestWriteTextNamesEveryNumber(t *testing.T) {
	var b bytes.Buffer
	if err := sampleReport().WriteText(&b); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"scenario publish: 10 sensors, QoS 1", "load average: 0.10 0.20 0.30 before",
		"10 connected, 0 failed", "sent        1000", "acknowledged 1000",
		"delivered   998 of 1000 expected", "lost        2", "duplicated  1",
		"p50 0.", "p99 1.", "gateway     pid 42", "104858 bytes per session", "50 % of one core", "note: a note", "bench CPU   80 %",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("WriteText output lacks %q:\n%s", want, b.String())
		}
	}
}

// TestWriteTextOnlyMeasured: a gateway pid whose /proc could not be read
// (RSS zero, CPU not measured) is reported as not measured, never as
// "RSS 0.0 MiB -> 0.0 MiB".
func TestWriteTextOnlyMeasured(t *testing.T) {
	r := sampleReport()
	r.Gateway = &GatewayReport{PID: 42}
	var b bytes.Buffer
	if err := r.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	if got := b.String(); !strings.Contains(got, "pid 42: RSS not measured, CPU not measured") || strings.Contains(got, "MiB") {
		t.Errorf("WriteText with nothing measured:\n%s\nwant \"RSS not measured, CPU not measured\" and no MiB", got)
	}
}

func TestWriteJSONRoundTrip(t *testing.T) {
	r := sampleReport()
	var b bytes.Buffer
	if err := r.WriteJSON(&b); err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(b.Bytes(), &back); err != nil {
		t.Fatalf("json.Unmarshal(WriteJSON output) = %v", err)
	}
	if back.Delivered != r.Delivered || back.Latency != r.Latency || back.Gateway.RSSPerSession != r.Gateway.RSSPerSession ||
		len(back.Histogram) != len(r.Histogram) || len(back.Timeline) != len(r.Timeline) {
		t.Errorf("JSON round trip changed the report:\n got %+v\nwant %+v", back, *r)
	}
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestWritersReportErrors(t *testing.T) {
	r := sampleReport()
	for name, f := range map[string]func(io.Writer) error{"text": r.WriteText, "json": r.WriteJSON, "svg": r.WriteSVG} {
		if err := f(failWriter{}); err == nil {
			t.Errorf("%s writer to a failing writer = nil error; want one", name)
		}
	}
}

// svgElements parses an SVG document and counts its elements by name.
func svgElements(t *testing.T, doc []byte) map[string]int {
	t.Helper()
	d := xml.NewDecoder(bytes.NewReader(doc))
	counts := map[string]int{}
	for {
		tok, err := d.Token()
		if err == io.EOF {
			return counts
		}
		if err != nil {
			t.Fatalf("SVG is not well-formed XML: %v\n%s", err, doc)
		}
		if se, ok := tok.(xml.StartElement); ok {
			counts[se.Name.Local]++
		}
	}
}

func TestWriteSVG(t *testing.T) {
	cases := []struct {
		name         string
		r            *Report
		minPolylines int
	}{
		{"full", sampleReport(), 3}, // CDF, sent/s, delivered/s
		{"empty", &Report{Scenario: "connect-storm & <idle>"}, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var b bytes.Buffer
			if err := tc.r.WriteSVG(&b); err != nil {
				t.Fatal(err)
			}
			el := svgElements(t, b.Bytes())
			if el["svg"] != 1 || el["polyline"] < tc.minPolylines {
				t.Errorf("SVG has %d svg and %d polyline elements; want 1 and at least %d", el["svg"], el["polyline"], tc.minPolylines)
			}
			if tc.minPolylines > 0 && el["rect"] < len(tc.r.Histogram) {
				t.Errorf("SVG has %d rects; want one per histogram bucket (%d) at least", el["rect"], len(tc.r.Histogram))
			}
		})
	}
}

// TestSVGAxisTitlesFit: a rotated axis title longer than its panel was
// cut off at the top of the image. At 12 px sans-serif a character is
// under 7 px wide.
func TestSVGAxisTitlesFit(t *testing.T) {
	var b bytes.Buffer
	if err := sampleReport().WriteSVG(&b); err != nil {
		t.Fatal(err)
	}
	titles := regexp.MustCompile(`transform="rotate\(-90[^"]*">([^<]*)</text>`).FindAllStringSubmatch(b.String(), -1)
	if len(titles) != 2 {
		t.Fatalf("found %d rotated axis titles; want 2", len(titles))
	}
	for _, m := range titles {
		if w := 7 * len(m[1]); w > plotH {
			t.Errorf("axis title %q is about %d px long; the panel is %d px high", m[1], w, plotH)
		}
	}
}
