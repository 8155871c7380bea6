package gateway

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/mcpstream/mcpstream/internal/logging"
	"github.com/mcpstream/mcpstream/schema"
	"github.com/mcpstream/mcpstream/streams"
)

// errNoSession is returned for a session id that does not exist (never did,
// expired or was deleted): HTTP 404.
var errNoSession = errors.New("session not found")

// sessionRecord is a session as stored in the session bucket.
type sessionRecord struct {
	Revision     string                `json:"revision"`
	Principal    string                `json:"principal,omitempty"`
	ClientInfo   schema.Implementation `json:"clientInfo"`
	Capabilities json.RawMessage       `json:"capabilities,omitempty"`
	CreatedAt    time.Time             `json:"createdAt"`
	Gateway      string                `json:"gateway"`
	LogLevel     string                `json:"logLevel,omitempty"`
	// Subscriptions are the resource URIs the client subscribed to.
	Subscriptions []string `json:"subscriptions,omitempty"`
	// Transport is "sse" for a session of the 2024-11-05 HTTP+SSE
	// transport, empty for Streamable HTTP.
	Transport string `json:"transport,omitempty"`
	// CallMarks is set on an HTTP+SSE session whose stream's holder
	// takes the markers of its POSTs (sseCallMarker); a gateway of an
	// older version, which would pass them to the client as empty
	// messages, does not set it, and gets none.
	CallMarks bool `json:"callMarks,omitempty"`
}

// session is a session cached in this gateway. Of its record, Principal
// and Transport never change and are read as they are; the fields an
// update changes are read through client, logLevel and subs, which are
// replaced whole (applyRecord), so requests read them without a lock.
type session struct {
	id string
	sessionRecord
	// inflight counts this session's requests waiting on workers here.
	inflight atomic.Int32
	// recMu serializes changes to the record (update, refresh).
	recMu sync.Mutex
	// rev is the bucket revision of the record applied last (under recMu;
	// 0 when unknown). The bucket's watch delivers every change, this
	// gateway's own included, after the fact: one older than what update
	// or get already applied here is skipped, or it would undo the change
	// until the next arrived (a client's capabilities lost between its
	// initialize and the watch catching up).
	rev uint64
	// client is what the client declared in initialize. An HTTP+SSE
	// session's initialize comes after the stream that opened the
	// session, and replaces it on every gateway.
	client atomic.Pointer[clientState]
	// logLevel is the index in logLevels of the least severe log message
	// the client wants (0, debug: all).
	logLevel atomic.Int32
	// subs is the set of Subscriptions.
	subs atomic.Pointer[map[string]struct{}]
	// quiet is set for a stateless request that asked for no log messages.
	quiet bool
	// inputResponses and requestState are a stateless request's retry
	// inputs (JSON), passed on to the worker.
	inputResponses []byte
	requestState   string
	// openStreams counts the session's event streams open, or being
	// opened, here: a session with one stays cached. It is more than one
	// only for a moment, while a new GET replaces the stream. stream is
	// the one that delivers the session's events here.
	openStreams atomic.Int32
	stream      atomic.Pointer[eventStream]
	// sseCalls counts the requests of an HTTP+SSE session posted here
	// whose answers are not yet published: a draining gateway keeps the
	// session's stream open for them. sseCallsAnywhere are the POSTs of
	// the session, to any gateway, whose answers are not all published yet,
	// as the stream's holder hears of them (sseCallsHeard).
	sseCalls         inFlight
	sseCallsAnywhere sseCallsHeard
	// gone is closed when the session is deleted, to end its streams.
	gone     chan struct{}
	goneOnce sync.Once
	// storedAt is when the record applied last was stored (Unix
	// nanoseconds): the bucket's TTL runs from it. touching is set while
	// a request stores the record again to keep the session (keep).
	storedAt atomic.Int64
	touching atomic.Bool
}

// clientState is what a session's client declared: the revision
// negotiated and its capabilities, as JSON and compacted to msgpack for
// envelopes (nil when none).
type clientState struct {
	revision     string
	capabilities json.RawMessage
	capsMP       []byte
}

// newSession is the session id (none for a stateless request's) with
// record rec.
func newSession(id string, rec sessionRecord) *session {
	s := &session{id: id, sessionRecord: rec, gone: make(chan struct{})}
	s.applyRecord(rec)
	return s
}

// revision is the session's revision.
func (s *session) revision() string { return s.client.Load().revision }

// capabilities are the client's capabilities (JSON).
func (s *session) capabilities() json.RawMessage { return s.client.Load().capabilities }

// clientCaps are the client's capabilities as msgpack (nil if none).
func (s *session) clientCaps() []byte { return s.client.Load().capsMP }

// end marks the session ended and closes its event stream.
func (s *session) end() {
	s.goneOnce.Do(func() { close(s.gone) })
	if es := s.stream.Load(); es != nil {
		es.close()
	}
}

const sessionShards = 32

// sessions is the session store: the session bucket, fronted by a bounded
// cache. A watch of the bucket's deletes evicts sessions that another
// gateway ended. A session in use is stored again once a quarter of the
// bucket's TTL has passed since it was last stored (keep): the TTL is how
// long a session may stay unused, not how long it may live.
type sessions struct {
	kv     jetstream.KeyValue
	ttl    time.Duration // the bucket's; 0: none
	seed   maphash.Seed
	shards [sessionShards]sessionShard
	max    int // per shard
	log    *slog.Logger
	// repeats holds back repeats of a failure to save.
	repeats logging.Repeats
}

type sessionShard struct {
	mu sync.Mutex
	m  map[string]*session
}

func newSessions(kv jetstream.KeyValue, ttl time.Duration, maxCached int, log *slog.Logger) *sessions {
	s := &sessions{kv: kv, ttl: ttl, seed: maphash.MakeSeed(), log: log, max: max(1, maxCached/sessionShards)}
	for i := range s.shards {
		s.shards[i].m = map[string]*session{}
	}
	return s
}

// cached returns the number of sessions in the cache.
func (s *sessions) cached() int {
	n := 0
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		n += len(sh.m)
		sh.mu.Unlock()
	}
	return n
}

func (s *sessions) shard(id string) *sessionShard {
	return &s.shards[maphash.String(s.seed, id)%sessionShards]
}

// validSessionID reports whether id has the form this gateway issues: 32
// lowercase hex characters. Anything else cannot exist and is not looked up.
func validSessionID(id string) bool {
	if len(id) != 32 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// create stores a new session with a fresh id from crypto/rand.
func (s *sessions) create(ctx context.Context, rec sessionRecord) (*session, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, fmt.Errorf("generating session id: %w", err)
	}
	sess := newSession(hex.EncodeToString(b[:]), rec)
	val, err := json.Marshal(rec)
	if err != nil {
		return nil, fmt.Errorf("encoding session: %w", err)
	}
	attempt := 0
	err = withRetry(ctx, func() error {
		attempt++
		rev, err := s.kv.Create(ctx, sess.id, val)
		sess.rev = rev // the session is not shared yet
		sess.storedAt.Store(time.Now().UnixNano())
		if attempt > 1 && errors.Is(err, jetstream.ErrKeyExists) {
			return nil // an earlier attempt stored it; the id is ours alone
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("storing session: %w", err)
	}
	s.cache(sess)
	return sess, nil
}

func (s *sessions) cache(sess *session) {
	sh := s.shard(sess.id)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if len(sh.m) >= s.max {
		// Evict an arbitrary idle entry; it is reloaded from the bucket on
		// its next use.
		for id, old := range sh.m {
			if old.inflight.Load() == 0 && old.openStreams.Load() == 0 {
				delete(sh.m, id)
				break
			}
		}
	}
	sh.m[sess.id] = sess
}

// get returns the session, from the cache or the bucket, kept (keep) for
// the request using it. It returns errNoSession for an unknown id and a
// wrapped error when the bucket fails.
func (s *sessions) get(ctx context.Context, id string) (*session, error) {
	if !validSessionID(id) {
		return nil, errNoSession
	}
	sh := s.shard(id)
	sh.mu.Lock()
	sess := sh.m[id]
	sh.mu.Unlock()
	if sess != nil {
		s.keep(ctx, sess)
		return sess, nil
	}
	rec, rev, stored, err := s.load(ctx, id)
	if err != nil {
		return nil, err
	}
	sess = newSession(id, rec)
	sess.rev = rev
	sess.storedAt.Store(stored.UnixNano())
	sh.mu.Lock()
	if cur := sh.m[id]; cur != nil { // another request loaded it meanwhile
		sh.mu.Unlock()
		s.keep(ctx, cur)
		return cur, nil
	}
	sh.mu.Unlock()
	s.cache(sess)
	s.keep(ctx, sess)
	return sess, nil
}

// keep stores sess's record again when a quarter of the bucket's TTL has
// passed since it was stored, so that a session in use does not expire:
// one write a session every TTL/4 at most (6 hours at the default 24),
// made by the request that finds it due while no other does (or by the
// keep-alive of its open event stream, see Gateway.keepAlive). A failure
// is logged (by update) and the request goes on: the session lives until
// the TTL of its last write, and the next request tries again.
func (s *sessions) keep(ctx context.Context, sess *session) {
	if !s.due(sess) || !sess.touching.CompareAndSwap(false, true) {
		return
	}
	defer sess.touching.Store(false)
	_ = s.update(ctx, sess, func(*sessionRecord) *schema.Error { return nil })
}

// due reports whether sess is to be stored again to keep it: a quarter of
// the bucket's TTL has passed since it was stored.
func (s *sessions) due(sess *session) bool {
	return s.ttl > 0 && time.Since(time.Unix(0, sess.storedAt.Load())) >= s.ttl/4
}

// load reads the session's record, its revision and when it was stored
// from the bucket. It returns errNoSession for an unknown id and a wrapped
// error when the bucket fails.
func (s *sessions) load(ctx context.Context, id string) (sessionRecord, uint64, time.Time, error) {
	var e jetstream.KeyValueEntry
	err := withRetry(ctx, func() (err error) {
		e, err = s.kv.Get(ctx, id)
		return err
	})
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return sessionRecord{}, 0, time.Time{}, errNoSession
	}
	if err != nil {
		return sessionRecord{}, 0, time.Time{}, fmt.Errorf("loading session: %w", err)
	}
	var rec sessionRecord
	if err := json.Unmarshal(e.Value(), &rec); err != nil {
		return sessionRecord{}, 0, time.Time{}, fmt.Errorf("decoding session %s: %w", id, err)
	}
	return rec, e.Revision(), e.Created(), nil
}

// applyRecord takes what rec changes into the session: the client's
// revision and capabilities, the log level and the subscriptions. The
// caller holds recMu, or has the session to itself.
func (s *session) applyRecord(rec sessionRecord) {
	if c := s.client.Load(); c == nil || c.revision != rec.Revision || !bytes.Equal(c.capabilities, rec.Capabilities) {
		c := &clientState{revision: rec.Revision, capabilities: rec.Capabilities}
		if len(rec.Capabilities) > 0 {
			c.capsMP, _ = schema.JSONToMsgpack(nil, rec.Capabilities)
		}
		s.client.Store(c)
	}
	s.Revision, s.ClientInfo, s.Capabilities = rec.Revision, rec.ClientInfo, rec.Capabilities
	s.LogLevel, s.Subscriptions = rec.LogLevel, rec.Subscriptions
	s.logLevel.Store(int32(max(0, slices.Index(logLevels, rec.LogLevel))))
	subs := make(map[string]struct{}, len(rec.Subscriptions))
	for _, u := range rec.Subscriptions {
		subs[u] = struct{}{}
	}
	s.subs.Store(&subs)
}

// update changes the session's record with change and stores it; the
// change takes effect here once stored, and on other gateways through the
// bucket's watch. The record is stored only over the revision applied
// here: when another gateway changed it since (a client's requests of
// one session spread over gateways), the newer record is loaded and
// change applied to it again, up to maxUpdateConflicts times, so that
// neither change is lost. A *schema.Error from change is returned as is;
// a failing bucket, or a session deleted meanwhile, gives -32603.
func (s *sessions) update(ctx context.Context, sess *session, change func(*sessionRecord) *schema.Error) *schema.Error {
	sess.recMu.Lock()
	defer sess.recMu.Unlock()
	for conflicts := 0; ; conflicts++ {
		rec := sess.sessionRecord
		if rpcErr := change(&rec); rpcErr != nil {
			return rpcErr
		}
		val, err := json.Marshal(rec)
		var rev uint64
		if err == nil {
			err = withRetry(ctx, func() (err error) { rev, err = s.kv.Update(ctx, sess.id, val, sess.rev); return err })
		}
		if errors.Is(err, jetstream.ErrKeyRevisionMismatch) && conflicts < maxUpdateConflicts {
			// Another gateway changed the record: take it in, and the
			// change again over it.
			var newer sessionRecord
			var stored time.Time
			if newer, rev, stored, err = s.load(ctx, sess.id); err == nil {
				sess.rev = rev
				sess.storedAt.Store(stored.UnixNano())
				sess.applyRecord(newer)
				continue
			}
		}
		if err != nil {
			// Not the session's id: it is the client's credential for the
			// session. When the request is traced, the line's trace_id
			// leads to its span, which has it.
			s.repeats.Warn(ctx, s.log, "session", "saving session", "err", err)
			return schema.Errorf(schema.CodeInternalError, "could not save the session")
		}
		sess.rev = rev
		sess.storedAt.Store(time.Now().UnixNano())
		sess.applyRecord(rec)
		return nil
	}
}

// maxUpdateConflicts bounds how often update takes in another gateway's
// newer record before it gives up.
const maxUpdateConflicts = 5

// refresh takes a record another gateway (or this one) stored at stored,
// at bucket revision rev, into the cached session, if it is cached here
// and has not applied that revision or a later one.
func (s *sessions) refresh(id string, rev uint64, val []byte, stored time.Time) {
	sh := s.shard(id)
	sh.mu.Lock()
	sess := sh.m[id]
	sh.mu.Unlock()
	if sess == nil {
		return
	}
	var rec sessionRecord
	if err := json.Unmarshal(val, &rec); err != nil {
		s.log.Warn("decoding a stored session", "err", err)
		return
	}
	sess.recMu.Lock()
	defer sess.recMu.Unlock()
	if rev <= sess.rev {
		return
	}
	sess.rev = rev
	sess.storedAt.Store(stored.UnixNano())
	sess.applyRecord(rec)
}

// remove ends a session everywhere. It returns errNoSession for an unknown id.
func (s *sessions) remove(ctx context.Context, id string) error {
	if _, err := s.get(ctx, id); err != nil {
		return err
	}
	if err := withRetry(ctx, func() error { return s.kv.Purge(ctx, id, jetstream.PurgeTTL(time.Minute)) }); err != nil {
		return fmt.Errorf("deleting session: %w", err)
	}
	s.evict(id)
	return nil
}

func (s *sessions) evict(id string) {
	sh := s.shard(id)
	sh.mu.Lock()
	sess := sh.m[id]
	delete(sh.m, id)
	sh.mu.Unlock()
	if sess != nil {
		sess.end()
	}
}

// watch follows the bucket until ctx ends: sessions deleted or expired, by
// any gateway, are evicted; changes to cached sessions are taken in.
func (s *sessions) watch(ctx context.Context, w jetstream.KeyWatcher) {
	defer w.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case e, ok := <-w.Updates():
			if !ok {
				return
			}
			switch {
			case e == nil:
			case e.Operation() != jetstream.KeyValuePut:
				s.evict(e.Key())
			default:
				s.refresh(e.Key(), e.Revision(), e.Value(), e.Created())
			}
		}
	}
}

// storeTimeout bounds a session store operation, retries included.
const storeTimeout = 10 * time.Second

// withRetry runs op until it succeeds, fails for good, or ctx (bounded by
// storeTimeout) ends. Errors that mean "no stream leader right now" (a
// leader election after a node loss takes seconds) are retried with backoff.
func withRetry(ctx context.Context, op func() error) error {
	ctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	backoff := 50 * time.Millisecond
	for {
		err := op()
		if err == nil || !streams.Retryable(err) {
			return err
		}
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return err
		}
		backoff = min(2*backoff, time.Second)
	}
}

// logLevels are MCP's log levels, in order of severity.
var logLevels = []string{"debug", "info", "notice", "warning", "error", "critical", "alert", "emergency"}

// wantsLog reports whether a notifications/message with these params
// (msgpack) is at or above the session's level.
func (s *session) wantsLog(params []byte) bool {
	if s.quiet {
		return false
	}
	min := s.logLevel.Load()
	if min == 0 {
		return true
	}
	js, err := schema.MsgpackToJSON(nil, params)
	if err != nil {
		return false
	}
	var p struct {
		Level string `json:"level"`
	}
	if json.Unmarshal(js, &p) != nil {
		return false
	}
	return int32(slices.Index(logLevels, p.Level)) >= min
}

// setLogLevel answers logging/setLevel: the session's level is kept here
// and in the session bucket, so every gateway applies it.
func (g *Gateway) setLogLevel(ctx context.Context, sess *session, params []byte) *schema.Error {
	var p struct {
		Level string `json:"level"`
	}
	if len(params) == 0 || json.Unmarshal(params, &p) != nil {
		return schema.Errorf(schema.CodeInvalidParams, "logging/setLevel needs params with a level")
	}
	if !slices.Contains(logLevels, p.Level) {
		return schema.Errorf(schema.CodeInvalidParams, "unknown log level %q (want one of %v)", p.Level, logLevels)
	}
	return g.sessions.update(ctx, sess, func(rec *sessionRecord) *schema.Error {
		rec.LogLevel = p.Level
		return nil
	})
}
