package gateway

import (
	"context"
	"errors"

	"github.com/mcpstream/mcpstream/schema"
	"github.com/mcpstream/mcpstream/streams"
)

// A worker's reply reaches the gateway on core NATS, so one sent while the
// gateway was reconnecting to another NATS node is lost, or swallowed by
// the node going down. So when the gateway reconnects, every
// request waiting then becomes suspect (router.suspectAll), and from the
// next sweep on, once a tick until it has its reply, its wait is ended
// with errReplyMayBeLost for it to look for the reply (recoverReply).

// errReplyMayBeLost ends the wait of a request that was waiting when the
// gateway reconnected to NATS.
var errReplyMayBeLost = errors.New("the gateway reconnected to NATS while the request waited")

// recoverReply looks for the reply of a suspect request in the result
// bucket, where a worker stores the result of a call that is not
// idempotent before it acknowledges the request. It returns that reply, or
// nil and whether to run the request again: an idempotent call's result is
// not stored, and running it again is safe.
func (g *Gateway) recoverReply(ctx context.Context, env *schema.Envelope) (_ *schema.Reply, rerun bool) {
	if e, err := g.results.Get(ctx, streams.ResultKey(env.Key)); err == nil {
		if rep, err := schema.UnmarshalReply(e.Value()); err == nil && rep.Key == env.Key {
			return rep, false
		}
	}
	return nil, g.idempotent(env)
}

// idempotent reports whether env may run twice, by the rule workers use to
// skip storing its result (schema.Idempotent).
func (g *Gateway) idempotent(env *schema.Envelope) bool {
	var tool *schema.Tool
	if t := g.reg.Load().Tool(env.Name); t != nil && env.Method == schema.MethodToolsCall {
		tool = &t.Tool
	}
	return schema.Idempotent(env.Method, tool)
}
