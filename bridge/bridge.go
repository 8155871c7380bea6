// Package bridge connects an MCP client that speaks over stdio (a desktop
// app that spawns its servers) to a remote Streamable HTTP endpoint such as
// an mcpstream gateway: `mcpstream stdio --url ...`.
//
// Each JSON-RPC message read from the client (one per line) is posted to the
// endpoint; the answer, a JSON body or the events of an SSE stream, goes back
// to the client line by line, as it arrives. The bridge keeps the session of
// the session revisions (the Mcp-Session-Id from initialize, the negotiated
// MCP-Protocol-Version) and opens the session's GET stream for the server's
// own messages; when that stream ends (the server restarted or closed it,
// the connection dropped) it opens it again with Last-Event-ID, after a
// bounded backoff or the stream's retry: time, until the bridge shuts down
// or the endpoint answers 405 (it offers no stream) or 404 (see below). For
// revision 2026-07-28 it mirrors each request's _meta protocolVersion,
// method and target into the headers the revision requires. A
// notifications/cancelled for a stateless request still open closes the
// request's stream, however soon after the request it comes (a session's
// is posted, for the server to act on).
// A line longer than [MaxMessage] is not posted: the client gets -32600
// with a null id (its id cannot be read without parsing it), not silence.
//
// When the endpoint answers HTTP 404 to a request carrying the session's
// Mcp-Session-Id, the session is gone (the server restarted, or expired
// or deleted it): the bridge ends, and Run returns an error wrapping
// [ErrSessionLost], without answering the requests in flight. It does not
// start a new session behind the client's back: the session's state on
// the server (subscriptions, log level, the answers to its requests in
// flight) would be lost without the client knowing, and the new
// session's initialize result could differ from the one the client
// negotiated. A stdio client sees its server exit, and starts it again
// with a new session, as the MCP specification requires of a client that
// gets HTTP 404 for its session.
package bridge

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/mcpstream/mcpstream/schema"
)

// MaxMessage bounds one message line from the client.
const MaxMessage = 4 << 20

// ErrSessionLost is what Run's error wraps when the endpoint answered
// HTTP 404 to a request carrying the session's Mcp-Session-Id: the
// endpoint no longer knows the session, and the client must initialize a
// new one.
var ErrSessionLost = errors.New("the endpoint no longer knows the session (HTTP 404)")

// Bridge relays one stdio client to one endpoint. Set URL; the zero values
// of the other fields work.
type Bridge struct {
	// URL is the Streamable HTTP endpoint, e.g. http://127.0.0.1:8080/mcp.
	URL string
	// HTTP sends the requests (default: a client without timeouts, since
	// streams last).
	HTTP *http.Client
	// Log receives what cannot be told to the client (default: discard).
	Log *slog.Logger
	// MaxInFlight bounds the requests posted at once (default 64); the
	// reading of the client's input waits beyond it.
	MaxInFlight int
	// Grace is how long requests in flight may still be answered once the
	// client's input ends (default 10s); long-lived streams end then.
	Grace time.Duration
	// MarkRelated, when set, marks each request and notification of the
	// server that arrives on the event stream of one of the client's
	// requests with that request's id, in its params' _meta under
	// RelatedKey: over stdio nothing else tells which request a server's
	// message belongs to (workers/upstream relays it to that call's
	// client).
	MarkRelated bool

	out     sync.Mutex // serializes lines to the client
	w       io.Writer
	mu      sync.Mutex
	session string // Mcp-Session-Id of the session revisions
	version string // negotiated revision
	streams bool   // the session's GET stream was opened
	// open are the client's requests in flight, by id.
	open map[string]*openRequest
	// lost, once set, is why the session ended (wrapping ErrSessionLost);
	// stop ends Run.
	lost error
	stop context.CancelFunc
	// closing is closed once the client's input has ended (or ctx): the
	// bridge is shutting down. bg runs the GET stream.
	closing chan struct{}
	bg      sync.WaitGroup
}

// Run relays messages from in to the endpoint and its answers to out until
// in ends (the client went) or ctx does. It then waits for the requests in
// flight and ends the session (DELETE). It returns the error of reading in,
// or, when the endpoint no longer knows the session, an error wrapping
// ErrSessionLost at once (the requests in flight unanswered).
func (b *Bridge) Run(ctx context.Context, in io.Reader, out io.Writer) error {
	if b.HTTP == nil {
		b.HTTP = &http.Client{}
	}
	if b.Log == nil {
		b.Log = slog.New(slog.DiscardHandler)
	}
	if b.MaxInFlight <= 0 {
		b.MaxInFlight = 64
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	b.mu.Lock()
	b.w, b.open, b.stop, b.closing = out, map[string]*openRequest{}, cancel, make(chan struct{})
	b.mu.Unlock()
	// Lines are read apart, so that ctx ending stops the bridge even while
	// the client writes nothing.
	lines, readDone := make(chan []byte), make(chan error, 1)
	go func() {
		r := bufio.NewReaderSize(in, 64<<10)
		for {
			line, oversized, err := readLine(r)
			if oversized {
				// Not a message this bridge forwards; its id cannot be
				// read without parsing what is too large to parse: the
				// client gets the error with a null id, as for a parse
				// error, rather than no answer at all.
				b.Log.Warn("dropping a message over the size limit", "limit", MaxMessage)
				b.send(tooLarge)
			}
			if len(bytes.TrimSpace(line)) > 0 {
				select {
				case lines <- line:
				case <-ctx.Done():
					return
				}
			}
			if err != nil {
				readDone <- err
				return
			}
		}
	}()
	sem := make(chan struct{}, b.MaxInFlight)
	var wg sync.WaitGroup
	var readErr error
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case err := <-readDone:
			if !errors.Is(err, io.EOF) {
				readErr = err
			}
			break loop
		case line := <-lines:
			// Each line is decoded, and a request registered as open, here,
			// in the order the client wrote them, before its own goroutine
			// posts it: a notifications/cancelled that follows its request
			// finds it open, however the goroutines are scheduled.
			msg, rpcErr := schema.DecodeMessage(line)
			if rpcErr != nil {
				b.send(schema.AppendError(nil, nil, rpcErr))
				continue
			}
			if msg.Method == schema.NotificationCancelled && b.closeStream(msg.Params) {
				continue // over HTTP a request is cancelled by closing its stream
			}
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				break loop
			}
			rctx, end := b.register(ctx, msg)
			wg.Add(1)
			go func() {
				defer func() { end(); <-sem; wg.Done() }()
				b.forward(rctx, line, msg)
			}()
		}
	}
	// The client has closed its input: answers still on their way get a
	// grace period, then every stream (the GET stream, listens) ends; the
	// GET stream is not opened again meanwhile.
	close(b.closing)
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
	case <-time.After(b.grace()):
	}
	cancel()
	<-done
	b.bg.Wait()
	b.mu.Lock()
	lost := b.lost
	b.mu.Unlock()
	if lost != nil {
		return lost
	}
	b.endSession()
	return readErr
}

// sessionLost ends the bridge when the endpoint answered HTTP 404 to a
// request (method) that carried session: the session is gone, and there
// is nothing to DELETE. Only the first such answer counts.
func (b *Bridge) sessionLost(session, method string) {
	b.mu.Lock()
	first := b.lost == nil && session != "" && session == b.session
	if first {
		b.lost = fmt.Errorf("%w: session %s, at %s (%s); the client must start a new session", ErrSessionLost, session, method, b.URL)
		b.session = ""
	}
	stop := b.stop
	b.mu.Unlock()
	if !first {
		return
	}
	b.Log.Warn("the endpoint no longer knows the session: ending the bridge, so that the client starts a new one",
		"session", session, "request", method, "url", b.URL)
	stop()
}

// grace is how long answers may still come after the client's input ends.
func (b *Bridge) grace() time.Duration {
	if b.Grace > 0 {
		return b.Grace
	}
	return 10 * time.Second
}

// readLine reads one line of at most MaxMessage bytes. A longer one is
// skipped to its end, and reported oversized.
func readLine(r *bufio.Reader) (line []byte, oversized bool, err error) {
	for {
		chunk, err := r.ReadSlice('\n')
		line = append(line, chunk...)
		if len(line) > MaxMessage {
			for errors.Is(err, bufio.ErrBufferFull) {
				_, err = r.ReadSlice('\n')
			}
			return nil, true, err
		}
		if !errors.Is(err, bufio.ErrBufferFull) {
			return line, false, err
		}
	}
}

// tooLarge answers a client's line longer than MaxMessage.
var tooLarge = []byte(`{"jsonrpc":"2.0","id":null,"error":{"code":-32600,"message":"message over the bridge's 4 MiB limit, not sent"}}`)

// send writes one message to the client, on a line of its own.
func (b *Bridge) send(msg []byte) {
	var c bytes.Buffer
	if json.Compact(&c, msg) != nil {
		return
	}
	c.WriteByte('\n')
	b.out.Lock()
	defer b.out.Unlock()
	if _, err := b.w.Write(c.Bytes()); err != nil {
		b.Log.Warn("writing to the client", "err", err)
	}
}

// fail answers a request the endpoint could not answer.
func (b *Bridge) fail(id schema.ID, format string, args ...any) {
	if id == nil {
		return
	}
	b.send(schema.AppendError(nil, id, schema.Errorf(schema.CodeInternalError, format, args...)))
}

// openRequest is a request of the client's in flight: cancel closes its
// stream.
type openRequest struct{ cancel context.CancelFunc }

// register records msg, when it is a request, as open until end is
// called, and returns the context to post it within, which closeStream
// cancels. A request whose id the client reuses while it is open takes
// the id over; the first one's end leaves it registered.
func (b *Bridge) register(ctx context.Context, msg *schema.Message) (_ context.Context, end func()) {
	if msg.Kind() != schema.KindRequest {
		return ctx, func() {}
	}
	ctx, cancel := context.WithCancel(ctx)
	r, id := &openRequest{cancel: cancel}, string(msg.ID)
	b.mu.Lock()
	b.open[id] = r
	b.mu.Unlock()
	return ctx, func() {
		cancel()
		b.mu.Lock()
		if b.open[id] == r {
			delete(b.open, id)
		}
		b.mu.Unlock()
	}
}

// forward posts one message, raw as decoded into msg, and relays the
// answer.
func (b *Bridge) forward(ctx context.Context, raw []byte, msg *schema.Message) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, b.URL, bytes.NewReader(raw))
	if err != nil {
		b.fail(msg.ID, "building the request: %v", err)
		return
	}
	b.headers(req, msg)
	resp, err := b.HTTP.Do(req)
	if err != nil {
		if ctx.Err() == nil {
			b.fail(msg.ID, "posting to %s: %v", b.URL, err)
		}
		return
	}
	defer resp.Body.Close()
	if session := req.Header.Get(schema.HeaderSessionID); session != "" && resp.StatusCode == http.StatusNotFound {
		what := msg.Method
		if what == "" {
			what = "a response"
		}
		b.sessionLost(session, what)
		return
	}
	if msg.Method == schema.MethodInitialize && resp.StatusCode == http.StatusOK {
		b.mu.Lock()
		b.session = resp.Header.Get(schema.HeaderSessionID)
		b.mu.Unlock()
	}
	b.relay(ctx, resp, msg)
	if msg.Method == schema.NotificationInitialized {
		b.openStream(ctx)
	}
}

// headers sets the transport headers of a POST: the session's, or those the
// stateless revision mirrors from the body.
func (b *Bridge) headers(req *http.Request, msg *schema.Message) {
	h := req.Header
	h.Set("Content-Type", "application/json")
	h.Set("Accept", "application/json, text/event-stream")
	meta, _ := schema.ParseRequestMeta(msg.Params)
	b.mu.Lock()
	session, version := b.session, b.version
	b.mu.Unlock()
	if meta.ProtocolVersion != "" && !schema.IsSessionRevision(meta.ProtocolVersion) {
		h.Set(schema.HeaderProtocolVersion, meta.ProtocolVersion)
		if msg.Method != "" {
			h.Set(schema.HeaderMethod, msg.Method)
		}
		if member := schema.NameMember(msg.Method); member != "" {
			var v string
			_ = schema.ScanObject(msg.Params, func(k, raw []byte) {
				if string(k) == member {
					_ = json.Unmarshal(raw, &v)
				}
			})
			h.Set(schema.HeaderName, headerValue(v))
		}
		return
	}
	if session != "" {
		h.Set(schema.HeaderSessionID, session)
	}
	if version != "" {
		h.Set(schema.HeaderProtocolVersion, version)
	}
}

// headerValue encodes a value for Mcp-Name: as is when it is plain visible
// ASCII, else in the "=?base64?...?=" form.
func headerValue(v string) string {
	plain := v != "" && strings.TrimSpace(v) == v && !(strings.HasPrefix(v, "=?base64?") && strings.HasSuffix(v, "?="))
	for i := 0; plain && i < len(v); i++ {
		plain = v[i] >= 0x20 && v[i] <= 0x7e
	}
	if plain {
		return v
	}
	return "=?base64?" + base64.StdEncoding.EncodeToString([]byte(v)) + "?="
}

// relay passes an answer on: a JSON message, or the messages of an event
// stream as they come; an error status without a JSON-RPC body is
// answered as an error.
func (b *Bridge) relay(ctx context.Context, resp *http.Response, msg *schema.Message) {
	mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	switch {
	case resp.StatusCode == http.StatusAccepted:
	case mt == "text/event-stream":
		var related schema.ID
		if b.MarkRelated {
			related = msg.ID
		}
		b.events(resp.Body, msg.Method == schema.MethodInitialize, related, nil)
	case mt == "application/json":
		body, err := io.ReadAll(io.LimitReader(resp.Body, MaxMessage+1))
		if err != nil || len(body) > MaxMessage {
			if ctx.Err() == nil {
				b.fail(msg.ID, "reading the answer: %v", err)
			}
			return
		}
		b.learn(msg, body)
		b.send(body)
	case resp.StatusCode >= 400:
		b.fail(msg.ID, "the endpoint answered HTTP %s", resp.Status)
	}
}

// learn takes the negotiated revision from an initialize result.
func (b *Bridge) learn(msg *schema.Message, body []byte) {
	if msg.Method != schema.MethodInitialize {
		return
	}
	var r struct {
		Result struct {
			ProtocolVersion string `json:"protocolVersion"`
		} `json:"result"`
	}
	if json.Unmarshal(body, &r) == nil && r.Result.ProtocolVersion != "" {
		b.mu.Lock()
		b.version = r.Result.ProtocolVersion
		b.mu.Unlock()
	}
}

// RelatedKey is the _meta member MarkRelated sets.
const RelatedKey = "io.mcpstream/relatedRequest"

// markRelated returns msg, a server's request or notification, with id
// in its params' _meta under RelatedKey; anything else unchanged.
func markRelated(msg []byte, id schema.ID) []byte {
	var m map[string]json.RawMessage
	if json.Unmarshal(msg, &m) != nil || m["method"] == nil {
		return msg
	}
	params := map[string]json.RawMessage{}
	if len(m["params"]) > 0 && json.Unmarshal(m["params"], &params) != nil {
		return msg
	}
	meta := map[string]json.RawMessage{}
	if len(params["_meta"]) > 0 && json.Unmarshal(params["_meta"], &meta) != nil {
		return msg
	}
	meta[RelatedKey] = json.RawMessage(id)
	var err error
	if params["_meta"], err = json.Marshal(meta); err != nil {
		return msg
	}
	if m["params"], err = json.Marshal(params); err != nil {
		return msg
	}
	out, err := json.Marshal(m)
	if err != nil {
		return msg
	}
	return out
}

// closeStream cancels the open request a notifications/cancelled names,
// and reports whether there was one.
func (b *Bridge) closeStream(params []byte) bool {
	var id []byte
	_ = schema.ScanObject(params, func(k, v []byte) {
		if string(k) == "requestId" {
			id = v
		}
	})
	b.mu.Lock()
	r := b.open[string(id)]
	stateless := b.session == ""
	b.mu.Unlock()
	if r == nil || !stateless {
		return false // a session's request is cancelled by telling the server
	}
	r.cancel()
	return true
}

// endSession deletes the session, if there is one.
func (b *Bridge) endSession() {
	b.mu.Lock()
	session, version := b.session, b.version
	b.mu.Unlock()
	if session == "" {
		return
	}
	req, err := http.NewRequest(http.MethodDelete, b.URL, nil)
	if err != nil {
		return
	}
	req.Header.Set(schema.HeaderSessionID, session)
	req.Header.Set(schema.HeaderProtocolVersion, version)
	if resp, err := b.HTTP.Do(req); err == nil {
		resp.Body.Close()
	}
}
