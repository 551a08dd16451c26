// Package pahoprops converts MQTT 5 message properties between the broker
// core's form and paho.golang's, for the parts of mqttcore that speak to a
// remote broker through paho (the bridge and transparent mode).
package pahoprops

import (
	"time"

	"github.com/eclipse/paho.golang/paho"

	"github.com/gannet-mqtt/gannet/mqttcore"
)

// ToPaho returns p as paho's PUBLISH properties (nil for nil). A message
// expiry is rounded up to whole seconds, as MQTT 5 carries it.
func ToPaho(p *mqttcore.Properties) *paho.PublishProperties {
	if p == nil {
		return nil
	}
	pp := &paho.PublishProperties{ContentType: p.ContentType, ResponseTopic: p.ResponseTopic, CorrelationData: p.CorrelationData}
	if p.PayloadFormat != 0 {
		f := p.PayloadFormat
		pp.PayloadFormat = &f
	}
	if p.MessageExpiry > 0 {
		e := uint32(min((p.MessageExpiry+time.Second-1)/time.Second, 0xFFFFFFFF))
		pp.MessageExpiry = &e
	}
	for _, u := range p.User {
		pp.User = append(pp.User, paho.UserProperty{Key: u.Key, Value: u.Value})
	}
	return pp
}

// ToCore returns paho's PUBLISH properties in the core's form, nil when
// there are none.
func ToCore(p *paho.PublishProperties) *mqttcore.Properties {
	if p == nil {
		return nil
	}
	cp := &mqttcore.Properties{ContentType: p.ContentType, ResponseTopic: p.ResponseTopic, CorrelationData: p.CorrelationData}
	if p.PayloadFormat != nil {
		cp.PayloadFormat = *p.PayloadFormat
	}
	if p.MessageExpiry != nil {
		cp.MessageExpiry = time.Duration(*p.MessageExpiry) * time.Second
	}
	for _, u := range p.User {
		cp.User = append(cp.User, mqttcore.UserProperty{Key: u.Key, Value: u.Value})
	}
	if cp.PayloadFormat == 0 && cp.MessageExpiry == 0 && cp.ContentType == "" && cp.ResponseTopic == "" &&
		cp.CorrelationData == nil && cp.User == nil {
		return nil
	}
	return cp
}
