package streams

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mcpstream/mcpstream/schema"
)

// Recorded is one request as a request stream recorded it.
type Recorded struct {
	// Stream and Seq name the message: partition stream and stream
	// sequence.
	Stream string
	Seq    uint64
	// Time is when the stream stored it.
	Time time.Time
	// Group is the worker group its subject names.
	Group string
	// Envelope is the request; nil when it could not be decoded, and Err
	// says why.
	Envelope *schema.Envelope
	Err      error
	// Live is set on a request read after the range, with Follow: stored
	// as the replay ran.
	Live bool
}

// ReplayOptions select what [Replay] reads. The zero value reads every
// request of every partition stream, up to the last one stored when the
// replay starts.
type ReplayOptions struct {
	// Group, if set, reads only that worker group's requests. The server
	// filters: each partition's consumer takes only the group's subject.
	Group string
	// Session, if set, reads only that session's requests. A session's
	// requests all go to one partition, so only its stream is read.
	Session string
	// Stream, if set, reads only that partition stream (as a line's
	// "stream" names it, e.g. MCP_REQ_2).
	Stream string
	// StartSeq, if set, starts each stream read at that stream sequence.
	StartSeq uint64
	// Since, if set, starts at the first request stored at or after it
	// (the server seeks to it, unless StartSeq is also set: then the
	// requests read from StartSeq that are older are dropped, and a
	// stream whose requests are all older passes none on).
	Since time.Time
	// Until, if set, ends at the last request stored at or before it,
	// with Follow too.
	Until time.Time
	// Follow goes on after the range with requests as they are stored,
	// until the context ends (or Until passes). They come in the order they
	// arrive, not merged by time.
	Follow bool
	// Limit, if positive, ends the replay after that many requests passed
	// to emit.
	Limit int
	// Match, if set, decides which requests are passed to emit (the
	// filters the server cannot apply); the others are read and dropped.
	// Requests whose envelope could not be decoded are passed to it too.
	Match func(*Recorded) bool
	// Progress, if set, is called for every request read in the range
	// (matched or not) with the number read and the number the range
	// holds, as far as known: the total grows as each stream's read
	// starts.
	Progress func(read, total uint64)
}

// readLimit is the byte limit of the pulls of stream s, one of n read at
// once (PullBytes, for requests as large as s takes: its MaxMsgSize, else
// the connection's max payload). It bounds what a replay holds in memory,
// whatever the range's size and its requests' sizes: with the default
// topology 4 x (8 MiB + 64 KiB). Small requests cost more memory than
// their bytes (a buffered message's own structures), so a replay of small
// requests peaks higher than one of large requests of the same total. The
// pulls are bounded in bytes alone: nats.go sizes a message-and-byte
// bounded iterator's buffer to its message count, and the server's "Batch
// Completed" status after each pull then overflows it when the replay's
// output is slower than the stream.
func readLimit(js jetstream.JetStream, s jetstream.Stream, n int) int {
	largest := int64(s.CachedInfo().Config.MaxMsgSize)
	if largest <= 0 {
		largest = js.Conn().MaxPayload()
	}
	return PullBytes(largest, n)
}

// resetAttempts is how many times a stream's ordered consumer is made
// again when it is lost (a stream deleted, or without a leader), with
// waits of 1, 2 and 4 s between: a leader election (4-5 s) is waited
// out, a deleted stream ends the replay with an error naming it.
const resetAttempts = 4

// idleCheck is how long a stream's read waits for its next request in the
// range before it asks the server whether the range still holds any: the
// requests left may have expired (MaxAge, MaxBytes) or been purged before
// they were read, and then none arrives to end the range.
const idleCheck = time.Second

// Replay reads the recorded requests o selects, from every partition
// stream merged in the order the streams stored them, and passes them to
// emit. It reads through ordered, ephemeral consumers, deleted when it
// returns: the worker groups' durable consumers, and what they deliver,
// are untouched.
//
// It returns nil at the end of the range (or the Limit), the error emit
// returns, ctx's error when ctx ends first (with Follow, that is how it
// ends), an error naming the stream for a read that fails (a stream
// deleted under it, or without a leader for 7 s), and an error
// when the deployment has no request streams (nothing provisioned) or
// o.Stream names none of them.
func Replay(ctx context.Context, js jetstream.JetStream, o ReplayOptions, emit func(*Recorded) error) error {
	names, err := replayStreams(ctx, js, o)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() {
		cancel()
		wg.Wait()
	}()
	live := make(chan item, len(names)) // each reader buffers its own
	ranges := make([]chan item, len(names))
	for i, name := range names {
		ranges[i] = make(chan item, 1)
		wg.Add(1)
		go func() {
			defer wg.Done()
			readStream(ctx, js, name, len(names), o, ranges[i], live)
		}()
	}
	m := merger{o: o, emit: emit}
	if err := m.merge(ctx, ranges); err != nil || m.done() {
		return err
	}
	if !o.Follow {
		return nil
	}
	var until <-chan time.Time // Until ends the follow even when nothing comes
	if !o.Until.IsZero() {
		t := time.NewTimer(time.Until(o.Until))
		defer t.Stop()
		until = t.C
	}
	for {
		select {
		case it := <-live:
			if err := m.take(it); err != nil || m.done() {
				return err
			}
		case <-until:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// replayStreams names the partition streams o reads.
func replayStreams(ctx context.Context, js jetstream.JetStream, o ReplayOptions) ([]string, error) {
	if o.Group != "" {
		if err := CheckName("group", o.Group); err != nil {
			return nil, err
		}
	}
	t, err := ReadTopology(ctx, js)
	if err != nil {
		return nil, err
	}
	var names []string
	for p := range t.Partitions {
		names = append(names, StreamName(p))
	}
	if o.Session != "" {
		names = []string{StreamName(Partition(o.Session, t.Partitions))}
	}
	if o.Stream != "" {
		if !slices.Contains(names, o.Stream) {
			if o.Session != "" {
				return nil, fmt.Errorf("the requests of session %s are in stream %s, not %s", o.Session, names[0], o.Stream)
			}
			return nil, fmt.Errorf("no request stream %s: the deployment has %s to %s", o.Stream, StreamName(0), StreamName(t.Partitions-1))
		}
		names = []string{o.Stream}
	}
	return names, nil
}

// ReadTopology returns the topology recorded when the deployment was
// provisioned. It returns an error when nothing was provisioned (no
// registry bucket or no recorded topology), or the registry's error.
func ReadTopology(ctx context.Context, js jetstream.JetStream) (Topology, error) {
	kv, err := js.KeyValue(ctx, RegistryBucket)
	if err != nil {
		if errors.Is(err, jetstream.ErrBucketNotFound) {
			return Topology{}, fmt.Errorf("no mcpstream deployment here: bucket %s not found (run mcpstream provision)", RegistryBucket)
		}
		return Topology{}, fmt.Errorf("opening bucket %s: %w", RegistryBucket, err)
	}
	e, err := kv.Get(ctx, TopologyKey)
	if err != nil {
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			return Topology{}, fmt.Errorf("no mcpstream deployment here: no topology recorded in %s (run mcpstream provision)", RegistryBucket)
		}
		return Topology{}, fmt.Errorf("reading recorded topology: %w", err)
	}
	var t Topology
	if err := json.Unmarshal(e.Value(), &t); err != nil {
		return Topology{}, fmt.Errorf("decoding recorded topology: %w", err)
	}
	return t.WithDefaults(), nil
}

// item is what a stream's reader sends: a request, the number of
// requests its range holds (start), the end of its range (end), or the
// error that ended its read.
type item struct {
	rec   *Recorded
	total uint64
	start bool
	end   bool
	err   error
}

// readStream reads stream name, one of readers, for o: its range on
// rangeCh, ended by an end item, then (with o.Follow) what arrives later
// on live. It returns when ctx ends, after an error item, or after the
// range without Follow.
func readStream(ctx context.Context, js jetstream.JetStream, name string, readers int, o ReplayOptions, rangeCh, live chan<- item) {
	send := func(ch chan<- item, it item) bool {
		select {
		case ch <- it:
			return true
		case <-ctx.Done():
			return false
		}
	}
	out := rangeCh
	fail := func(err error) { send(out, item{err: fmt.Errorf("reading %s: %w", name, err)}) }
	s, err := js.Stream(ctx, name)
	if err != nil {
		fail(err)
		return
	}
	end := s.CachedInfo().State.LastSeq // the range ends here
	cfg := jetstream.OrderedConsumerConfig{InactiveThreshold: time.Minute, MaxResetAttempts: resetAttempts}
	if o.Group != "" {
		cfg.FilterSubjects = []string{RequestSubject(o.Group, partitionOf(name))}
	}
	switch {
	case o.StartSeq > 0:
		cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, o.StartSeq
	case !o.Since.IsZero():
		since := o.Since
		cfg.DeliverPolicy, cfg.OptStartTime = jetstream.DeliverByStartTimePolicy, &since
	}
	c, err := s.OrderedConsumer(ctx, cfg)
	if err != nil {
		fail(err)
		return
	}
	msgs, err := c.Messages(jetstream.PullMaxBytes(readLimit(js, s, readers)))
	if err != nil {
		fail(err)
		return
	}
	// The iterator's Next does not end with ctx while it makes its
	// consumer again: stopping it does.
	stop := context.AfterFunc(ctx, msgs.Stop)
	defer func() {
		stop()
		msgs.Stop()
		if info := c.CachedInfo(); info != nil {
			dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			_ = js.DeleteConsumer(dctx, name, info.Name)
			cancel()
		}
	}()
	var pending uint64
	if info := c.CachedInfo(); info != nil {
		pending = info.NumPending
	}
	inRange := pending > 0 && end > 0 && o.StartSeq <= end
	if !send(out, item{start: true, total: pending}) {
		return
	}
	endRange := func() bool {
		inRange = false
		if !send(out, item{end: true}) || !o.Follow {
			return false
		}
		out = live
		return true
	}
	if !inRange && !endRange() {
		return
	}
	var last *jetstream.MsgMetadata // of the last request read
	for {
		msg, err := msgs.Next(jetstream.NextMaxWait(idleCheck))
		if errors.Is(err, nats.ErrTimeout) {
			if inRange && ctx.Err() == nil && rangeOver(ctx, c, last) && !endRange() {
				return
			}
			continue
		}
		if err != nil {
			if ctx.Err() == nil {
				if errors.Is(err, jetstream.ErrStreamNotFound) {
					err = errors.New("the stream was deleted")
				}
				fail(err)
			}
			return
		}
		md, err := msg.Metadata()
		if err != nil {
			fail(err)
			return
		}
		last = md
		seq := md.Sequence.Stream
		if inRange && seq > end && !endRange() {
			return
		}
		if !o.Until.IsZero() && md.Timestamp.After(o.Until) {
			if inRange {
				send(out, item{end: true})
			}
			return
		}
		// A request stored before Since (StartSeq placed the read) is not
		// passed on, but still counts for the end of the range below: a
		// stream whose requests are all older must end its range too.
		if o.Since.IsZero() || !md.Timestamp.Before(o.Since) {
			rec := &Recorded{Stream: name, Seq: seq, Time: md.Timestamp, Live: !inRange}
			rec.Group, _, _ = ParseRequestSubject(msg.Subject())
			if rec.Envelope, rec.Err = schema.UnmarshalEnvelope(msg.Data()); rec.Err != nil {
				rec.Err = fmt.Errorf("%s seq %d: %w", name, seq, rec.Err)
			}
			if !send(out, item{rec: rec}) {
				return
			}
		}
		if inRange && (seq >= end || md.NumPending == 0) && !endRange() {
			return
		}
	}
}

// rangeOver reports whether c has nothing left to deliver (the range's
// requests it had not delivered are gone) and every request it delivered
// was read: last is the last one read, nil if none. An error reading c's
// state reports false: the next wait asks again.
func rangeOver(ctx context.Context, c jetstream.Consumer, last *jetstream.MsgMetadata) bool {
	info, err := c.Info(ctx)
	if err != nil || info.NumPending > 0 {
		return false
	}
	if last == nil || last.Consumer != info.Name {
		return info.Delivered.Consumer == 0 // made again since: it read none yet
	}
	return info.Delivered.Consumer <= last.Sequence.Consumer
}

// merger passes requests on: to o.Match, then emit, counting them for
// o.Limit and for o.Progress.
type merger struct {
	o           ReplayOptions
	emit        func(*Recorded) error
	read, total uint64
	emitted     int
}

// done reports whether the Limit is reached.
func (m *merger) done() bool { return m.o.Limit > 0 && m.emitted >= m.o.Limit }

// take passes one item on (or returns its error).
func (m *merger) take(it item) error {
	switch {
	case it.err != nil:
		return it.err
	case it.start:
		m.total += it.total
		return nil
	case it.rec == nil:
		return nil
	}
	rec := it.rec
	if m.o.Session != "" && (rec.Envelope == nil || rec.Envelope.Session != m.o.Session) {
		return nil
	}
	if m.o.Match != nil && !m.o.Match(rec) {
		return nil
	}
	m.emitted++
	return m.emit(rec)
}

// merge reads the streams' ranges, passing on at each step the request
// stored first among the streams' next ones, until every range has ended
// or the Limit is reached.
func (m *merger) merge(ctx context.Context, ranges []chan item) error {
	heads := make([]*Recorded, len(ranges))
	open := make([]bool, len(ranges))
	for i := range open {
		open[i] = true
	}
	for !m.done() {
		next := -1
		for i, ch := range ranges {
			for open[i] && heads[i] == nil {
				var it item
				select {
				case it = <-ch:
				case <-ctx.Done():
					return ctx.Err()
				}
				switch {
				case it.err != nil:
					return it.err
				case it.end:
					open[i] = false
				case it.start:
					m.total += it.total
				default:
					heads[i] = it.rec
				}
			}
			if heads[i] != nil && (next < 0 || before(heads[i], heads[next])) {
				next = i
			}
		}
		if next < 0 {
			return nil // every range has ended
		}
		rec := heads[next]
		heads[next] = nil
		m.read++
		if m.o.Progress != nil {
			m.o.Progress(m.read, max(m.total, m.read))
		}
		if err := m.take(item{rec: rec}); err != nil {
			return err
		}
	}
	return nil
}

// before orders requests of different streams: by the time stored, then
// by stream and sequence.
func before(a, b *Recorded) bool {
	if c := a.Time.Compare(b.Time); c != 0 {
		return c < 0
	}
	return cmp.Or(cmp.Compare(a.Stream, b.Stream), cmp.Compare(a.Seq, b.Seq)) < 0
}
