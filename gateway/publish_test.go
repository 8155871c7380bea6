package gateway_test

import (
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mcpstream/mcpstream/gateway"
	"github.com/mcpstream/mcpstream/schema"
	"github.com/mcpstream/mcpstream/streams"
)

// TestPublishedRequest checks what the gateway publishes for a call: on
// its group's request subject of the session's partition, with the
// envelope's key as Nats-Msg-Id (the stream's dedupe) and the reply
// subject for the stream's acknowledgement its ack prefix and the key.
func TestPublishedRequest(t *testing.T) {
	tg := newTestGateway(t, gateway.Config{ID: "gwpub"})
	nc, err := tg.emb.Connect()
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	published := make(chan *nats.Msg, 16)
	for p := range 2 { // the test gateway's partitions
		if _, err := nc.ChanSubscribe(streams.RequestSubject(testGroup, p), published); err != nil {
			t.Fatal(err)
		}
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	hs := tg.initialize(t, "2025-11-25", `{}`)
	for i := range 3 {
		wantResult(t, tg.post(t, callBody(2+i, "echo", `{"text":"hi"}`, ""), hs...))
		m := await(t, published, "the published request")
		env, err := schema.UnmarshalEnvelope(m.Data)
		if err != nil {
			t.Fatal(err)
		}
		if want := streams.RequestSubject(testGroup, streams.Partition(hs[1], 2)); m.Subject != want {
			t.Errorf("published on %q, want %q", m.Subject, want)
		}
		if got := m.Header.Get(jetstream.MsgIDHeader); got != env.Key || got == "" {
			t.Errorf("Nats-Msg-Id %q, want the key %q", got, env.Key)
		}
		if want := streams.PubAckPrefix("gwpub") + env.Key; m.Reply != want {
			t.Errorf("reply subject %q, want %q", m.Reply, want)
		}
	}
}
