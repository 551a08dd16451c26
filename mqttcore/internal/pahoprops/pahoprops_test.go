package pahoprops

import (
	"reflect"
	"testing"
	"time"

	"github.com/gannet-mqtt/gannet/mqttcore"
)

func TestRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   *mqttcore.Properties
		want *mqttcore.Properties
	}{
		{"nil", nil, nil},
		{"empty is none", &mqttcore.Properties{}, nil},
		{"all", &mqttcore.Properties{PayloadFormat: 1, MessageExpiry: 90 * time.Second, ContentType: "text/plain",
			ResponseTopic: "r/t", CorrelationData: []byte{1, 2}, User: []mqttcore.UserProperty{{Key: "k", Value: "v"}}},
			&mqttcore.Properties{PayloadFormat: 1, MessageExpiry: 90 * time.Second, ContentType: "text/plain",
				ResponseTopic: "r/t", CorrelationData: []byte{1, 2}, User: []mqttcore.UserProperty{{Key: "k", Value: "v"}}}},
		{"expiry rounded up to a second", &mqttcore.Properties{MessageExpiry: 1500 * time.Millisecond},
			&mqttcore.Properties{MessageExpiry: 2 * time.Second}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := ToCore(ToPaho(tc.in)); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("ToCore(ToPaho(%+v)) = %+v; want %+v", tc.in, got, tc.want)
			}
		})
	}
}
