package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mcpstream/mcpstream/schema"
	"github.com/mcpstream/mcpstream/streams"
)

// What session event streams carry (list changes, resource updates) goes
// through the events stream first: a gateway that sees a registry change
// publishes it there (its message id makes the other gateways' publishes of
// the same change duplicates), and workers announce resource updates there.
// Every gateway follows the stream with an ordered consumer and fans each
// event out to its open streams; the event's stream sequence is its SSE id.
// A client that lost its GET stream opens another, on any gateway, with
// Last-Event-ID, and gets the events it missed replayed from the stream.

// maxReplay bounds the events replayed to one resuming stream.
const maxReplay = 1000

// followEvents fans the events stream out to the open event streams
// until the gateway closes, from the event after the last one stored now.
// It names that sequence rather than asking for new events only: an
// ordered consumer that is reset (its heartbeats missed) before it has
// delivered an event is made again from its first configuration, and
// "new" would then skip what was published in between.
func (g *Gateway) followEvents() error {
	info, err := g.events.Info(g.ctx)
	if err != nil {
		return err
	}
	cons, err := g.events.OrderedConsumer(g.ctx, jetstream.OrderedConsumerConfig{
		DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: info.State.LastSeq + 1})
	if err != nil {
		return err
	}
	cc, err := cons.Consume(func(m jetstream.Msg) {
		if c, ok := eventChange(m.Subject(), m.Data()); ok {
			if md, err := m.Metadata(); err == nil {
				g.tell(c, md.Sequence.Stream)
			}
		}
	})
	if err != nil {
		return err
	}
	if !g.start(func(ctx context.Context) { <-ctx.Done(); cc.Stop() }) {
		cc.Stop()
	}
	return nil
}

// eventChange is the change an event of the events stream stands for.
func eventChange(subject string, data []byte) (change, bool) {
	switch subject {
	case streams.EventsToolsSubject:
		return change{method: schema.NotificationToolListChanged}, true
	case streams.EventsPromptsSubject:
		return change{method: schema.NotificationPromptListChanged}, true
	case streams.EventsResourcesSubject:
		return change{method: schema.NotificationResourceListChanged}, true
	}
	if uri, ok := streams.ResourceEventURI(subject); ok && uri != "" && len(uri) <= maxURILength {
		return change{method: schema.NotificationResourceUpdated, uri: uri}, true
	}
	return change{}, false
}

// publishListChange records a change of the registry's lists. id names the
// change the same on every gateway (the registry's revision), so only one
// event is kept. While the events stream cannot take it (no leader during
// an election, or not answering in time), it tries again with backoff for
// up to announceTimeout, then gives the change up with a warning.
func (g *Gateway) publishListChange(ctx context.Context, subject, id string) {
	m := nats.NewMsg(subject)
	m.Header.Set(jetstream.MsgIDHeader, subject+":"+id)
	ctx, cancel := context.WithTimeout(ctx, announceTimeout)
	defer cancel()
	for backoff := firstBackoff; ; backoff = min(2*backoff, time.Second) {
		actx, cancel := context.WithTimeout(ctx, announceTry)
		_, err := g.js.PublishMsg(actx, m)
		cancel()
		if err == nil {
			return
		}
		if !streams.Retryable(err) || ctx.Err() != nil {
			g.log.Warn("publishing a list change", "subject", subject, "err", err)
			return
		}
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			g.log.Warn("publishing a list change", "subject", subject, "err", err)
			return
		}
	}
}

// announceTimeout bounds the tries to record one list change: longer than
// an election after a node's death (4-9 s). announceTry bounds one.
const (
	announceTimeout = 30 * time.Second
	announceTry     = 5 * time.Second
)

// params are the notification's params: {"uri":...} for a resource
// update, none for a list change.
func (c change) params() []byte {
	if c.uri == "" {
		return nil
	}
	b, _ := json.Marshal(struct {
		URI string `json:"uri"`
	}{c.uri})
	return b
}

// sessionEvent is an event of a session's GET stream, with its id.
func sessionEvent(method string, params []byte, seq uint64) []byte {
	b := append([]byte("id: "), strconv.FormatUint(seq, 10)...)
	b = append(append(b, "\nevent: message\ndata: "...), schema.AppendNotification(nil, method, params)...)
	return append(b, "\n\n"...)
}

// event is one event for a stream, with its sequence.
type event struct {
	seq uint64
	b   []byte
}

// replay returns the events after sequence after that concern sess (list
// changes, and updates of the resources it subscribed to), up to the
// stream's end when it is called and at most maxReplay, formatted for its
// stream, and the sequence up to which it looked, which the stream then
// skips events up to. A sequence beyond the end (an id from another events
// stream, or from before the stream was made again) replays nothing and
// gives the end, so that the events published after it still reach the
// stream; when the end cannot be read, it gives 0.
func (g *Gateway) replay(ctx context.Context, sess *session, after uint64) ([]event, uint64, error) {
	info, err := g.events.Info(ctx)
	if err != nil {
		return nil, 0, fmt.Errorf("reading the events stream's end: %w", err)
	}
	end := info.State.LastSeq
	if after >= end {
		return nil, end, nil
	}
	filters := []string{streams.EventsToolsSubject, streams.EventsPromptsSubject, streams.EventsResourcesSubject}
	for _, u := range sess.subscriptions() {
		filters = append(filters, streams.ResourceEventSubject(u))
	}
	// Each Fetch makes the consumer (again) in the caller's goroutine,
	// retrying with backoff on failure, and by default forever, whatever
	// ctx says: a replay whose consumer cannot be made (the connection
	// closed, the stream gone) would hold its GET for good.
	cons, err := g.events.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{FilterSubjects: filters,
		DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: after + 1, InactiveThreshold: replayInactive,
		MaxResetAttempts: replayConsumerAttempts})
	if err != nil {
		return nil, after, fmt.Errorf("creating the replay's consumer: %w", err)
	}
	defer g.dropConsumer(ctx, cons)
	var out []event
	last, n := after, 0
	for last < end && n < maxReplay {
		batch, err := cons.Fetch(min(256, maxReplay-n), jetstream.FetchMaxWait(200*time.Millisecond))
		if err != nil {
			return out, last, fmt.Errorf("fetching events to replay: %w", err)
		}
		got := 0
		for m := range batch.Messages() {
			got++
			md, err := m.Metadata()
			if err != nil || md.Sequence.Stream > end {
				continue
			}
			last = md.Sequence.Stream
			if c, ok := eventChange(m.Subject(), m.Data()); ok {
				out = append(out, event{last, sessionEvent(c.method, c.params(), last)})
				n++
			}
		}
		if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) {
			return out, last, fmt.Errorf("fetching events to replay: %w", err)
		}
		if got == 0 {
			break // nothing more for this session before the end
		}
	}
	if n >= maxReplay {
		return out, last, nil
	}
	return out, end, nil // every later event up to end is not this session's
}

// replayConsumerAttempts bounds the tries to make a replay's consumer
// (1, 2 and 4 s apart: a JetStream leader election takes seconds, and the
// replay's storeTimeout is 10 s): past them the replay ends with an
// error, and the stream opens without what it missed.
const replayConsumerAttempts = 4

// replayInactive is how long the server keeps a replay's consumer once
// nothing pulls from it (nats.go's default is 5 minutes). A replay pulls
// without pause and deletes its consumer when it ends (dropConsumer), so
// this matters only when a delete fails, that one or nats.go's own of the
// consumer a Fetch replaced.
const replayInactive = 5 * time.Second

// dropConsumer deletes the consumer a replay's ordered consumer pulls from
// now (each Fetch makes a new one and deletes the one before), so that
// every resumed stream leaves none on the events stream. A failure is
// logged at debug level: the server drops the consumer after
// replayInactive anyway.
func (g *Gateway) dropConsumer(ctx context.Context, cons jetstream.Consumer) {
	info := cons.CachedInfo()
	if info == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), replayInactive)
	defer cancel()
	if err := g.events.DeleteConsumer(ctx, info.Name); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
		g.log.DebugContext(ctx, "deleting a replay's consumer", "consumer", info.Name, "err", err)
	}
}

// catchUp writes to es, a session's new stream, the events published
// between its replay and its publication, which the fan-out may have
// passed by.
func (g *Gateway) catchUp(ctx context.Context, es *eventStream, after uint64) {
	ctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	missed, _, err := g.replay(ctx, es.sess, after)
	if err != nil || len(missed) == 0 {
		return
	}
	for _, ev := range missed {
		_ = es.writeSeq(ev.seq, ev.b)
	}
}

// announceListChanges records in the events stream, whenever a new
// registry snapshot lists different tools, prompts or resources (resources
// and templates together), that the list changed, until the gateway
// drains. Every gateway follows the events stream and tells its open
// streams. Clients without an open stream miss it, which the spec allows;
// they see the change on their next list, or when they resume.
func (g *Gateway) announceListChanges(ctx context.Context) {
	kinds := []struct {
		subject string
		list    func(*Snapshot) []byte
		last    []byte
	}{
		{subject: streams.EventsToolsSubject, list: (*Snapshot).ToolsListResult},
		{subject: streams.EventsPromptsSubject, list: (*Snapshot).PromptsListResult},
		{subject: streams.EventsResourcesSubject, list: func(s *Snapshot) []byte {
			return append(append([]byte{}, s.ResourcesListResult()...), s.TemplatesListResult()...)
		}},
	}
	// Compare from the first complete snapshot (filling the registry at
	// start is no change to announce), not from the one current when this
	// goroutine gets to run: a change in between is announced too.
	select {
	case <-g.reg.ready:
	case <-ctx.Done():
		return
	}
	for i := range kinds {
		kinds[i].last = kinds[i].list(g.reg.first)
	}
	for {
		// Taken before the snapshot is read: a snapshot stored after the
		// read closes it.
		changed := g.reg.Changed()
		snap := g.reg.Load()
		for i := range kinds {
			k := &kinds[i]
			if cur := k.list(snap); !bytes.Equal(cur, k.last) {
				k.last = cur
				g.publishListChange(ctx, k.subject, strconv.FormatUint(snap.Rev, 10))
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-changed:
		}
	}
}
