package streams

import (
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Topology sizes the JetStream layout. The zero value is usable: every zero
// field takes the default named on it.
type Topology struct {
	// Partitions is the number of request streams (default 4).
	Partitions int
	// Replicas of every stream and bucket (default 1; 3 in a cluster).
	Replicas int
	// Storage of request streams (default file).
	Memory bool
	// MaxAge keeps requests for replay this long (default 1h).
	MaxAge time.Duration
	// MaxBytes bounds each partition stream (default 256 MiB); the oldest
	// requests are dropped to stay within it.
	MaxBytes int64
	// MaxMsgSize bounds one envelope (default 8 MiB).
	MaxMsgSize int32
	// DuplicateWindow is how long a request stream remembers a request's
	// Nats-Msg-Id, to drop a copy the gateway publishes again (default
	// 60s, the gateway's default call deadline). A gateway publishes a
	// request again under the same id only while the stream has not
	// acknowledged it (two to three seconds after a lost acknowledgement,
	// at once when a new stream leader is elected, and with a backoff of
	// up to a second while the stream has no leader), and never past the
	// call's deadline (the gateway's --call-timeout). A window at least
	// that long therefore drops every copy, and no call runs twice for
	// it; keep it at least the gateways' --call-timeout. The window is
	// held in the NATS server's memory, about 200 bytes a request: at
	// 8,000 calls/s the former default of 2m was 195 MB of live heap, 60s
	// is half of it. A copy stored after the window anyway (a gateway with
	// a longer call timeout) carries Attempt > 1, and a worker answers it
	// from the result bucket if the first copy's run stored its result.
	DuplicateWindow time.Duration
	// AckWait is how long a worker may hold an envelope without telling
	// the server it is working on it before the server redelivers it to
	// another replica (default 4s). Workers tell it every quarter AckWait
	// while a handler runs or an envelope waits for a free handler, so a
	// live worker keeps what it holds however long it takes, and the calls
	// a replica held when it died run elsewhere about AckWait later.
	AckWait time.Duration
	// MaxDeliver bounds deliveries of one envelope (default 5): an
	// envelope whose runs fail that often (its replicas die, or its stored
	// result cannot be read) is delivered no more. A draining replica that
	// hands an envelope back on its last delivery publishes it again.
	MaxDeliver int
	// MaxAckPending bounds what a group holds unacked per partition, over all
	// its replicas (default 4096; at least replicas x batch).
	MaxAckPending int
	// SessionTTL is how long an unused session lives in the session bucket
	// (default 24h): gateways store a session in use (a request, or an
	// open event stream) again every quarter of it, so that only sessions
	// left unused for SessionTTL expire.
	SessionTTL time.Duration
	// SessionMaxBytes bounds the session bucket (default 1 GiB): past it
	// the oldest sessions are evicted, and their clients, answered 404,
	// start new ones. A flood of initialize requests cannot fill the disk.
	SessionMaxBytes int64
	// ResultTTL is how long results stay in the result bucket (default 10m).
	ResultTTL time.Duration
	// TaskTTL is how long a task (tasks extension) lives in the task bucket
	// after it was created (default 1h).
	TaskTTL time.Duration
}

// DefaultDuplicateWindow is [Topology.DuplicateWindow]'s default: the
// gateway's default call deadline (gateway.Config.CallTimeout), the
// longest a gateway publishes the same request again, or MaxAge if that
// is shorter (a stream cannot remember ids longer than it keeps
// messages). See docs/operations.md#the-duplicate-window.
const DefaultDuplicateWindow = 60 * time.Second

// Validate reports what in t (with its defaults) the server would refuse,
// in the words of the setting: a duplicate window longer than the
// request streams' MaxAge.
func (t Topology) Validate() error {
	t = t.WithDefaults()
	if t.DuplicateWindow > t.MaxAge {
		return fmt.Errorf("the duplicate window (%v) is longer than the request streams' max age (%v): a stream cannot remember request ids longer than it keeps the requests", t.DuplicateWindow, t.MaxAge)
	}
	return nil
}

// WithDefaults returns t with every zero field set to its default.
func (t Topology) WithDefaults() Topology {
	def := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	if t.Partitions <= 0 {
		t.Partitions = 4
	}
	if t.Replicas <= 0 {
		t.Replicas = 1
	}
	if t.MaxBytes <= 0 {
		t.MaxBytes = 256 << 20
	}
	if t.SessionMaxBytes <= 0 {
		t.SessionMaxBytes = 1 << 30
	}
	if t.MaxMsgSize <= 0 {
		t.MaxMsgSize = 8 << 20
	}
	if t.MaxDeliver <= 0 {
		t.MaxDeliver = 5
	}
	if t.MaxAckPending <= 0 {
		t.MaxAckPending = 4096
	}
	def(&t.MaxAge, time.Hour)
	def(&t.DuplicateWindow, min(DefaultDuplicateWindow, t.MaxAge))
	def(&t.AckWait, 4*time.Second)
	def(&t.SessionTTL, 24*time.Hour)
	def(&t.TaskTTL, time.Hour)
	def(&t.ResultTTL, 10*time.Minute)
	return t
}

func (t Topology) storage() jetstream.StorageType {
	if t.Memory {
		return jetstream.MemoryStorage
	}
	return jetstream.FileStorage
}

// StreamConfig is the config of partition p's request stream: Limits
// retention so it can be replayed, bounded by MaxAge and MaxBytes, with
// Discard Old. Answered requests stay in the stream and count against its
// limits, so under sustained traffic it is always full: the oldest requests
// make room and the replay window shrinks to MaxBytes worth of traffic.
// Discard New would instead refuse every request until MaxAge freed room.
// A request is dropped unrun only if it is older than that window, so size
// MaxBytes for a window longer than the longest call deadline (see
// docs/capacity.md).
func (t Topology) StreamConfig(p int) jetstream.StreamConfig {
	t = t.WithDefaults()
	return jetstream.StreamConfig{
		Name:        StreamName(p),
		Description: "mcpstream requests, partition " + itoa(p),
		Subjects:    streamSubjects(p),
		Retention:   jetstream.LimitsPolicy,
		Discard:     jetstream.DiscardOld,
		MaxAge:      t.MaxAge,
		MaxBytes:    t.MaxBytes,
		MaxMsgSize:  t.MaxMsgSize,
		Storage:     t.storage(),
		Replicas:    t.Replicas,
		Duplicates:  t.DuplicateWindow,
	}
}

// DLQConfig is the config of the dead-letter stream.
func (t Topology) DLQConfig() jetstream.StreamConfig {
	t = t.WithDefaults()
	return jetstream.StreamConfig{
		Name:        DLQStream,
		Description: "mcpstream envelopes that could not be processed",
		Subjects:    []string{dlqPrefix + ">"},
		Retention:   jetstream.LimitsPolicy,
		Discard:     jetstream.DiscardOld,
		MaxAge:      7 * 24 * time.Hour,
		MaxBytes:    t.MaxBytes,
		Storage:     jetstream.FileStorage,
		Replicas:    t.Replicas,
	}
}

// EventsConfig is the events stream: what session event streams carry,
// kept a while so a client can resume its stream, on any gateway, with
// Last-Event-ID. Old events go first; they are advisory.
func (t Topology) EventsConfig() jetstream.StreamConfig {
	t = t.WithDefaults()
	return jetstream.StreamConfig{
		Name:        EventsStream,
		Description: "mcpstream server events for session event streams (resumable)",
		Subjects:    []string{eventsPrefix + ">"},
		Retention:   jetstream.LimitsPolicy,
		Discard:     jetstream.DiscardOld,
		MaxAge:      EventsMaxAge,
		MaxMsgs:     100_000,
		MaxBytes:    min(t.MaxBytes, 64<<20),
		Duplicates:  2 * time.Minute,
		Storage:     jetstream.FileStorage,
		Replicas:    t.Replicas,
	}
}

// EventsMaxAge is how long events can be resumed.
const EventsMaxAge = 15 * time.Minute

// ConsumerConfig is the durable pull consumer of group on partition p,
// shared by all the group's replicas (competing consumers).
func (t Topology) ConsumerConfig(group string, p int) jetstream.ConsumerConfig {
	t = t.WithDefaults()
	return jetstream.ConsumerConfig{
		Durable:       ConsumerName(group),
		Description:   "mcpstream worker group " + group,
		FilterSubject: RequestSubject(group, p),
		DeliverPolicy: jetstream.DeliverAllPolicy,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       t.AckWait,
		MaxDeliver:    t.MaxDeliver,
		MaxAckPending: t.MaxAckPending,
		Replicas:      t.Replicas,
	}
}

// RegistryConfig is the registry bucket: one revision a key, and limit
// markers so heartbeats can carry a per-key TTL and watchers see them expire.
func (t Topology) RegistryConfig() jetstream.KeyValueConfig {
	t = t.WithDefaults()
	return jetstream.KeyValueConfig{
		Bucket:         RegistryBucket,
		Description:    "mcpstream tools and worker heartbeats",
		History:        1,
		Storage:        jetstream.FileStorage,
		Replicas:       t.Replicas,
		LimitMarkerTTL: time.Minute,
	}
}

// SessionConfig is the session bucket. Limit markers let a deleted or
// expired session's marker expire too, and tell every gateway's watcher.
func (t Topology) SessionConfig() jetstream.KeyValueConfig {
	t = t.WithDefaults()
	return jetstream.KeyValueConfig{
		Bucket:         SessionBucket,
		Description:    "mcpstream sessions",
		History:        1,
		TTL:            t.SessionTTL,
		MaxBytes:       t.SessionMaxBytes,
		Storage:        jetstream.FileStorage,
		Replicas:       t.Replicas,
		LimitMarkerTTL: time.Minute,
	}
}

// TaskConfig is the task bucket: on disk whatever the topology's storage,
// since a task must outlive every process that works on it.
func (t Topology) TaskConfig() jetstream.KeyValueConfig {
	c := t.ResultConfig()
	c.Bucket, c.Description = TaskBucket, "mcpstream tasks (io.modelcontextprotocol/tasks) by task id"
	c.TTL, c.Storage = t.WithDefaults().TaskTTL, jetstream.FileStorage
	return c
}

// ResultConfig is the result bucket: results by request key, and the
// claims of requests being run ([ClaimKey]), which carry their own TTL.
func (t Topology) ResultConfig() jetstream.KeyValueConfig {
	t = t.WithDefaults()
	return jetstream.KeyValueConfig{
		Bucket:      ResultBucket,
		Description: "mcpstream recent results by request key",
		History:     1,
		TTL:         t.ResultTTL,
		MaxBytes:    t.MaxBytes,
		Storage:     t.storage(),
		Replicas:    t.Replicas,
		// Per-key TTLs, for the claims of requests being run (ClaimKey).
		LimitMarkerTTL: time.Minute,
	}
}
