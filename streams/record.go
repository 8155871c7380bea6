package streams

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/mcpstream/mcpstream/schema"
)

// A worker group that records its results (workers.Options.RecordResults)
// publishes every answer its handlers produce, the msgpack schema.Reply
// it sends the gateway, to mcp.results.<group>.<ResultKey(key)>, captured
// by the group's own stream MCP_RESULTS_<group>.
const (
	recordPrefix       = "mcp.results."
	recordStreamPrefix = "MCP_RESULTS_"
)

// DefaultRecordMaxBytes is the default bound of a record stream (64 MiB).
const DefaultRecordMaxBytes = 64 << 20

// ErrNotRecorded is returned (wrapped) by [LookupRecord] when the group's
// record stream holds no record of the request: it was not run by a
// replica recording results, not answered yet, or dropped by the stream's
// limits.
var ErrNotRecorded = errors.New("streams: result not recorded")

// ErrNoRecordStream is returned (wrapped) by [LookupRecord] when the group
// has no record stream: none of its replicas ever ran with results
// recorded.
var ErrNoRecordStream = errors.New("streams: group records no results")

// RecordStream is the name of group's record stream: MCP_RESULTS_<group>.
func RecordStream(group string) string { return recordStreamPrefix + group }

// RecordSubject is the subject of the record of request key in group's
// record stream: mcp.results.<group>.<ResultKey(key)>.
func RecordSubject(group, key string) string { return recordPrefix + group + "." + ResultKey(key) }

// RecordConfig is the config of group's record stream: Limits retention,
// bounded by maxAge (default the topology's MaxAge) and maxBytes (default
// [DefaultRecordMaxBytes]), the oldest records dropped first. It keeps one
// record a request (MaxMsgsPerSubject 1), so that the record of a
// redelivered request's new run replaces the older one, and allows direct
// gets, which read the last record of a subject from any replica without
// the stream's leader.
func (t Topology) RecordConfig(group string, maxAge time.Duration, maxBytes int64) jetstream.StreamConfig {
	t = t.WithDefaults()
	if maxAge <= 0 {
		maxAge = t.MaxAge
	}
	if maxBytes <= 0 {
		maxBytes = DefaultRecordMaxBytes
	}
	return jetstream.StreamConfig{
		Name:              RecordStream(group),
		Description:       "mcpstream results of worker group " + group + " by request key, with their run time",
		Subjects:          []string{recordPrefix + group + ".*"},
		Retention:         jetstream.LimitsPolicy,
		Discard:           jetstream.DiscardOld,
		MaxAge:            maxAge,
		MaxBytes:          maxBytes,
		MaxMsgsPerSubject: 1,
		MaxMsgSize:        t.MaxMsgSize,
		AllowDirect:       true,
		Storage:           t.storage(),
		Replicas:          t.Replicas,
	}
}

// Records reads the records of one group's record stream.
type Records struct {
	group string
	s     jetstream.Stream
}

// OpenRecords opens group's record stream, for looking up many requests
// ([Records.Lookup]). It returns the error of [CheckName] for an invalid
// group name, one wrapping [ErrNoRecordStream] when group has no record
// stream, and the JetStream error, wrapped, otherwise.
func OpenRecords(ctx context.Context, js jetstream.JetStream, group string) (*Records, error) {
	if err := CheckName("group", group); err != nil {
		return nil, fmt.Errorf("opening the records of %s: %w", group, err)
	}
	s, err := js.Stream(ctx, RecordStream(group))
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil, fmt.Errorf("opening %s: %w", RecordStream(group), ErrNoRecordStream)
	}
	if err != nil {
		return nil, fmt.Errorf("opening stream %s: %w", RecordStream(group), err)
	}
	return &Records{group: group, s: s}, nil
}

// Lookup returns the last record of request key, decoded, and when the
// stream stored it (a direct get of the key's subject). RunNs of the
// reply is how long the handler ran; its Result refers to memory it alone
// holds.
//
// It returns an error wrapping [ErrNotRecorded] when the stream holds no
// record of key, one wrapping the decoding error for a record that cannot
// be decoded, and the JetStream error, wrapped, otherwise (the server
// unreachable or ctx done).
func (r *Records) Lookup(ctx context.Context, key string) (*schema.Reply, time.Time, error) {
	name := RecordStream(r.group)
	m, err := r.s.GetLastMsgForSubject(ctx, RecordSubject(r.group, key))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil, time.Time{}, fmt.Errorf("looking up the record of %s in %s: %w", key, name, ErrNotRecorded)
	}
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("looking up the record of %s in %s: %w", key, name, err)
	}
	rep, err := schema.UnmarshalReply(m.Data) // m.Data is ours: rep may refer to it
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("record of %s in %s (sequence %d): %w", key, name, m.Sequence, err)
	}
	return rep, m.Time, nil
}

// LookupRecord looks one request's record up: [OpenRecords], then
// [Records.Lookup], with their errors.
func LookupRecord(ctx context.Context, js jetstream.JetStream, group, key string) (*schema.Reply, time.Time, error) {
	r, err := OpenRecords(ctx, js, group)
	if err != nil {
		return nil, time.Time{}, err
	}
	return r.Lookup(ctx, key)
}
