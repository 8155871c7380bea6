package main

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/mcpstream/mcpstream/gateway"
	"github.com/mcpstream/mcpstream/streams"
)

// drain is how long the gateway's shutdown waits for the calls in flight:
// --drain-timeout, or the calls' deadline (--call-timeout, 60s by default),
// so that every call in flight is answered, if only with its timeout.
func (f *gatewayFlags) drain() time.Duration {
	switch {
	case f.drainTimeout > 0:
		return f.drainTimeout
	case f.callTimeout > 0:
		return f.callTimeout
	}
	return 60 * time.Second // gateway.Config's default CallTimeout
}

// defaultMaxBody is gateway.Config's default MaxBody; envelopeReserve
// is what fitMaxBody leaves for the rest of a request's message (the
// envelope's fields and headers: trace context, principal, session).
const (
	defaultMaxBody  = 4 << 20
	envelopeReserve = 64 << 10
)

// fitMaxBody checks the request body limit against what a request can be
// queued in: the request streams' MaxMsgSize (t) and the NATS server's
// max_payload (maxPayload), less envelopeReserve. A --max-body above
// either is refused, naming
// both, for a bigger call would fail with -32603 instead of 413; the
// default 4 MiB above either is lowered to it, with a warning, so that a
// gateway on a server of the NATS default max_payload (1 MiB) still
// starts, and answers a larger body with 413.
func (f *gatewayFlags) fitMaxBody(cfg *gateway.Config, t streams.Topology, maxPayload int64, log *slog.Logger) error {
	msg := int64(t.WithDefaults().MaxMsgSize)
	limit := min(msg, maxPayload) - envelopeReserve
	switch {
	case f.maxBody > limit:
		return fmt.Errorf("--max-body %d is more than a request can be queued in: the request streams' MaxMsgSize %d and the NATS server's max_payload %d take bodies of %d at most (64 KiB go to the envelope); lower --max-body or raise max_payload",
			f.maxBody, msg, maxPayload, limit)
	case f.maxBody == 0 && defaultMaxBody > limit:
		log.Warn("request bodies limited to what NATS carries, below the default --max-body", "max_body", limit, "default", defaultMaxBody,
			"max_msg_size", msg, "max_payload", maxPayload)
		cfg.MaxBody = limit
	}
	return nil
}
