package upstream

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcpstream/mcpstream/bridge"
	"github.com/mcpstream/mcpstream/schema"
)

// conn is one initialized connection to the upstream: a pooled stdio
// process, or an HTTP session. It owns the JSON-RPC ids on it: every
// request it sends gets an id of its own (a counter), so requests of
// different clients never share one, and answers find their caller by it.
type conn struct {
	c   mcp.Connection
	log *slog.Logger
	// proc is the process behind a stdio connection (nil over HTTP).
	proc *process
	// closer, if set, releases what the connection holds once it is
	// gone (the HTTP bridge); close calls it.
	closer func()
	// maxPending bounds the requests in flight on the connection.
	maxPending int
	// hangGrace is how long a request cancelled at its deadline may stay
	// unanswered before the connection is recycled.
	hangGrace time.Duration
	// writeTimeout bounds one write to the upstream (see write).
	writeTimeout time.Duration
	// onNotify receives the upstream's notifications that no call takes
	// (list changes, and log messages no call is attributable to).
	onNotify func(k *conn, method string, params json.RawMessage)

	mu      sync.Mutex
	nextID  int64
	pending map[int64]*pending
	// hung holds the timers of requests cancelled but not yet answered.
	hung map[int64]*time.Timer
	// result is the initialize result: the upstream's capabilities (on a
	// stateless connection, from server/discover).
	result initResult
	// meta, set on a stateless connection before it is used, is the
	// _meta of mcpstream's own requests on it (the lists).
	meta json.RawMessage

	done    chan struct{} // closed when the connection is gone
	doneErr error         // why, once done is closed
	closing sync.Once
	// requests bounds the upstream's requests to clients being relayed.
	requests chan struct{}
	wg       sync.WaitGroup // the read loop and relayed requests
}

// pending is a request in flight on a conn.
type pending struct {
	answer chan *jsonrpc.Response // buffered 1
	// call, when the request is a client's call, relays what the
	// upstream says about it (progress, logs, requests to the client).
	call caller
	// standing marks a request that lasts as long as the connection
	// (subscriptions/listen): it counts in neither maxPending nor the
	// load the pool balances.
	standing bool
}

// caller is what a forwarded request can do for the upstream while it
// runs: tell the client how far it has come, pass it a log message, ask
// it something. The forwarder implements it over a workers.Call.
type caller interface {
	progress(params json.RawMessage)
	log(params json.RawMessage)
	request(ctx context.Context, method string, params json.RawMessage) (json.RawMessage, error)
	// ctx ends when the call does.
	ctx() context.Context
}

// initResult is what the upstream said of itself in initialize.
type initResult struct {
	ProtocolVersion string `json:"protocolVersion"`
	Capabilities    struct {
		Tools       *struct{} `json:"tools"`
		Prompts     *struct{} `json:"prompts"`
		Resources   *struct{} `json:"resources"`
		Completions *struct{} `json:"completions"`
		Logging     *struct{} `json:"logging"`
	} `json:"capabilities"`
	ServerInfo struct {
		Name    string `json:"name"`
		Version string `json:"version"`
	} `json:"serverInfo"`
}

// errLost is the cause of a request whose connection went before it was
// answered.
var errLost = errors.New("the upstream connection was lost")

// errBusy answers a request beyond a connection's maxPending.
var errBusy = errors.New("too many requests in flight on the upstream connection")

// newConn starts reading c. Call initialize next.
func newConn(c mcp.Connection, proc *process, o connOptions) *conn {
	k := &conn{c: c, proc: proc, log: o.log, maxPending: o.maxPending, hangGrace: o.hangGrace, writeTimeout: o.writeTimeout,
		onNotify: o.onNotify, pending: map[int64]*pending{}, hung: map[int64]*time.Timer{}, done: make(chan struct{}),
		requests: make(chan struct{}, o.maxPending)}
	if k.writeTimeout <= 0 {
		k.writeTimeout = defaultWriteTimeout
	}
	k.wg.Add(1)
	go func() { defer k.wg.Done(); k.read() }()
	return k
}

// connOptions configure a conn.
type connOptions struct {
	log        *slog.Logger
	maxPending int
	hangGrace  time.Duration
	onNotify   func(k *conn, method string, params json.RawMessage)
	// writeTimeout bounds one write (default defaultWriteTimeout).
	writeTimeout time.Duration
}

// clientCapabilities are what mcpstream declares to the upstream: it
// relays sampling and elicitation to the calling client. Roots are not
// declared: a pooled process serves many clients, whose roots differ.
const clientCapabilities = `{"sampling":{},"elicitation":{}}`

// initialize does the client's side of the handshake within timeout:
// initialize, notifications/initialized, and logging/setLevel debug when
// the upstream logs (the gateways filter by each session's level).
func (k *conn) initialize(ctx context.Context, version string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	params := fmt.Sprintf(`{"protocolVersion":%q,"capabilities":%s,"clientInfo":{"name":"mcpstream","version":%q}}`,
		schema.LatestRevision, clientCapabilities, version)
	res, err := k.roundTrip(ctx, schema.MethodInitialize, json.RawMessage(params), nil)
	if err != nil {
		if ctx.Err() != nil && errors.Is(context.Cause(ctx), context.DeadlineExceeded) {
			return fmt.Errorf("initialize: no answer within %s", timeout)
		}
		return fmt.Errorf("initialize: %w", err)
	}
	if err := json.Unmarshal(res, &k.result); err != nil {
		return fmt.Errorf("initialize: decoding the result: %w", err)
	}
	if err := k.notify(ctx, schema.NotificationInitialized, json.RawMessage(`{}`)); err != nil {
		return fmt.Errorf("sending notifications/initialized: %w", err)
	}
	if k.result.Capabilities.Logging != nil {
		if _, err := k.roundTrip(ctx, "logging/setLevel", json.RawMessage(`{"level":"debug"}`), nil); err != nil {
			k.log.Warn("upstream refused logging/setLevel; its log messages may not reach clients", "err", err)
		}
	}
	return nil
}

// close ends the connection (for a process: stdin closed, then signals)
// and waits for its goroutines.
func (k *conn) close(why error) {
	k.fail(why)
	k.wg.Wait()
	if k.proc != nil {
		k.proc.wait()
	}
	if k.closer != nil {
		k.closer()
	}
}

// fail marks the connection gone with why and answers every request in
// flight with errLost; it does not wait.
func (k *conn) fail(why error) {
	k.closing.Do(func() {
		k.mu.Lock()
		k.doneErr = why
		for id, t := range k.hung {
			t.Stop()
			delete(k.hung, id)
		}
		k.mu.Unlock()
		close(k.done)
		_ = k.c.Close()
		if k.proc != nil {
			k.proc.stop()
		}
	})
}

// err is why the connection is gone (nil while it is not).
func (k *conn) err() error {
	select {
	case <-k.done:
		return k.doneErr
	default:
		return nil
	}
}

// inFlight counts the requests waiting for an answer.
func (k *conn) inFlight() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.busy()
}

// busy counts the requests in flight but standing ones, and those
// cancelled but not answered yet (hung), which the server still runs: a
// connection of MaxPending 1 takes no other call until the cancelled one
// ends, so that what the server sends stays attributable. k.mu is held.
func (k *conn) busy() int {
	n := len(k.hung)
	for _, p := range k.pending {
		if !p.standing {
			n++
		}
	}
	return n
}

// read dispatches what the upstream sends until the connection ends.
func (k *conn) read() {
	defer func() {
		k.mu.Lock()
		for id, p := range k.pending {
			delete(k.pending, id)
			p.answer <- nil // the caller reads k.err()
		}
		k.mu.Unlock()
	}()
	for {
		msg, err := k.c.Read(context.Background())
		if err != nil {
			why := err
			if k.proc != nil {
				why = k.proc.exitError(err)
			}
			k.fail(fmt.Errorf("%w: %v", errLost, why))
			return
		}
		switch m := msg.(type) {
		case *jsonrpc.Response:
			k.answered(m)
		case *jsonrpc.Request:
			if m.IsCall() {
				k.serverRequest(m)
			} else {
				k.notification(m)
			}
		}
	}
}

// answered hands a response to the request it answers.
func (k *conn) answered(m *jsonrpc.Response) {
	id, ok := m.ID.Raw().(int64)
	if !ok {
		k.log.Debug("upstream answered an id mcpstream did not send", "id", m.ID.Raw())
		return
	}
	k.mu.Lock()
	p := k.pending[id]
	delete(k.pending, id)
	if t := k.hung[id]; t != nil {
		t.Stop()
		delete(k.hung, id)
	}
	k.mu.Unlock()
	if p != nil {
		p.answer <- m
	}
}

// notification relays one: progress by its token (our request id), log
// messages to the one call in flight (see attributable), the rest to
// onNotify.
func (k *conn) notification(m *jsonrpc.Request) {
	switch m.Method {
	case schema.NotificationProgress:
		var p struct {
			Token json.RawMessage `json:"progressToken"`
		}
		_ = json.Unmarshal(m.Params, &p)
		var id int64
		if json.Unmarshal(p.Token, &id) == nil {
			k.mu.Lock()
			pc := k.pending[id]
			k.mu.Unlock()
			if pc != nil && pc.call != nil {
				pc.call.progress(m.Params)
			}
		}
		return
	case schema.NotificationMessage:
		if c := k.attributable(m.Params); c != nil {
			c.log(m.Params)
			return
		}
	}
	if k.onNotify != nil {
		k.onNotify(k, m.Method, m.Params)
	}
}

// attributable is the call a message of the upstream (its params)
// belongs to: the request its _meta names under bridge.RelatedKey (what
// the server sent on that request's own HTTP event stream), else the only
// client call in flight on the connection; nil when there are none or
// several (a stdio process serving several calls at once cannot say whose
// a log message or a sampling request is). A request cancelled but not
// yet answered (in hung) still runs on the server, so it counts as in
// flight: while there is one, a message that names no request belongs to
// nobody, and one that names it, or any request that is not a client
// call in flight, belongs to nobody either (never to another session's
// call).
func (k *conn) attributable(params json.RawMessage) caller {
	var p struct {
		Meta map[string]json.RawMessage `json:"_meta"`
	}
	var related int64
	k.mu.Lock()
	defer k.mu.Unlock()
	if json.Unmarshal(params, &p) == nil && json.Unmarshal(p.Meta[bridge.RelatedKey], &related) == nil && related > 0 {
		if pc := k.pending[related]; pc != nil {
			return pc.call // nil for mcpstream's own requests
		}
		return nil
	}
	if len(k.hung) > 0 {
		return nil
	}
	var only caller
	for _, p := range k.pending {
		if p.call == nil {
			continue
		}
		if only != nil {
			return nil
		}
		only = p.call
	}
	return only
}

// serverRequest relays a request of the upstream (sampling, elicitation,
// roots) to the client of the call it belongs to, and sends the answer
// back; one that belongs to no single call is answered with an error at
// once, as is ping (answered here).
func (k *conn) serverRequest(m *jsonrpc.Request) {
	if m.Method == schema.MethodPing {
		k.respond(m.ID, json.RawMessage(`{}`), nil)
		return
	}
	c := k.attributable(m.Params)
	if c == nil {
		k.respond(m.ID, nil, &jsonrpc.Error{Code: schema.CodeInternalError,
			Message: fmt.Sprintf("mcpstream cannot relay %s: it belongs to no single call in flight on this connection (relayed only while one call runs on it; see --upstream-max-pending)", m.Method)})
		return
	}
	select {
	case k.requests <- struct{}{}:
	default:
		k.respond(m.ID, nil, &jsonrpc.Error{Code: schema.CodeInternalError, Message: "mcpstream: too many requests to clients in flight"})
		return
	}
	k.wg.Add(1)
	go func() {
		defer func() { <-k.requests; k.wg.Done() }()
		ctx, cancel := context.WithCancel(c.ctx()) // ends with the call
		defer cancel()
		go func() { // or with the connection
			select {
			case <-k.done:
				cancel()
			case <-ctx.Done():
			}
		}()
		res, err := c.request(ctx, m.Method, unmarked(m.Params))
		if err != nil {
			var re *rpcError
			if errors.As(err, &re) {
				k.respond(m.ID, nil, re.e)
			} else {
				k.respond(m.ID, nil, &jsonrpc.Error{Code: schema.CodeInternalError, Message: err.Error()})
			}
			return
		}
		k.respond(m.ID, res, nil)
	}()
}

// unmarked is params without the bridge's bridge.RelatedKey mark (the
// client gets the server's params as the server sent them).
func unmarked(params json.RawMessage) json.RawMessage {
	if !bytes.Contains(params, []byte(bridge.RelatedKey)) {
		return params
	}
	var p map[string]json.RawMessage
	var meta map[string]json.RawMessage
	if json.Unmarshal(params, &p) != nil || json.Unmarshal(p["_meta"], &meta) != nil {
		return params
	}
	delete(meta, bridge.RelatedKey)
	if len(meta) == 0 {
		delete(p, "_meta")
	} else {
		p["_meta"], _ = json.Marshal(meta)
	}
	out, err := json.Marshal(p)
	if err != nil {
		return params
	}
	return out
}

// respond answers a request of the upstream.
func (k *conn) respond(id jsonrpc.ID, result json.RawMessage, rpcErr *jsonrpc.Error) {
	resp := &jsonrpc.Response{ID: id, Result: result}
	if rpcErr != nil {
		resp.Error = rpcErr
	}
	if err := k.write(context.Background(), resp); err != nil {
		k.log.Warn("answering the upstream's request", "err", err)
	}
}

// defaultWriteTimeout bounds one write to the upstream (a process that
// reads nothing fills its pipe).
const defaultWriteTimeout = 10 * time.Second

// notify sends a notification.
func (k *conn) notify(ctx context.Context, method string, params json.RawMessage) error {
	return k.write(ctx, &jsonrpc.Request{Method: method, Params: params})
}

// write sends msg, waiting until ctx ends or k.writeTimeout has passed at
// most. Over HTTP the write is the SDK's, with ctx bounded so. To a
// process it is a goroutine's (send), since the SDK's stdio write checks
// ctx only before it blocks on the pipe: ctx's end returns at once, while
// the write goes on, to complete or to recycle the connection (see send).
func (k *conn) write(ctx context.Context, msg jsonrpc.Message) error {
	if k.proc == nil {
		wctx, cancel := context.WithTimeout(ctx, k.writeTimeout)
		defer cancel()
		return k.c.Write(wctx, msg)
	}
	if ctx.Err() != nil {
		return context.Cause(ctx)
	}
	select {
	case err := <-k.send(msg):
		return err
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

// send starts writing msg to a process and returns where the write's
// error goes (buffered). A write still not done k.writeTimeout after it
// began (the process reads nothing and its pipe is full, or a write before
// it is stuck so) fails the connection, which is recycled: a message half
// written cannot be taken back, and closing the pipe ends the write.
func (k *conn) send(msg jsonrpc.Message) <-chan error {
	done := make(chan error, 1)
	// Added under k.mu while the connection is up: the read loop, which
	// holds the group until the connection fails, takes k.mu before it
	// lets go of it, so the group is never empty here.
	k.mu.Lock()
	if err := k.err(); err != nil {
		k.mu.Unlock()
		done <- err
		return done
	}
	k.wg.Add(1)
	k.mu.Unlock()
	go func() {
		defer k.wg.Done()
		stuck := time.AfterFunc(k.writeTimeout, func() {
			k.log.Warn("a write to the upstream did not complete; recycling the connection", "timeout", k.writeTimeout)
			k.fail(fmt.Errorf("%w: recycled: a write to it did not complete within %s", errLost, k.writeTimeout))
		})
		err := k.c.Write(context.Background(), msg)
		stuck.Stop()
		if err != nil {
			k.log.Debug("writing to the upstream", "err", err)
		}
		done <- err
	}()
	return done
}

// rpcError is a JSON-RPC error the upstream answered with.
type rpcError struct{ e *jsonrpc.Error }

func (e *rpcError) Error() string { return fmt.Sprintf("upstream error %d: %s", e.e.Code, e.e.Message) }

// roundTrip sends a request and waits for its answer: the result, an
// *rpcError for the upstream's JSON-RPC error, an error wrapping errLost
// when the connection went first, or ctx's cause when ctx ends first; in
// that case the upstream is told (notifications/cancelled) and, if it has
// not answered within hangGrace, the connection is recycled. params is
// built by mk from the request's id (a progress token may use it).
func (k *conn) roundTrip(ctx context.Context, method string, params json.RawMessage, call caller) (json.RawMessage, error) {
	return k.roundTripWith(ctx, method, func(int64) json.RawMessage { return params }, call)
}

func (k *conn) roundTripWith(ctx context.Context, method string, mk func(id int64) json.RawMessage, call caller) (json.RawMessage, error) {
	p := &pending{answer: make(chan *jsonrpc.Response, 1), call: call, standing: method == schema.MethodSubscriptionsListen}
	k.mu.Lock()
	if err := k.err(); err != nil {
		k.mu.Unlock()
		return nil, err
	}
	if !p.standing && k.busy() >= k.maxPending {
		k.mu.Unlock()
		return nil, errBusy
	}
	k.nextID++
	id := k.nextID
	k.pending[id] = p
	k.mu.Unlock()
	rid, _ := jsonrpc.MakeID(float64(id))
	if err := k.write(ctx, &jsonrpc.Request{ID: rid, Method: method, Params: mk(id)}); err != nil {
		if ctx.Err() != nil && k.proc != nil {
			// The write goes on (send): the process may yet get the
			// request, so it is cancelled as one sent.
			k.cancelled(id, context.Cause(ctx), deadlineOf(ctx))
			return nil, context.Cause(ctx)
		}
		k.forget(id)
		if ctx.Err() != nil {
			return nil, context.Cause(ctx)
		}
		return nil, fmt.Errorf("%w: writing %s: %v", errLost, method, err)
	}
	select {
	case resp := <-p.answer:
		if resp == nil {
			return nil, k.err()
		}
		if resp.Error != nil {
			var we *jsonrpc.Error
			if !errors.As(resp.Error, &we) {
				we = &jsonrpc.Error{Code: schema.CodeInternalError, Message: resp.Error.Error()}
			}
			return nil, &rpcError{we}
		}
		return resp.Result, nil
	case <-ctx.Done():
		k.cancelled(id, context.Cause(ctx), deadlineOf(ctx))
		return nil, context.Cause(ctx)
	}
}

// forget drops a request that was not sent.
func (k *conn) forget(id int64) {
	k.mu.Lock()
	delete(k.pending, id)
	k.mu.Unlock()
}

// cancelled tells the upstream that request id, due by deadline (zero
// for none), is cancelled (why), and recycles the connection if the
// request is still unanswered hangGrace past its deadline: a process that
// holds a request past its deadline is taken to be hung. A request its
// client cancelled sooner may run on until then (the spec lets a server
// finish what it cannot stop): one client's cancellation does not get a
// process that other sessions share stopped.
func (k *conn) cancelled(id int64, why error, deadline time.Time) {
	wait := k.hangGrace
	if !deadline.IsZero() {
		wait += max(0, time.Until(deadline))
	}
	k.mu.Lock()
	p := k.pending[id]
	delete(k.pending, id)
	if p != nil && k.err() == nil {
		k.hung[id] = time.AfterFunc(wait, func() {
			k.mu.Lock()
			_, still := k.hung[id]
			delete(k.hung, id)
			k.mu.Unlock()
			if still {
				k.log.Warn("upstream request unanswered past its deadline; recycling the connection", "id", id, "grace", k.hangGrace)
				k.fail(fmt.Errorf("%w: recycled: a request stayed unanswered %s past its deadline", errLost, k.hangGrace))
			}
		})
	}
	k.mu.Unlock()
	if p == nil {
		return
	}
	reason := "cancelled"
	if why != nil {
		reason = why.Error()
	}
	params, _ := json.Marshal(map[string]any{"requestId": id, "reason": reason})
	if k.proc != nil {
		// Not waited for: behind a stuck write it would hold the caller
		// past its deadline (send bounds it, and logs its failure).
		k.send(&jsonrpc.Request{Method: schema.NotificationCancelled, Params: params})
		return
	}
	if err := k.notify(context.Background(), schema.NotificationCancelled, params); err != nil {
		k.log.Debug("telling the upstream of a cancellation", "err", err)
	}
}

// deadlineOf is ctx's deadline, zero for none.
func deadlineOf(ctx context.Context) time.Time {
	dl, _ := ctx.Deadline()
	return dl
}
