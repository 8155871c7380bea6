package streams

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// TopologyKey is the registry key under which [Provision] records the
// topology, so that gateways and workers agree on the partition count.
const TopologyKey = "config.topology"

// Provision creates or updates every stream and bucket of t:
//
//   - the request streams MCP_REQ_0 to MCP_REQ_<Partitions-1> ([Topology.StreamConfig]);
//   - the events stream [EventsStream] ([Topology.EventsConfig]);
//   - the dead-letter stream [DLQStream] ([Topology.DLQConfig]);
//   - the buckets [RegistryBucket], [SessionBucket], [ResultBucket] and
//     [TaskBucket], the session and result buckets made to drop their
//     oldest entries when full;
//
// and records t in the registry bucket under [TopologyKey]. It creates no
// consumer (a worker group's are made by [EnsureGroup]) and no
// request-state key ([StateKey] makes it on first use). It is idempotent;
// run it again with a changed t to update limits (every field of t: start
// from [RecordedTopology] to change some and keep the others). It does
// not change the partition count of a recorded topology: running gateways and
// workers read it once, at start, and a request on a partition the others
// do not serve would wait out its deadline; it returns
// [ErrPartitionsChanged] instead, before changing anything. It returns an
// error for a t the server would refuse ([Topology.Validate]), and the
// first JetStream error, wrapped with the stream or bucket being
// provisioned.
func Provision(ctx context.Context, js jetstream.JetStream, t Topology) error {
	t = t.WithDefaults()
	if err := t.Validate(); err != nil {
		return err
	}
	rec, ok, err := RecordedTopology(ctx, js)
	if err != nil {
		return err
	}
	if ok && rec.Partitions != t.Partitions {
		return fmt.Errorf("%w: provisioning %d request partitions, the deployment has %d (%s): stop every gateway and worker, delete the request streams %s to %s and the registry key %s, then provision again",
			ErrPartitionsChanged, t.Partitions, rec.Partitions, TopologyKey, StreamName(0), StreamName(rec.Partitions-1), TopologyKey)
	}
	for p := 0; p < t.Partitions; p++ {
		if _, err := js.CreateOrUpdateStream(ctx, t.StreamConfig(p)); err != nil {
			return fmt.Errorf("provisioning stream %s: %w", StreamName(p), err)
		}
	}
	if _, err := js.CreateOrUpdateStream(ctx, t.EventsConfig()); err != nil {
		return fmt.Errorf("provisioning stream %s: %w", EventsStream, err)
	}
	if _, err := js.CreateOrUpdateStream(ctx, t.DLQConfig()); err != nil {
		return fmt.Errorf("provisioning stream %s: %w", DLQStream, err)
	}
	var reg jetstream.KeyValue
	for _, cfg := range []jetstream.KeyValueConfig{t.RegistryConfig(), t.TaskConfig()} {
		kv, err := js.CreateOrUpdateKeyValue(ctx, cfg)
		if err != nil {
			return fmt.Errorf("provisioning bucket %s: %w", cfg.Bucket, err)
		}
		if cfg.Bucket == RegistryBucket {
			reg = kv
		}
	}
	for _, cfg := range []jetstream.KeyValueConfig{t.SessionConfig(), t.ResultConfig()} {
		if err := provisionEvicting(ctx, js, cfg); err != nil {
			return err
		}
	}
	b, err := json.Marshal(t)
	if err != nil {
		return fmt.Errorf("encoding topology: %w", err)
	}
	if _, err := reg.Put(ctx, TopologyKey, b); err != nil {
		return fmt.Errorf("recording topology: %w", err)
	}
	return nil
}

// ErrPartitionsChanged is what [Provision] returns for a topology whose
// partition count differs from the recorded one.
var ErrPartitionsChanged = errors.New("streams: the partition count of a provisioned deployment does not change")

// RecordedTopology returns the topology [Provision] recorded (with its
// defaults), and false when none is recorded yet. The error is the
// registry's.
func RecordedTopology(ctx context.Context, js jetstream.JetStream) (Topology, bool, error) {
	kv, err := js.KeyValue(ctx, RegistryBucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		return Topology{}, false, nil
	}
	if err != nil {
		return Topology{}, false, fmt.Errorf("opening bucket %s: %w", RegistryBucket, err)
	}
	e, err := kv.Get(ctx, TopologyKey)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return Topology{}, false, nil
	}
	if err != nil {
		return Topology{}, false, fmt.Errorf("reading recorded topology: %w", err)
	}
	var rec Topology
	if err := json.Unmarshal(e.Value(), &rec); err != nil {
		return Topology{}, false, fmt.Errorf("decoding recorded topology: %w", err)
	}
	return rec.WithDefaults(), true, nil
}

// Ensure provisions t only if the topology has never been provisioned, and
// returns the topology in force: the recorded one when there is one, so that
// a process started with other flags cannot split partitions. It returns the
// error of [Provision] or of reading the registry.
func Ensure(ctx context.Context, js jetstream.JetStream, t Topology) (Topology, error) {
	rec, ok, err := RecordedTopology(ctx, js)
	if err != nil || ok {
		return rec, err
	}
	t = t.WithDefaults()
	return t, Provision(ctx, js, t)
}

// EnsureGroup creates or updates group's durable consumer on every partition
// stream and returns them in partition order. It returns an error for an
// invalid group name or the first JetStream error.
func EnsureGroup(ctx context.Context, js jetstream.JetStream, t Topology, group string) ([]jetstream.Consumer, error) {
	if err := CheckName("group", group); err != nil {
		return nil, err
	}
	t = t.WithDefaults()
	out := make([]jetstream.Consumer, t.Partitions)
	for p := range out {
		c, err := js.CreateOrUpdateConsumer(ctx, StreamName(p), t.ConsumerConfig(group, p))
		if err != nil {
			return nil, fmt.Errorf("provisioning consumer %s on %s: %w", ConsumerName(group), StreamName(p), err)
		}
		out[p] = c
	}
	return out, nil
}

func itoa(i int) string { return strconv.Itoa(i) }

// provisionEvicting creates or updates a bucket that evicts its oldest
// entries when it reaches its MaxBytes. Buckets refuse puts when full
// (Discard New), which suits the registry and tasks. But results are a
// cache for redeliveries, and a full result bucket would refuse every result
// until TTLs freed room; and a full session bucket would refuse every new
// session, when evicting the oldest only sends their clients, answered 404,
// to start new ones. An existing bucket is updated in one stream update
// that keeps Discard Old: updating it as a bucket would set Discard New
// until a second update, refusing entries in between.
func provisionEvicting(ctx context.Context, js jetstream.JetStream, cfg jetstream.KeyValueConfig) error {
	name := "KV_" + cfg.Bucket
	s, err := js.Stream(ctx, name)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		// A new bucket is empty: nothing is refused before the update below.
		if _, err := js.CreateKeyValue(ctx, cfg); err != nil && !errors.Is(err, jetstream.ErrBucketExists) {
			return fmt.Errorf("provisioning bucket %s: %w", cfg.Bucket, err)
		}
		s, err = js.Stream(ctx, name)
	}
	if err != nil {
		return fmt.Errorf("opening stream %s: %w", name, err)
	}
	sc := s.CachedInfo().Config
	sc.Description = cfg.Description
	sc.MaxMsgsPerSubject = int64(max(cfg.History, 1))
	sc.MaxBytes = cfg.MaxBytes
	if sc.MaxBytes == 0 {
		sc.MaxBytes = -1
	}
	sc.MaxAge = cfg.TTL
	sc.Duplicates = 2 * time.Minute // nats.go's for a bucket: at most 2 minutes, at most the TTL
	if cfg.TTL > 0 && cfg.TTL < sc.Duplicates {
		sc.Duplicates = cfg.TTL
	}
	sc.Replicas = max(cfg.Replicas, 1)
	if cfg.LimitMarkerTTL != 0 {
		sc.AllowMsgTTL, sc.SubjectDeleteMarkerTTL = true, cfg.LimitMarkerTTL
	}
	sc.Discard = jetstream.DiscardOld
	if _, err := js.UpdateStream(ctx, sc); err != nil {
		return fmt.Errorf("provisioning bucket %s: %w", cfg.Bucket, err)
	}
	return nil
}

// StateKeyKey is the registry key holding the secret with which workers
// sign the requestState of input-required results. Whoever can read the
// registry bucket can read it: NATS access is the trust boundary.
const StateKeyKey = "config.state-key"

// StateKey returns the deployment's request-state signing secret (32
// random bytes), creating it on first use; concurrent first uses agree on
// one. It returns the registry bucket's error.
func StateKey(ctx context.Context, reg jetstream.KeyValue) ([]byte, error) {
	for {
		e, err := reg.Get(ctx, StateKeyKey)
		if err == nil {
			if len(e.Value()) < 32 {
				return nil, fmt.Errorf("%s holds %d bytes, want 32 or more", StateKeyKey, len(e.Value()))
			}
			return e.Value(), nil
		}
		if !errors.Is(err, jetstream.ErrKeyNotFound) {
			return nil, fmt.Errorf("reading %s: %w", StateKeyKey, err)
		}
		key := make([]byte, 32)
		_, _ = rand.Read(key)
		if _, err := reg.Create(ctx, StateKeyKey, key); err == nil {
			return key, nil
		} else if !errors.Is(err, jetstream.ErrKeyExists) {
			return nil, fmt.Errorf("creating %s: %w", StateKeyKey, err)
		}
		// Another process created it first: read theirs.
	}
}

// TaskBucketOf opens the task bucket, creating it with t's configuration if
// a deployment provisioned before it existed lacks it. It returns the
// JetStream error.
func TaskBucketOf(ctx context.Context, js jetstream.JetStream, t Topology) (jetstream.KeyValue, error) {
	kv, err := js.KeyValue(ctx, TaskBucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		kv, err = js.CreateOrUpdateKeyValue(ctx, t.TaskConfig())
	}
	if err != nil {
		return nil, fmt.Errorf("opening bucket %s: %w", TaskBucket, err)
	}
	return kv, nil
}

// EventsStreamOf opens the events stream, creating it with t's
// configuration if a deployment provisioned before it existed lacks it. It
// returns the JetStream error.
func EventsStreamOf(ctx context.Context, js jetstream.JetStream, t Topology) (jetstream.Stream, error) {
	st, err := js.Stream(ctx, EventsStream)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		st, err = js.CreateOrUpdateStream(ctx, t.EventsConfig())
	}
	if err != nil {
		return nil, fmt.Errorf("opening stream %s: %w", EventsStream, err)
	}
	return st, nil
}
