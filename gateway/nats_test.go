package gateway

import (
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mcpstream/mcpstream/internal/testkit"
)

// embeddedJS starts an embedded JetStream server on disk and returns a
// client connection and a JetStream context on it. The connection closes,
// then the server shuts down, after the cleanups the caller registers
// later (which run first).
func embeddedJS(t *testing.T) (*nats.Conn, jetstream.JetStream) {
	_, nc, js := testkit.JetStream(t)
	return nc, js
}
