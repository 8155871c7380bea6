package gateway

import (
	"encoding/json"

	"github.com/nats-io/nats.go"

	"github.com/mcpstream/mcpstream/schema"
	"github.com/mcpstream/mcpstream/streams"
)

// What the gateway relays between clients and workers besides requests and
// their results. Requests from workers to clients (sampling, elicitation,
// roots) reach the gateway as replies of kind ReplyRequest about a call in
// flight here, and go out on that call's event stream (clientMessage). The
// client's answer is a JSON-RPC response posted to any gateway, which
// passes it on to the subject its id names (streams.AnswerSubject), with
// the session it came from. A client's notifications/cancelled goes to
// every worker (streams.CancelSubject).

// relayAnswer passes a client's response (raw, as posted) to the worker
// waiting for it. A response to an id that is not ours is ignored: the
// server sent no such request.
func (g *Gateway) relayAnswer(sess *session, msg *schema.Message, raw []byte) {
	subject, ok := streams.AnswerSubject(msg.ID)
	if !ok {
		return
	}
	m := nats.NewMsg(subject)
	if int64(len(raw)) > g.nc.MaxPayload() {
		m.Header.Set(schema.HeaderGatewayError, "1")
		m.Data = schema.AppendError(nil, msg.ID, schema.Errorf(schema.CodeInvalidRequest,
			"the client's answer is %d bytes, more than the %d the broker carries", len(raw), g.nc.MaxPayload()))
	} else {
		m.Header.Set(schema.HeaderSessionID, sess.id)
		m.Data = raw
	}
	if err := g.nc.PublishMsg(m); err != nil {
		g.log.Warn("passing on a client's answer", "err", err)
	}
}

// refuseClientRequest answers a worker's request to the client with rpcErr
// in the client's stead, because it cannot be relayed.
func (g *Gateway) refuseClientRequest(rep *schema.Reply, rpcErr *schema.Error) {
	id, _ := json.Marshal(rep.ID)
	subject, ok := streams.AnswerSubject(id)
	if !ok {
		g.log.Warn("dropping a worker's request with a malformed id", "key", rep.Key, "method", rep.Method)
		return
	}
	m := nats.NewMsg(subject)
	m.Header.Set(schema.HeaderGatewayError, "1")
	m.Data = schema.AppendError(nil, id, rpcErr)
	if err := g.nc.PublishMsg(m); err != nil {
		g.log.Warn("refusing a worker's request to the client", "key", rep.Key, "err", err)
	}
}

// clientCan reports whether the session's client declared a capability in
// initialize.
func (s *session) clientCan(capability string) bool {
	return schema.HasCapability(s.capabilities(), capability)
}

// cancelRequest passes a client's notifications/cancelled to every worker:
// the one running the request cancels its handler's context. Any gateway
// can do it, since the request is named by session and JSON-RPC id.
func (g *Gateway) cancelRequest(sess *session, params []byte) {
	var id, reason []byte
	if len(params) == 0 || schema.ScanObject(params, func(k, v []byte) {
		switch string(k) {
		case "requestId":
			id = v
		case "reason":
			reason = v
		}
	}) != nil || !schema.ID(id).Valid() {
		return // a malformed cancellation is ignored, as the spec allows
	}
	c := schema.Cancel{Session: sess.id, RequestID: string(id)}
	_ = json.Unmarshal(reason, &c.Reason)
	g.publishCancel(c)
}

// cancelAtWorker tells the workers to stop env's call, named as a worker
// names it: by session and JSON-RPC id, or, for a stateless request, by
// its key.
func (g *Gateway) cancelAtWorker(env *schema.Envelope, reason string) {
	c := schema.Cancel{Session: env.Session, RequestID: env.RequestID, Reason: reason}
	if env.Session == "" {
		c.Session, c.RequestID = schema.CancelByKey, env.Key
	}
	g.publishCancel(c)
}

// publishCancel tells every worker to cancel the request c names.
func (g *Gateway) publishCancel(c schema.Cancel) {
	b, err := c.Marshal()
	if err == nil {
		err = g.nc.Publish(streams.CancelSubject, b)
	}
	if err != nil {
		g.log.Warn("passing on a cancellation", "err", err)
	}
}
