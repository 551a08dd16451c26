package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gannet-mqtt/gannet/gateway"
	"github.com/gannet-mqtt/gannet/internal/outside"
	"github.com/gannet-mqtt/gannet/internal/sntest"
	"github.com/gannet-mqtt/gannet/mqttcore"
	"github.com/gannet-mqtt/gannet/snclient"
	sn "github.com/gannet-mqtt/gannet/snpacket"
)

// xssID is a client id an attacker might choose: HTML that would run a
// script if the page put it into the document as markup.
const xssID = `<img src=x onerror=alert(1)><script>alert(2)</script>`

// rawConnect connects a client with id over a raw UDP socket (snclient
// holds ids to MQTT-SN's 23 characters; the gateway's limit is 64) and
// returns once the gateway accepted it.
func rawConnect(t *testing.T, addr, id string) {
	t.Helper()
	c, err := net.Dial("udp4", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	b, err := (&sn.Connect{CleanSession: true, Duration: 300, ClientID: []byte(id)}).AppendBinary(nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write(b); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 64)
	n, err := c.Read(buf)
	if err != nil {
		t.Fatalf("CONNECT %q: no answer: %v", id, err)
	}
	m, err := sn.Decode(buf[:n])
	if ack, ok := m.(*sn.Connack); err != nil || !ok || ack.ReturnCode != sn.Accepted {
		t.Fatalf("CONNECT %q: answer %v, %v; want CONNACK accepted", id, m, err)
	}
}

// TestStatusAPIEscapes: attacker-chosen strings leave the JSON API with <,
// > and & escaped, decode back to themselves, and the page is served with
// a policy that allows only its own scripts.
func TestStatusAPIEscapes(t *testing.T) {
	o := startOps(t, sntest.Options{})
	ctx := sntest.Context(t)
	rawConnect(t, o.link, xssID)
	o.sensor(t, ctx, "plain")

	code, body, _ := get(t, o.url+"/api/sensors?q=img")
	if code != 200 {
		t.Fatalf("GET /api/sensors = %d: %s", code, body)
	}
	if strings.Contains(body, "<") || strings.Contains(body, ">") || !strings.Contains(body, `\u003cscript\u003e`) {
		t.Errorf("GET /api/sensors body %s: want <, > escaped as \\u003c, \\u003e", body)
	}
	var page gateway.SensorPage
	if err := json.Unmarshal([]byte(body), &page); err != nil {
		t.Fatal(err)
	}
	if page.Matching != 1 || page.Sensors[0].ClientID != xssID || page.Counts.Active != 2 {
		t.Errorf("search img = %+v; want the one sensor %q of 2 active", page, xssID)
	}
	code, body, _ = get(t, o.url+"/api/sensor?id="+strings.NewReplacer("<", "%3C", ">", "%3E", " ", "%20", "=", "%3D", "(", "%28", ")", "%29", "/", "%2F").Replace(xssID))
	if code != 200 || strings.Contains(body, "<") {
		t.Errorf("GET /api/sensor?id=<xss> = %d %s; want 200, escaped", code, body)
	}
	if code, _, _ := get(t, o.url+"/api/sensor?id=nobody"); code != 404 {
		t.Errorf("GET /api/sensor?id=nobody = %d; want 404", code)
	}
	if code, _, _ := get(t, o.url+"/api/sensors?offset=-1"); code != 400 {
		t.Errorf("GET /api/sensors?offset=-1 = %d; want 400", code)
	}
	code, body, hdr := get(t, o.url+"/")
	if code != 200 || !strings.Contains(body, `<script src="/static/app.js"`) {
		t.Fatalf("GET / = %d %q", code, body)
	}
	if csp := hdr.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") {
		t.Errorf("GET / Content-Security-Policy = %q; want script-src 'self'", csp)
	}
	// The script never puts data into the page as HTML.
	_, js, _ := get(t, o.url+"/static/app.js")
	if strings.Contains(js, "innerHTML") || strings.Contains(js, "insertAdjacentHTML") || strings.Contains(js, "document.write") {
		t.Error("app.js uses innerHTML, insertAdjacentHTML or document.write")
	}
	code, body, _ = get(t, o.url+"/api/status")
	var st statusReport
	if err := json.Unmarshal([]byte(body), &st); code != 200 || err != nil || st.Version != "test" || st.Counts == nil || st.Counts.Active != 2 || len(st.Listeners) != 2 {
		t.Errorf("GET /api/status = %d %s (%v); want version test, 2 active, 2 listeners", code, body, err)
	}
}

// chromiumDOM loads url in headless Chromium, lets its scripts run, and
// returns the DOM as HTML; with shot set it also writes a screenshot
// there.
func chromiumDOM(t *testing.T, bin, url, shot string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	args := []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
		"--no-first-run", "--user-data-dir=" + t.TempDir(), "--virtual-time-budget=1500", "--window-size=1200,900"}
	if shot != "" {
		args = append(args, "--screenshot="+shot, "--hide-scrollbars")
	} else {
		args = append(args, "--dump-dom")
	}
	cmd := exec.CommandContext(ctx, bin, append(args, url)...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("chromium %s: %v\n%s", url, err, stderr.String())
	}
	return string(out)
}

// sensorRow returns the text cells of the table row of client id id in a
// dumped DOM, or nil.
func sensorRow(dom, attr string) []string {
	re := regexp.MustCompile(`(?s)<tr data-client-id="` + regexp.QuoteMeta(attr) + `">(.*?)</tr>`)
	m := re.FindStringSubmatch(dom)
	if m == nil {
		return nil
	}
	var cells []string
	for _, c := range regexp.MustCompile(`(?s)<td[^>]*>(.*?)</td>`).FindAllStringSubmatch(m[1], -1) {
		cells = append(cells, c[1])
	}
	return cells
}

// TestStatusPageInChromium loads the status page of a running gateway in
// headless Chromium: a sensor's row shows it active, then asleep once it
// sleeps; the attacker's client id shows as text, and no element it
// describes exists. GANNET_SCREENSHOT=FILE.png also writes a screenshot
// (docs/status-page.png is one).
func TestStatusPageInChromium(t *testing.T) {
	bin := outside.Program(t, "chromium", "chromium")
	o := startOps(t, sntest.Options{})
	ctx := sntest.Context(t)
	dev := o.sensor(t, ctx, "greenhouse-7")
	rawConnect(t, o.link, xssID)
	for i := range 5 {
		o.sensor(t, ctx, fmt.Sprintf("field-%02d", i))
	}

	dom := chromiumDOM(t, bin, o.url+"/", "")
	if !strings.Contains(dom, `data-loaded="true"`) {
		t.Fatalf("the page's script did not finish loading:\n%s", dom)
	}
	row := sensorRow(dom, "greenhouse-7")
	if len(row) != 7 || !strings.HasPrefix(row[2], "active") || row[1] == "" {
		t.Fatalf("row of greenhouse-7 = %q; want 7 cells, state active\n%s", row, dom)
	}
	// The attribute and the cell hold the id as text (entities), and the
	// document has no <img> or inline <script> the id describes.
	escaped := "&lt;img src=x onerror=alert(1)&gt;&lt;script&gt;alert(2)&lt;/script&gt;"
	xrow := sensorRow(dom, strings.NewReplacer("<", "&lt;", ">", "&gt;").Replace(xssID))
	if len(xrow) == 0 || xrow[0] != escaped {
		t.Errorf("row of the script id = %q; want its first cell %q", xrow, escaped)
	}
	if strings.Contains(dom, "<img") || strings.Contains(dom, "alert(2)</script>") {
		t.Errorf("the client id became markup:\n%s", dom)
	}
	if !strings.Contains(dom, "7 of 7") {
		t.Errorf("the pager does not say 1–7 of 7:\n%s", dom)
	}

	// It registers a topic, subscribes, sleeps, and three messages wait
	// for it.
	if _, err := dev.Register(ctx, "greenhouse/7/temp"); err != nil {
		t.Fatal(err)
	}
	if _, err := dev.Subscribe(ctx, snclient.Named("greenhouse/7/cmd"), sn.QoS1); err != nil {
		t.Fatal(err)
	}
	if err := dev.Sleep(ctx, 5*time.Minute); err != nil {
		t.Fatal(err)
	}
	o.WaitSession(t, ctx, "greenhouse-7", mqttcore.StateAsleep)
	app := o.MQTT(t, ctx, "app")
	for i := range 3 {
		app.Publish(t, ctx, "greenhouse/7/cmd", 1, false, fmt.Sprintf("vent %d", i))
	}
	sntest.WaitFor(t, ctx, "three queued messages", func() bool {
		info, ok := o.Broker.Session("greenhouse-7")
		return ok && info.Queued == 3
	})
	dom = chromiumDOM(t, bin, o.url+"/", "")
	if row := sensorRow(dom, "greenhouse-7"); len(row) != 7 || !strings.HasPrefix(row[2], "asleep") || row[5] != "3" || row[6] != "2" {
		t.Errorf("row of greenhouse-7 after it slept = %q; want state asleep, 3 queued, 2 registrations", row)
	}

	if shot := os.Getenv("GANNET_SCREENSHOT"); shot != "" {
		abs, err := filepath.Abs(shot)
		if err != nil {
			t.Fatal(err)
		}
		chromiumDOM(t, bin, o.url+"/#sensor=greenhouse-7", abs)
		if st, err := os.Stat(abs); err != nil || st.Size() == 0 {
			t.Errorf("screenshot %s: %v", abs, err)
		}
	}
}
