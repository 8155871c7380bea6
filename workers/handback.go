package workers

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mcpstream/mcpstream/schema"
)

// handBackUnstarted hands back to the stream the envelopes onMsg set aside
// while the consumers drained. Not sooner: until a consumer has closed,
// its pull request may still be on the server, which would deliver a
// handed-back envelope straight back to this replica. A closed consumer's
// unsubscription has reached the server (the drain flushes after it), so
// the server skips its pull request.
func (r *runner) handBackUnstarted() {
	r.unstarted.Lock()
	msgs := r.unstarted.msgs
	r.unstarted.msgs = nil
	r.unstarted.Unlock()
	for _, msg := range msgs {
		r.handBack(msg, "", "draining, not started")
	}
}

// handBack returns msg (of request key, if known) to its stream unanswered,
// so that another replica runs it at once: the group is draining and
// msg's handler had not started, or the drain deadline cancelled it. It
// goes back with a negative acknowledgement, which the server counts as
// a delivery; on its last delivery (Topology.MaxDeliver), after which the
// server would deliver it no more and its call would wait out its
// deadline unanswered, it is published again instead (republish) and
// this copy acknowledged: MaxDeliver bounds the runs that fail, not the
// replicas that drain in a rolling deploy. A hand-back that fails leaves
// msg to be redelivered after AckWait. (With a negative DrainTimeout a
// hand-back may precede the end of this replica's pulls and come back to
// it: it is then set aside and handed back again.)
func (r *runner) handBack(msg jetstream.Msg, key, why string) {
	r.handedBack.Add(1)
	r.metrics.delivered(deliveredDrained)
	if md, err := msg.Metadata(); err == nil && md.NumDelivered >= uint64(r.topo.MaxDeliver) {
		err := r.republish(msg, md)
		if err == nil {
			_ = msg.Ack()
			r.log.Debug("envelope on its last delivery published again", "subject", msg.Subject(), "key", key, "why", why)
			return
		}
		r.log.Warn("publishing again an envelope on its last delivery", "subject", msg.Subject(), "key", key, "why", why, "err", err)
	}
	if err := msg.Nak(); err != nil {
		r.log.Warn("handing an envelope back to the stream", "subject", msg.Subject(), "key", key, "why", why, "err", err)
		return
	}
	r.log.Debug("envelope handed back to the stream", "subject", msg.Subject(), "key", key, "why", why)
}

// republish puts msg's envelope on its subject again as a new message,
// for a hand-back on its last delivery: its Attempt counted up, so that
// the replica that takes it treats it as a copy that may have run
// (reading the stored result, claiming it first), and under a message id
// of its own (the request's, with the sequence of the message it
// replaces), so that the stream keeps it beside the request's id and
// drops a second copy of the same hand-back.
func (r *runner) republish(msg jetstream.Msg, md *jetstream.MsgMetadata) error {
	env, err := schema.UnmarshalEnvelope(msg.Data())
	if err != nil {
		return fmt.Errorf("decoding the envelope: %w", err)
	}
	env.Attempt++
	m := nats.NewMsg(msg.Subject())
	if m.Data, err = env.Marshal(); err != nil {
		return fmt.Errorf("encoding the envelope: %w", err)
	}
	for k, v := range msg.Headers() {
		m.Header[k] = v
	}
	m.Header.Set(jetstream.MsgIDHeader, fmt.Sprintf("%s#%d", env.Key, md.Sequence.Stream))
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.base), 5*time.Second)
	defer cancel()
	if _, err := r.js.PublishMsg(ctx, m); err != nil {
		return fmt.Errorf("publishing the envelope: %w", err)
	}
	return nil
}
