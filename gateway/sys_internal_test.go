package gateway

import (
	"strings"
	"testing"

	"github.com/gannet-mqtt/gannet/mqttcore"
)

// TestSysTopicNames keeps the gateway's $SYS topic names free of spaces
// (they are typed in shells and dashboards) and of MQTT wildcards.
func TestSysTopicNames(t *testing.T) {
	b, err := mqttcore.New(mqttcore.Config{SysDisabled: true}, mqttcore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	g, err := New(Config{}, b, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	topics := g.sysTopics()
	if len(topics) < 12 {
		t.Fatalf("sysTopics() = %d topics; want at least 12", len(topics))
	}
	for _, kv := range topics {
		if strings.ContainsAny(kv.topic, " +#") || !strings.HasPrefix(kv.topic, sysPrefix) {
			t.Errorf("$SYS topic %q: want %s followed by a name without spaces or wildcards", kv.topic, sysPrefix)
		}
	}
}
