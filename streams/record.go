package streams

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/mcpstream/mcpstream/schema"
)

// Recorded results: a worker group that records them (workers'
// RecordResults) publishes every answer its handlers produce, the
// msgpack schema.Reply it sends the gateway (result or error, and the
// handler's duration), to a stream of its own, keyed by request key. Replay
// looks a request's answer up there.
const (
	recordPrefix       = "mcp.results."
	recordStreamPrefix = "MCP_RESULTS_"
	// recordMaxBytes is the default bound of a group's record stream.
	recordMaxBytes = 64 << 20
)

// Errors of [OpenRecords] and [Records.Lookup].
var (
	// ErrNotRecorded: the group's record stream holds no answer for the
	// request (it was not answered yet, ran before recording was on, or
	// its record was dropped as the stream's limits require).
	ErrNotRecorded = errors.New("streams: no recorded result")
	// ErrNoRecordStream: the group records no results.
	ErrNoRecordStream = errors.New("streams: the group records no results")
)

// RecordStream is the name of group's record stream: MCP_RESULTS_<group>.
func RecordStream(group string) string { return recordStreamPrefix + group }

// RecordSubject is the subject of the recorded answer to request key of
// group: mcp.results.<group>.<result key>.
func RecordSubject(group, key string) string { return recordPrefix + group + "." + ResultKey(key) }

// RecordConfig is the config of group's record stream: the answers of the
// last maxAge (default the request streams' MaxAge) within maxBytes
// (default 64 MiB), the oldest dropped first. It keeps one answer a
// request: a redelivered request's newer answer replaces the older.
func (t Topology) RecordConfig(group string, maxAge time.Duration, maxBytes int64) jetstream.StreamConfig {
	t = t.WithDefaults()
	if maxAge <= 0 {
		maxAge = t.MaxAge
	}
	if maxBytes <= 0 {
		maxBytes = recordMaxBytes
	}
	return jetstream.StreamConfig{
		Name:              RecordStream(group),
		Description:       "mcpstream recorded results of worker group " + group,
		Subjects:          []string{recordPrefix + group + ".*"},
		Retention:         jetstream.LimitsPolicy,
		Discard:           jetstream.DiscardOld,
		MaxAge:            maxAge,
		MaxBytes:          maxBytes,
		MaxMsgSize:        t.MaxMsgSize,
		MaxMsgsPerSubject: 1,
		AllowDirect:       true,
		Storage:           t.storage(),
		Replicas:          t.Replicas,
	}
}

// Records reads a group's recorded answers.
type Records struct {
	group string
	s     jetstream.Stream
}

// OpenRecords opens group's record stream. It returns an error wrapping
// [ErrNoRecordStream] when the group has none, and the JetStream error
// otherwise.
func OpenRecords(ctx context.Context, js jetstream.JetStream, group string) (*Records, error) {
	s, err := js.Stream(ctx, RecordStream(group))
	if err != nil {
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			return nil, fmt.Errorf("group %s: %w", group, ErrNoRecordStream)
		}
		return nil, fmt.Errorf("opening stream %s: %w", RecordStream(group), err)
	}
	return &Records{group: group, s: s}, nil
}

// Lookup returns the recorded answer to request key, and when it was
// stored (a direct get of the key's subject). It returns an error wrapping
// [ErrNotRecorded] when the stream holds none, and the JetStream error
// otherwise.
func (r *Records) Lookup(ctx context.Context, key string) (*schema.Reply, time.Time, error) {
	m, err := r.s.GetLastMsgForSubject(ctx, RecordSubject(r.group, key))
	if err != nil {
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return nil, time.Time{}, fmt.Errorf("request %s of group %s: %w", key, r.group, ErrNotRecorded)
		}
		return nil, time.Time{}, fmt.Errorf("looking up %s in stream %s: %w", key, RecordStream(r.group), err)
	}
	rep, err := schema.UnmarshalReply(m.Data)
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("reading the record of %s: %w", key, err)
	}
	return rep, m.Time, nil
}
