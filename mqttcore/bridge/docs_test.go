package bridge_test

import (
	"os"
	"regexp"
	"testing"

	"github.com/gannet-mqtt/gannet/internal/config"
	"github.com/gannet-mqtt/gannet/mqttcore/bridge"
)

// TestDocsExamples loads every TOML block of docs/bridge.md the way
// config.toml is loaded (strictly, with Validate).
func TestDocsExamples(t *testing.T) {
	doc, err := os.ReadFile("../../docs/bridge.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := regexp.MustCompile("(?s)```toml\n(.*?)```").FindAllSubmatch(doc, -1)
	if len(blocks) < 3 {
		t.Fatalf("docs/bridge.md has %d toml blocks; want at least 3 (Mosquitto, EMQX, TLS cloud)", len(blocks))
	}
	for i, b := range blocks {
		var fc struct {
			Bridges []bridge.Config `toml:"bridge"`
		}
		if err := config.Decode(b[1], &fc); err != nil {
			t.Errorf("docs/bridge.md toml block %d: %v\n%s", i+1, err, b[1])
			continue
		}
		if len(fc.Bridges) == 0 {
			t.Errorf("docs/bridge.md toml block %d defines no [[bridge]]", i+1)
		}
	}
}
