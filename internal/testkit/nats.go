package testkit

import (
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mcpstream/mcpstream/streams"
)

// JetStream starts an embedded JetStream server on disk in a temp dir and
// returns it with a client connection and a JetStream context on it. The
// connection closes, then the server shuts down, after the cleanups the
// caller registers later (which run first).
func JetStream(t testing.TB) (*streams.Embedded, *nats.Conn, jetstream.JetStream) {
	t.Helper()
	emb, err := streams.StartEmbedded(streams.EmbeddedOptions{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(emb.Shutdown)
	nc, js := JetStreamOver(t, func() (*nats.Conn, error) { return emb.Connect() })
	return emb, nc, js
}

// JetStreamOver opens a connection with connect, closed at the end of the
// test, and a JetStream context on it.
func JetStreamOver(t testing.TB, connect func() (*nats.Conn, error)) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	nc, err := connect()
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
