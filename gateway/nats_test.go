package gateway

import (
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mcpstream/mcpstream/streams"
)

// embeddedJS starts an embedded JetStream server on disk and returns a
// client connection and a JetStream context on it. The connection closes,
// then the server shuts down, after the cleanups the caller registers
// later (which run first).
func embeddedJS(t *testing.T) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	emb, err := streams.StartEmbedded(streams.EmbeddedOptions{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(emb.Shutdown)
	nc, err := emb.Connect()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return nc, js
}
