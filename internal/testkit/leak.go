package testkit

import "go.uber.org/goleak"

// NATSCloseRace lets goleak pass the one goroutine of nats.go that can
// outlive its connection: a JetStream context's async publisher
// (resetPendingAcksOnReconnect, started by its first PublishAsync) waits
// for the connection's CLOSED status, but nats.go (v1.55.0,
// jetstream/publish.go, newAsyncReply) subscribes for the
// acknowledgements first and registers for that status only after; a
// connection closed between the two, as when a test kills a replica's
// connection while it starts storing a result or a claim, never tells the
// goroutine, which then waits forever. Nothing of ours holds it: the
// connection's own goroutines (read loop, flusher) are gone, and goleak
// still fails on those when a connection is left open.
func NATSCloseRace() goleak.Option {
	return goleak.IgnoreTopFunction("github.com/nats-io/nats.go/jetstream.(*jetStream).resetPendingAcksOnReconnect")
}
