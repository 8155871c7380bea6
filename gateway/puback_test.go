package gateway

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mcpstream/mcpstream/internal/testkit"
	"github.com/mcpstream/mcpstream/streams"
)

// pubAckError reads the acknowledgements a real JetStream server sends to
// a publish's reply subject: good ones and duplicates are no error, a
// refusal is the stream's APIError, a subject no stream takes is
// nats.ErrNoResponders. The router passes only the errors on.
func TestPubAckError(t *testing.T) {
	_, nc, js := testkit.JetStream(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{
		Name: "ACKS", Subjects: []string{"acks.>"}, MaxMsgSize: 64, Duplicates: time.Minute,
	}); err != nil {
		t.Fatal(err)
	}
	prefix := streams.PubAckPrefix("gw1")
	// A channel subscription, like the gateway's callback, gets status
	// messages as they are (a sync one turns a 503 into an error).
	acks := make(chan *nats.Msg, 1)
	if _, err := nc.ChanSubscribe(prefix+"*", acks); err != nil {
		t.Fatal(err)
	}
	r := newRouter(nil, nil)

	// publish sends data to subject as the gateway does and returns the
	// acknowledgement's error, after checking it reaches the waiter.
	publish := func(key, subject string, data []byte) error {
		t.Helper()
		w := r.register(key)
		defer r.unregister(key, w)
		m := nats.NewMsg(subject)
		m.Data, m.Reply = data, prefix+key
		m.Header.Set(jetstream.MsgIDHeader, key)
		if err := nc.PublishMsg(m); err != nil {
			t.Fatal(err)
		}
		var ack *nats.Msg
		select {
		case ack = <-acks:
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: no acknowledgement", key)
		}
		if got := ack.Subject[len(prefix):]; got != key {
			t.Fatalf("acknowledgement for %q, want %q", got, key)
		}
		r.pubAck(key, ack)
		err := pubAckError(ack)
		switch _, _, werr := w.take(nil); {
		case werr == nil:
			if err != nil {
				t.Errorf("%s: waiter got nothing for %v", key, err)
			}
		case err == nil || werr.Error() != err.Error():
			t.Errorf("%s: waiter got %v, pubAckError %v", key, werr, err)
		}
		return err
	}

	if err := publish("k1", "acks.a", []byte("hello")); err != nil {
		t.Errorf("good publish: %v", err)
	}
	if err := publish("k1", "acks.a", []byte("hello")); err != nil {
		t.Errorf("duplicate publish: %v", err)
	}
	var apiErr *jetstream.APIError
	if err := publish("k2", "acks.b", make([]byte, 100)); !errors.As(err, &apiErr) || apiErr.Code != 400 || streams.Retryable(err) {
		t.Errorf("oversized publish: %v (%#v), want a 400 APIError, not retried", err, apiErr)
	}
	if err := publish("k3", "nostream.c", []byte("hello")); !errors.Is(err, nats.ErrNoResponders) || !streams.Retryable(err) {
		t.Errorf("publish no stream takes: %v, want no responders, retried", err)
	}
	if err := pubAckError(&nats.Msg{Data: []byte("not json")}); err == nil {
		t.Error("a malformed acknowledgement reads as good")
	}
}
