package testkit

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mcpstream/mcpstream/schema"
	"github.com/mcpstream/mcpstream/streams"
)

// Worker is a worker group for tests, written on the wire contract alone
// (schema, streams and JetStream), so that the gateway's tests need not
// import the workers package, which the module forbids. It is not a
// second SDK: every envelope, whatever its method, goes to one Handler in
// a goroutine of its own, with no result store, redelivery handling,
// batching or concurrency bound.
//
// It provisions the topology if none exists and its group's durable
// consumer on every partition stream, registers its tools, prompts and
// resources in the registry bucket, keeps a heartbeat there (a gateway
// lists a group's entries only while one exists), and listens for
// cancellations on streams.CancelSubject: each is passed to [Worker.Cancels]
// and cancels the context of the handler running the request it names.
type Worker struct {
	group, instance string
	nc              *nats.Conn
	js              jetstream.JetStream
	handle          Handler
	cancels         chan schema.Cancel

	mu      sync.Mutex
	running map[string]context.CancelCauseFunc // by cancelKey

	base     context.Context
	stopBase context.CancelFunc
	ccs      []jetstream.ConsumeContext
	cancelSb *nats.Subscription
	reg      jetstream.KeyValue
	hbStop   chan struct{}
	hbDone   chan struct{} // nil until the heartbeat runs
	handlers sync.WaitGroup
	stopOnce sync.Once
}

// WorkerOptions configure [StartWorker].
type WorkerOptions struct {
	// Group names the worker group (default "testkit").
	Group string
	// Instance names this replica in its heartbeat (default "w1").
	Instance string
	// Topology is provisioned if none has been; the recorded one wins.
	Topology streams.Topology
	// Tools, Prompts and Resources are registered for Group. A tool
	// without an input schema gets {"type":"object"}.
	Tools     []schema.Tool
	Prompts   []schema.Prompt
	Resources []schema.Resource
	// Handle serves every envelope (required).
	Handle Handler
}

// Handler serves one envelope. Its result is encoded as JSON (a
// json.RawMessage as is) and sent as the reply's result; an error is sent
// as the reply's error: a *schema.Error as it is, any other as an internal
// error. When ctx has ended by the time it returns (the envelope's
// deadline passed, the client cancelled, or the worker stopped), nothing
// is sent: the gateway has stopped waiting, as with a real worker. A
// handler must return once ctx ends: Stop waits for it.
type Handler func(ctx context.Context, c *Call) (any, error)

// Call is one envelope being served.
type Call struct {
	// Env is the envelope as the gateway published it.
	Env *schema.Envelope
	// Args is Env.Params as JSON (nil when there are none).
	Args json.RawMessage
	w    *Worker
}

// heartbeatEvery is how often the heartbeat is written; it lives
// heartbeatTTL, so a stopped worker's group disappears by itself.
const (
	heartbeatEvery = 2 * time.Second
	heartbeatTTL   = 10 * time.Second
)

// StartWorker starts a worker on nc and returns once it consumes, listens
// for cancellations and is registered (a gateway started afterwards has
// its entries in its first registry snapshot). It stops in t.Cleanup; the
// caller owns nc and must close it after that.
func StartWorker(t testing.TB, nc *nats.Conn, o WorkerOptions) *Worker {
	t.Helper()
	if o.Handle == nil {
		t.Fatal("testkit.StartWorker: WorkerOptions.Handle is required")
	}
	if o.Group == "" {
		o.Group = "testkit"
	}
	if o.Instance == "" {
		o.Instance = "w1"
	}
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	base, stopBase := context.WithCancel(context.Background())
	w := &Worker{group: o.Group, instance: o.Instance, nc: nc, js: js, handle: o.Handle,
		cancels: make(chan schema.Cancel, 64), running: map[string]context.CancelCauseFunc{},
		base: base, stopBase: stopBase, hbStop: make(chan struct{})}
	t.Cleanup(w.Stop)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := w.start(ctx, o); err != nil {
		t.Fatalf("testkit worker %s: %v", o.Group, err)
	}
	return w
}

func (w *Worker) start(ctx context.Context, o WorkerOptions) error {
	topo, err := streams.Ensure(ctx, w.js, o.Topology)
	if err != nil {
		return err
	}
	consumers, err := streams.EnsureGroup(ctx, w.js, topo, w.group)
	if err != nil {
		return err
	}
	if w.cancelSb, err = w.nc.Subscribe(streams.CancelSubject, w.onCancel); err != nil {
		return fmt.Errorf("subscribing to cancellations: %w", err)
	}
	for _, c := range consumers {
		cc, err := c.Consume(func(msg jetstream.Msg) {
			w.handlers.Add(1)
			go func() { defer w.handlers.Done(); w.process(msg) }()
		})
		if err != nil {
			return fmt.Errorf("consuming: %w", err)
		}
		w.ccs = append(w.ccs, cc)
	}
	if err := w.nc.Flush(); err != nil {
		return err
	}
	if w.reg, err = w.js.KeyValue(ctx, streams.RegistryBucket); err != nil {
		return err
	}
	var names []string
	for _, t := range o.Tools {
		if len(t.InputSchema) == 0 {
			t.InputSchema = json.RawMessage(`{"type":"object"}`)
		}
		names = append(names, t.Name)
		e := &schema.ToolEntry{Tool: t, Group: w.group, Version: version(t)}
		if err := w.put(ctx, streams.ToolKey(t.Name), e); err != nil {
			return err
		}
	}
	for _, p := range o.Prompts {
		e := &schema.PromptEntry{Prompt: p, Group: w.group, Version: version(p)}
		if err := w.put(ctx, streams.PromptKey(p.Name), e); err != nil {
			return err
		}
	}
	for _, r := range o.Resources {
		e := &schema.ResourceEntry{Resource: r, Group: w.group, Version: version(r)}
		if err := w.put(ctx, streams.ResourceKey(r.URI), e); err != nil {
			return err
		}
	}
	// The heartbeat goes out as a message on the key's subject with a
	// per-message TTL (a KV Put cannot carry one), as real workers do.
	hb, _ := json.Marshal(map[string]any{"group": w.group, "instance": w.instance, "tools": names})
	subject := streams.RegistrySubject(streams.HeartbeatKey(w.group, w.instance))
	beat := func(ctx context.Context) error {
		_, err := w.js.Publish(ctx, subject, hb, jetstream.WithMsgTTL(heartbeatTTL))
		return err
	}
	if err := beat(ctx); err != nil {
		return fmt.Errorf("writing heartbeat: %w", err)
	}
	w.hbDone = make(chan struct{})
	go func() {
		defer close(w.hbDone)
		tick := time.NewTicker(heartbeatEvery)
		defer tick.Stop()
		for {
			select {
			case <-w.hbStop:
				return
			case <-tick.C:
				bctx, cancel := context.WithTimeout(w.base, heartbeatEvery)
				_ = beat(bctx)
				cancel()
			}
		}
	}()
	return nil
}

func (w *Worker) put(ctx context.Context, key string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if _, err := w.reg.Put(ctx, key, b); err != nil {
		return fmt.Errorf("registering %s: %w", key, err)
	}
	return nil
}

// version is the registry version of a definition: a hash of its JSON.
func version(def any) string {
	b, _ := json.Marshal(def)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8])
}

// Stop stops consuming, cancels the running handlers and waits for them,
// and removes the heartbeat, so that gateways stop routing to the group.
// It runs in t.Cleanup; calling it again does nothing.
func (w *Worker) Stop() {
	w.stopOnce.Do(func() {
		for _, cc := range w.ccs {
			cc.Stop()
		}
		for _, cc := range w.ccs {
			<-cc.Closed()
		}
		w.stopBase()
		w.handlers.Wait()
		if w.cancelSb != nil {
			_ = w.cancelSb.Unsubscribe()
		}
		if w.hbDone == nil { // never registered
			return
		}
		close(w.hbStop)
		<-w.hbDone
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = w.reg.Purge(ctx, streams.HeartbeatKey(w.group, w.instance), jetstream.PurgeTTL(time.Minute))
	})
}

// Cancels returns the cancellations received on streams.CancelSubject, in
// order (at most 64 kept unread; later ones are dropped).
func (w *Worker) Cancels() <-chan schema.Cancel { return w.cancels }

func (w *Worker) onCancel(m *nats.Msg) {
	c, err := schema.UnmarshalCancel(m.Data)
	if err != nil {
		return
	}
	select {
	case w.cancels <- *c:
	default:
	}
	w.mu.Lock()
	cancel := w.running[c.Session+"\x00"+c.RequestID]
	w.mu.Unlock()
	if cancel != nil {
		cancel(fmt.Errorf("cancelled: %s", c.Reason))
	}
}

// cancelKey names env as cancellations do: a session's request by session
// and JSON-RPC id, a stateless one by its key.
func cancelKey(env *schema.Envelope) string {
	if env.Session != "" {
		return env.Session + "\x00" + env.RequestID
	}
	return schema.CancelByKey + "\x00" + env.Key
}

// process serves one delivery: decode, run the handler under the
// envelope's deadline, reply unless the context ended, acknowledge.
func (w *Worker) process(msg jetstream.Msg) {
	env, err := schema.UnmarshalEnvelope(msg.Data())
	if err != nil {
		_ = msg.Term()
		return
	}
	ctx, cancel := context.WithCancelCause(w.base)
	defer cancel(nil)
	if d := env.DeadlineTime(); !d.IsZero() {
		var stop context.CancelFunc
		ctx, stop = context.WithDeadline(ctx, d)
		defer stop()
	}
	key := cancelKey(env)
	w.mu.Lock()
	w.running[key] = cancel
	w.mu.Unlock()
	defer func() {
		w.mu.Lock()
		delete(w.running, key)
		w.mu.Unlock()
	}()
	c := &Call{Env: env, w: w}
	if len(env.Params) > 0 {
		if c.Args, err = schema.MsgpackToJSON(nil, env.Params); err != nil {
			c.Args = nil
		}
	}
	res, err := w.handle(ctx, c)
	if ctx.Err() != nil {
		_ = msg.Ack()
		return
	}
	rep := &schema.Reply{Key: env.Key, Kind: schema.ReplyResult}
	var rpcErr *schema.Error
	switch {
	case errors.As(err, &rpcErr):
		rep.Error = rpcErr
	case err != nil:
		rep.Error = schema.Errorf(schema.CodeInternalError, "%s %s: %v", env.Method, env.Name, err)
	default:
		if rep.Result, err = compact(res); err != nil {
			rep.Error = schema.Errorf(schema.CodeInternalError, "encoding result: %v", err)
		}
	}
	_ = c.send(rep)
	_ = msg.Ack()
}

// compact encodes v as JSON (a json.RawMessage as is), then as msgpack.
func compact(v any) ([]byte, error) {
	js, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return schema.JSONToMsgpack(nil, js)
}

func (c *Call) send(rep *schema.Reply) error {
	b, err := rep.Marshal()
	if err != nil {
		return err
	}
	return c.w.nc.Publish(c.Env.ReplyTo, b)
}

// Notify sends the client a notification about the call (a Reply of kind
// ReplyNotification): method, with params encoded as JSON.
func (c *Call) Notify(method string, params any) error {
	p, err := compact(params)
	if err != nil {
		return err
	}
	return c.send(&schema.Reply{Key: c.Env.Key, Kind: schema.ReplyNotification, Method: method, Result: p})
}

// ProgressToken is the request's progress token as JSON, or nil.
func (c *Call) ProgressToken() json.RawMessage {
	if len(c.Env.ProgressToken) == 0 {
		return nil
	}
	tok, err := schema.MsgpackToJSON(nil, c.Env.ProgressToken)
	if err != nil {
		return nil
	}
	return tok
}

// Answer is what came back on the answer subject of a request to the
// client: the client's JSON-RPC response as the gateway relayed it, or
// the gateway's refusal.
type Answer struct {
	// Session is the Mcp-Session-Id header of a relayed response.
	Session string
	// GatewayError is set when a gateway answered in the client's stead
	// (schema.HeaderGatewayError).
	GatewayError bool
	// Message is the JSON-RPC response (Result or Error).
	Message *schema.Message
}

// Ask sends the client a request about the call (a Reply of kind
// ReplyRequest with a fresh id from streams.NewClientRequest) and waits,
// within ctx, for the first message on the answer subject.
func (c *Call) Ask(ctx context.Context, method string, params any) (*Answer, error) {
	p, err := compact(params)
	if err != nil {
		return nil, err
	}
	id, subject := streams.NewClientRequest()
	sub, err := c.w.nc.SubscribeSync(subject)
	if err != nil {
		return nil, err
	}
	defer func() { _ = sub.Unsubscribe() }()
	if err := c.send(&schema.Reply{Key: c.Env.Key, Kind: schema.ReplyRequest, Method: method, ID: id, Result: p}); err != nil {
		return nil, err
	}
	m, err := sub.NextMsgWithContext(ctx)
	if err != nil {
		return nil, fmt.Errorf("%s: waiting for the answer: %w", method, err)
	}
	msg, rpcErr := schema.DecodeMessage(m.Data)
	if rpcErr != nil {
		return nil, fmt.Errorf("%s: decoding the answer: %w", method, rpcErr)
	}
	a := &Answer{Message: msg}
	if m.Header != nil {
		a.Session = m.Header.Get(schema.HeaderSessionID)
		a.GatewayError = m.Header.Get(schema.HeaderGatewayError) != ""
	}
	return a, nil
}
