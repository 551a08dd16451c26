package mqttcore

import (
	"slices"
	"testing"
)

// TestQueueDrop checks the drop policy and the QoS 0 counter against a
// straightforward model, over every small mix of QoS 0 and 1 messages.
func TestQueueDrop(t *testing.T) {
	const max = 4
	msgs := make([]*Message, 64)
	for i := range msgs {
		msgs[i] = &Message{}
	}
	for mask := 0; mask < 1<<10; mask++ {
		var q queue
		var model []int // indexes into msgs
		qosOf := func(i int) QoS { return QoS(mask >> (i % 10) & 1) }
		for i := range 10 {
			if len(model) == max {
				drop := 0
				for j, k := range model {
					if qosOf(k) == AtMostOnce {
						drop = j
						break
					}
				}
				model = slices.Delete(model, drop, drop+1)
			}
			model = append(model, i)
			q.push(entry{msg: msgs[i], qos: qosOf(i)}, max, false)
			var got []int
			var zeros int32
			for j := int32(0); j < q.n; j++ {
				e := q.at(j)
				got = append(got, slices.Index(msgs, e.msg))
				if e.qos == AtMostOnce {
					zeros++
				}
			}
			if !slices.Equal(got, model) || zeros != q.qos0 {
				t.Fatalf("mask %b step %d: queue %v (qos0 %d, counted %d); want %v", mask, i, got, q.qos0, zeros, model)
			}
		}
		for q.n > 0 {
			q.pop()
		}
		if q.qos0 != 0 {
			t.Fatalf("mask %b: qos0 = %d after draining", mask, q.qos0)
		}
	}
}
