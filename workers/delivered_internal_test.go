package workers

import (
	"testing"

	"github.com/nats-io/nats.go"
)

// libraryDeliveryCount is what the library reads from reply: a bound
// message's Metadata, the same parse as jetstream.Msg's.
func libraryDeliveryCount(reply string) (uint64, bool) {
	md, err := (&nats.Msg{Reply: reply, Sub: &nats.Subscription{}}).Metadata()
	if err != nil {
		return 0, false
	}
	return md.NumDelivered, true
}

var deliverySubjects = []string{
	"$JS.ACK.MCP_REQ_0.workers-demo.1.42.42.1765152000000000000.0",
	"$JS.ACK.MCP_REQ_3.workers-demo.17.9001.88.1765152000000000000.12",
	"$JS.ACK._.ACCHASH.MCP_REQ_0.workers-demo.3.42.40.1765152000000000000.5.AbCdEf",
	"$JS.ACK.hub.ACCHASH.MCP_REQ_0.workers-demo.2.42.40.1765152000000000000.5",
	"$JS.ACK.hub.ACCHASH.MCP_REQ_0.workers-demo.2.42.40.1765152000000000000.5.t.u.v",
	"$JS.ACK.S.C.x1.1.1.1.0",                   // a count not all digits
	"$JS.ACK.S.C..1.1.1.0",                     // an empty count
	"$JS.ACK.S.C.18446744073709551616.1.1.1.0", // past uint64: wraps as the library's
	"$JS.ACK.S.C.1.1.1.1",                      // 8 tokens
	"$JS.ACK.D.H.S.C.1.1.1.1",                  // 10 tokens
	"$JS.NAK.S.C.1.1.1.1.0",
	"_INBOX.abc.def",
	"",
}

func TestDeliveryCountAsMetadata(t *testing.T) {
	for _, reply := range deliverySubjects {
		n, ok := deliveryCount(reply)
		wn, wok := libraryDeliveryCount(reply)
		if n != wn || ok != wok {
			t.Errorf("deliveryCount(%q) = %d, %v; the library reads %d, %v", reply, n, ok, wn, wok)
		}
	}
	if n, ok := deliveryCount(deliverySubjects[1]); n != 17 || !ok {
		t.Errorf("deliveryCount(%q) = %d, %v, want 17, true", deliverySubjects[1], n, ok)
	}
}

func FuzzDeliveryCount(f *testing.F) {
	for _, reply := range deliverySubjects {
		f.Add(reply)
	}
	f.Fuzz(func(t *testing.T, reply string) {
		n, ok := deliveryCount(reply)
		wn, wok := libraryDeliveryCount(reply)
		if n != wn || ok != wok {
			t.Fatalf("deliveryCount(%q) = %d, %v; the library reads %d, %v", reply, n, ok, wn, wok)
		}
	})
}

func BenchmarkDeliveryCount(b *testing.B) {
	reply := deliverySubjects[2]
	b.Run("metadata", func(b *testing.B) {
		msg := &nats.Msg{Reply: reply, Sub: &nats.Subscription{}}
		b.ReportAllocs()
		for b.Loop() {
			_, _ = msg.Metadata()
		}
	})
	b.Run("deliveryCount", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_, _ = deliveryCount(reply)
		}
	})
}
