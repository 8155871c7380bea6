package workers

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mcpstream/mcpstream/internal/logging"
	"github.com/mcpstream/mcpstream/streams"
)

// recorder publishes the answers of a group's handlers to the group's
// record stream (Options.RecordResults), never waiting on the call's path.
type recorder struct {
	group string
	// js is the recorder's own JetStream context: its publishes have an
	// acknowledgement timeout, so that a record whose acknowledgement
	// never comes is forgotten, an error handler, which logs failures, and
	// a bound on those in flight of their own, so that records never hold
	// up the result bucket's writes, nor these the records.
	js  jetstream.JetStream
	log *slog.Logger
	// maxPending is how many records may await their acknowledgement;
	// past it a record is dropped rather than published.
	maxPending int
	// repeats spaces the warnings about lost records (recordWarnEvery).
	repeats logging.Repeats
}

const (
	// recordMaxPending bounds the records awaiting their
	// acknowledgement: a stream that far behind loses records instead of
	// slowing the calls.
	recordMaxPending = 4096
	// recordAckWait is how long a record's acknowledgement is awaited
	// before the record counts as lost.
	recordAckWait = 10 * time.Second
	// recordWarnEvery spaces the warnings about lost records; the others
	// are logged at debug level.
	recordWarnEvery = 10 * time.Second
)

// newRecorder creates or updates group's record stream with the limits of
// o, and returns a recorder publishing to it on nc.
func newRecorder(ctx context.Context, nc *nats.Conn, js jetstream.JetStream, topo streams.Topology, group string, o Options) (*recorder, error) {
	cfg := topo.RecordConfig(group, o.RecordMaxAge, o.RecordMaxBytes)
	if _, err := js.CreateOrUpdateStream(ctx, cfg); err != nil {
		return nil, fmt.Errorf("creating or updating record stream %s: %w", cfg.Name, err)
	}
	rec := &recorder{group: group, log: o.Logger.With("group", group, "instance", o.Instance), maxPending: recordMaxPending,
		repeats: logging.Repeats{Every: recordWarnEvery}}
	// The publisher's own bound is Concurrency above maxPending: each
	// pool goroutine records one answer at a time, so a publish that
	// passed record's check never stalls the call.
	var err error
	rec.js, err = jetstream.New(nc,
		jetstream.WithPublishAsyncErrHandler(func(_ jetstream.JetStream, m *nats.Msg, err error) { rec.lost(m.Subject, err) }),
		jetstream.WithPublishAsyncTimeout(recordAckWait),
		jetstream.WithPublishAsyncMaxPending(recordMaxPending+o.Concurrency))
	if err != nil {
		return nil, fmt.Errorf("opening JetStream for records: %w", err)
	}
	return rec, nil
}

// record publishes b, the encoded schema.Reply a handler's run answered
// request key with, to the record stream, without waiting for the
// stream's acknowledgement. A record that cannot be published is logged
// and lost. rec may be nil: it records nothing.
func (rec *recorder) record(key string, b []byte) {
	if rec == nil {
		return
	}
	subject := streams.RecordSubject(rec.group, key)
	if n := rec.js.PublishAsyncPending(); n >= rec.maxPending {
		rec.lost(subject, fmt.Errorf("%d records await their acknowledgement", n))
		return
	}
	if _, err := rec.js.PublishAsync(subject, b); err != nil {
		rec.lost(subject, err)
	}
}

// lost logs a record that was not stored: at warning level at most once
// every recordWarnEvery, with the count lost in between, else at debug
// level. It names the record's subject (the request's key, or its hash),
// never the arguments or the result.
func (rec *recorder) lost(subject string, err error) {
	rec.repeats.Warn(context.Background(), rec.log, "record", "recording a result", "subject", subject, "err", err)
}
