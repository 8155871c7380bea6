package replay

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"iter"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"golang.org/x/time/rate"

	"github.com/mcpstream/mcpstream/schema"
)

// Defaults of [RerunOptions].
const (
	// DefaultCallTimeout is how long a re-run call waits for its answer.
	DefaultCallTimeout = 60 * time.Second
	// DefaultRerunProtocolVersion is the MCP revision a re-run's client
	// sessions ask for: a session-based one, so that the calls of one
	// recorded session share one session of the endpoint, and go-sdk's
	// client keeps no cache of results (it does for 2026-07-28).
	DefaultRerunProtocolVersion = "2025-11-25"
)

// queueLen is how many lines wait for each client session: room enough
// that one slow session does not hold the pacing of the others at once.
const queueLen = 64

// Rate is how fast [Rerun] sends calls. The zero value is instant: calls
// go as fast as RerunOptions.Concurrency sessions answer them.
type Rate struct {
	// Original keeps the recorded spacing: a call goes as long after the
	// previous one as its line was recorded after the previous line's
	// (see RerunOptions.MaxGap). A call held back because its session is
	// still busy goes as soon as it can; the later ones keep their
	// schedule. A line recorded before the latest one so far (with
	// Follow, one partition's clock behind another's) goes at once and
	// does not move the schedule back.
	Original bool
	// PerSecond, when positive, sends at most that many calls a second,
	// evenly spaced (no bursts).
	PerSecond float64
}

// ParseRate reads a rate as --rate writes it: "original", "instant", or a
// positive number of calls a second ("50", "0.5"). It returns an error
// saying what is accepted for anything else, zero and negative numbers
// included.
func ParseRate(s string) (Rate, error) {
	switch strings.TrimSpace(s) {
	case "original":
		return Rate{Original: true}, nil
	case "instant":
		return Rate{}, nil
	}
	n, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	switch {
	case err != nil:
		return Rate{}, fmt.Errorf(`rate %q: want "original", "instant" or a number of calls a second`, s)
	case n <= 0 || math.IsInf(n, 0) || math.IsNaN(n):
		return Rate{}, fmt.Errorf(`rate %q: calls a second must be positive and finite ("instant" sends without pacing)`, s)
	}
	return Rate{PerSecond: n}, nil
}

// String is the rate as [ParseRate] reads it.
func (r Rate) String() string {
	switch {
	case r.Original:
		return "original"
	case r.PerSecond > 0:
		return strconv.FormatFloat(r.PerSecond, 'g', -1, 64)
	}
	return "instant"
}

// RerunOptions say where and how [Rerun] sends calls again. Only To is
// required.
type RerunOptions struct {
	// To is the endpoint's URL (MCP Streamable HTTP), e.g.
	// http://localhost:8080/mcp.
	To string
	// Rate paces the calls; the zero value sends them as fast as they are
	// answered.
	Rate Rate
	// MaxGap, with Rate.Original, is the longest wait between two calls:
	// a longer recorded gap is shortened to it. 0 (the default) keeps
	// every gap as recorded.
	MaxGap time.Duration
	// Concurrency is how many client sessions send calls, each one call
	// at a time (default 1). The calls of one recorded session all go, in
	// their order, through the same client session; calls without a
	// session are spread over the sessions by their key.
	Concurrency int
	// Diff compares each answer with the recorded one ([Compare]) and
	// writes only the calls whose answer is not the same.
	Diff bool
	// Ignore, with Diff, are removed from both answers before comparing
	// (see [Compare] for their root).
	Ignore []Pointer
	// Timeout bounds each call, opening its client session included when
	// that is needed (default [DefaultCallTimeout]). A call without an
	// answer by then failed.
	Timeout time.Duration
	// HTTPClient sends the HTTP requests; nil uses a client of its own,
	// closed when Rerun returns.
	HTTPClient *http.Client
	// Header is added to every HTTP request (e.g. Authorization),
	// replacing what the client would send under the same names.
	Header http.Header
	// ProtocolVersion is the MCP revision the client sessions ask for
	// (default [DefaultRerunProtocolVersion]); the endpoint may settle on
	// another it supports.
	ProtocolVersion string
}

// withDefaults checks o and fills in its defaults.
func (o RerunOptions) withDefaults() (RerunOptions, error) {
	if o.To == "" {
		return o, errors.New("re-run: no endpoint to send the calls to")
	}
	if u, err := url.Parse(o.To); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return o, fmt.Errorf("re-run: endpoint %q is not an http:// or https:// URL", o.To)
	}
	if o.Rate.Original && o.Rate.PerSecond > 0 {
		return o, fmt.Errorf("re-run: rate is either original or %g calls a second, not both", o.Rate.PerSecond)
	}
	if o.Rate.PerSecond < 0 || math.IsNaN(o.Rate.PerSecond) || math.IsInf(o.Rate.PerSecond, 0) {
		return o, fmt.Errorf("re-run: rate of %g calls a second: want a positive, finite number", o.Rate.PerSecond)
	}
	o.Concurrency = max(o.Concurrency, 1)
	if o.Timeout <= 0 {
		o.Timeout = DefaultCallTimeout
	}
	if o.ProtocolVersion == "" {
		o.ProtocolVersion = DefaultRerunProtocolVersion
	}
	return o, nil
}

// Summary counts what a re-run did.
type Summary struct {
	// Sent counts the calls tried that finished: answered, or failed
	// (opening their session included). A call cut short because Rerun's
	// context ended is not counted.
	Sent int
	// Answered counts the calls that got an answer, a result or a
	// JSON-RPC error; with Diff it is Same+Different+Unrecorded.
	Answered int
	// Same, Different and Unrecorded count the answers by [Outcome], with
	// Diff only.
	Same, Different, Unrecorded int
	// Failed counts the calls that got no answer.
	Failed int
	// Skipped counts the lines not sent: those whose method is not re-run
	// (only tools/call, prompts/get, resources/read and
	// completion/complete are), and the requests a re-run sent
	// ([Line.Rerun], or of a session this run opened).
	Skipped int
	// Compared is set when the answers were compared (Diff).
	Compared bool
}

// String is one line for people: "1000 sent: 998 same, 2 different, 0
// failed, 0 unrecorded, 0 skipped" when the answers were compared, else
// "1000 sent: 1000 answered, 0 failed, 0 skipped".
func (s Summary) String() string {
	if s.Compared {
		return fmt.Sprintf("%d sent: %d same, %d different, %d failed, %d unrecorded, %d skipped",
			s.Sent, s.Same, s.Different, s.Failed, s.Unrecorded, s.Skipped)
	}
	return fmt.Sprintf("%d sent: %d answered, %d failed, %d skipped", s.Sent, s.Answered, s.Failed, s.Skipped)
}

// Rerun sends the calls of lines again to the endpoint o.To, with the
// official go-sdk client, and writes what came back to out, one JSON
// object a line:
//
//	{"seq":…,"stream":…,"key":…,"method":…,"tool":…,"outcome":…,"took":…, …}
//
// Without o.Diff every call is written, outcome "answered" with the new
// "result" or "error" (a JSON-RPC error object), or "failed" with the
// "failure". With o.Diff only the calls whose answer is not Same are:
// "different" with the "diff", "failed" with the "failure", "unrecorded"
// with the new "result" or "error". took is the call's round trip. Lines
// of one session are written in their order; lines of different sessions
// as they finish.
//
// Only tools/call (Tool is the tool, Arguments its arguments),
// prompts/get (the prompt and its arguments), resources/read (Tool is the
// URI) and completion/complete (Arguments are the whole params) are sent;
// other lines are counted as skipped. So are the requests a re-run sent
// (Line.Rerun: its client sessions declare the experimental capability
// [RerunCapability], which the gateway keeps in the envelopes), and those
// of the sessions this run opened: re-run against the deployment it
// reads, with Follow, a call is sent again once, not its re-run again.
// Results, recorded and new, are
// compared after passing both through go-sdk's result type for the method
// (decoded and encoded again) and filling in what the protocol says an
// absent member means (a resource's cacheScope is "public"), so that
// neither what that client drops or fills in nor a server of another
// revision counts as a difference. The client has no sampling,
// elicitation or roots handlers: a call that needs one gets the
// endpoint's answer to a client without them.
//
// Rerun reads lines until they end, yield an error, or ctx ends; lines is
// read on Rerun's goroutine, and should itself stop when ctx ends (Rerun
// cannot interrupt a line that is not yielded). It waits for the calls
// under way, closes its sessions and returns the summary with: an error
// for invalid options (before sending anything); the error lines yielded,
// wrapped; the error of writing to out; or ctx's error.
func Rerun(ctx context.Context, o RerunOptions, lines iter.Seq2[*Line, error], out io.Writer) (Summary, error) {
	o, err := o.withDefaults()
	if err != nil {
		return Summary{}, err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	r := &rerunner{o: o, out: out, cancel: cancel, sum: Summary{Compared: o.Diff}}
	r.httpc = o.HTTPClient
	if r.httpc == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.MaxIdleConnsPerHost = o.Concurrency
		defer tr.CloseIdleConnections()
		r.httpc = &http.Client{Transport: tr}
	}
	c := *r.httpc
	c.Transport = runTransport{base: c.Transport, header: o.Header, run: ctx}
	r.httpc = &c
	r.client = mcp.NewClient(&mcp.Implementation{Name: "mcpstream-replay", Version: "1"}, &mcp.ClientOptions{
		// go-sdk's default (roots), and the mark of a re-run's requests.
		Capabilities: &mcp.ClientCapabilities{RootsV2: &mcp.RootCapabilities{ListChanged: true},
			Experimental: map[string]any{RerunCapability: map[string]any{}}},
	})

	queues := make([]chan *Line, o.Concurrency)
	var wg sync.WaitGroup
	for i := range queues {
		queues[i] = make(chan *Line, queueLen)
		wg.Go(func() { r.session(ctx, queues[i]) })
	}
	feedErr := r.feed(ctx, lines, queues)
	for _, q := range queues {
		close(q)
	}
	wg.Wait()

	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case r.writeErr != nil:
		return r.sum, r.writeErr
	case feedErr != nil:
		return r.sum, feedErr
	}
	return r.sum, ctx.Err()
}

// rerunner is one run of [Rerun].
type rerunner struct {
	o      RerunOptions
	httpc  *http.Client
	client *mcp.Client
	cancel context.CancelFunc // ends the run, on a write error

	mu       sync.Mutex // guards out, sum, writeErr and own
	out      io.Writer
	sum      Summary
	writeErr error
	// own are the ids of the endpoint's sessions this run opened: their
	// requests, read back from the deployment re-run against, are not
	// sent again (even from an endpoint that does not keep the client's
	// capabilities, Line.Rerun).
	own map[string]bool
}

// ownLine reports whether l is a request this run, or an earlier one,
// sent.
func (r *rerunner) ownLine(l *Line) bool {
	if l.Rerun {
		return true
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return l.Session != "" && r.own[l.Session]
}

// feed paces the lines and hands each to its session's queue. It returns
// the error lines yield, or ctx's.
func (r *rerunner) feed(ctx context.Context, lines iter.Seq2[*Line, error], queues []chan *Line) error {
	var limiter *rate.Limiter
	if r.o.Rate.PerSecond > 0 {
		limiter = rate.NewLimiter(rate.Limit(r.o.Rate.PerSecond), 1)
	}
	var start time.Time // when the first line was sent (original rate)
	sched := schedule{maxGap: r.o.MaxGap}
	for l, err := range lines {
		if err != nil {
			return fmt.Errorf("re-run: reading the lines: %w", err)
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if l == nil {
			continue
		}
		if !rerunnable(l.Method) || r.ownLine(l) {
			r.mu.Lock()
			r.sum.Skipped++
			r.mu.Unlock()
			continue
		}
		switch {
		case r.o.Rate.Original:
			if start.IsZero() {
				start = time.Now()
			}
			if err := sleep(ctx, time.Until(start.Add(sched.next(l.At())))); err != nil {
				return err
			}
		case limiter != nil:
			if err := sleep(ctx, limiter.Reserve().Delay()); err != nil {
				return err
			}
		}
		select {
		case queues[pick(l, len(queues))] <- l:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// schedule is when lines go at the original rate, after the first one.
type schedule struct {
	maxGap time.Duration // the longest gap kept; 0 keeps every gap
	latest time.Time     // the latest time recorded of the lines so far
	due    time.Duration // after the first line, when the last one went
}

// next is when a line recorded at at goes, after the first line: as long
// after the previous one as it was recorded after the latest line so far,
// that gap capped at maxGap. A line recorded before an earlier one (the
// partitions merge in order, but a --follow'ed stream's clock may lag
// another's) goes at once, and the schedule stays where the latest line
// put it: the gap it would make seem is not counted again. A line without
// a time goes at once.
func (s *schedule) next(at time.Time) time.Duration {
	if at.IsZero() {
		return s.due
	}
	if !s.latest.IsZero() {
		if gap := at.Sub(s.latest); gap > 0 {
			if s.maxGap > 0 {
				gap = min(gap, s.maxGap)
			}
			s.due += gap
		}
	}
	if at.After(s.latest) {
		s.latest = at
	}
	return s.due
}

// rerunnable reports whether Rerun sends lines of method.
func rerunnable(method string) bool {
	switch method {
	case schema.MethodToolsCall, schema.MethodPromptsGet, schema.MethodResourcesRead, schema.MethodCompletionComplete:
		return true
	}
	return false
}

// pick is the queue of l's session (or, without one, of its key) among n.
func pick(l *Line, n int) int {
	h := fnv.New32a()
	if l.Session != "" {
		h.Write([]byte("s:" + l.Session))
	} else {
		h.Write([]byte("k:" + l.Key))
	}
	return int(h.Sum32() % uint32(n))
}

// sleep waits d, or until ctx ends (its error).
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// session sends the lines of q, one at a time, through one client
// session, opened at its first line (again after a failure), and closed
// when q is closed. Once ctx has ended it drains q without sending.
func (r *rerunner) session(ctx context.Context, q <-chan *Line) {
	var cs *mcp.ClientSession
	defer func() {
		if cs != nil {
			_ = cs.Close()
		}
	}()
	for l := range q {
		if ctx.Err() != nil {
			continue
		}
		start := time.Now()
		got, failure := r.call(ctx, &cs, l)
		took := time.Since(start)
		if ctx.Err() != nil {
			continue // cut short: neither counted nor written
		}
		r.report(l, got, failure, took)
	}
}

// call sends l's call through *cs, opening it first if it is nil, and
// returns the answer (its result as go-sdk encodes it) or why there is
// none. A failure other than a timeout closes *cs and sets it to nil: the
// next call opens a new session.
func (r *rerunner) call(ctx context.Context, cs **mcp.ClientSession, l *Line) (Answer, error) {
	cctx, cancel := context.WithTimeout(ctx, r.o.Timeout)
	defer cancel()
	if *cs == nil {
		t := &mcp.StreamableClientTransport{Endpoint: r.o.To, HTTPClient: r.httpc, MaxRetries: -1, DisableStandaloneSSE: true}
		s, err := r.client.Connect(cctx, t, &mcp.ClientSessionOptions{ProtocolVersion: r.o.ProtocolVersion})
		if err != nil {
			return Answer{}, fmt.Errorf("connecting to %s: %w", r.o.To, r.timedOut(cctx, err))
		}
		*cs = s
		if id := s.ID(); id != "" {
			r.mu.Lock()
			if r.own == nil {
				r.own = map[string]bool{}
			}
			r.own[id] = true
			r.mu.Unlock()
		}
	}
	res, err := send(cctx, *cs, l)
	if err == nil {
		protocolDefaults(res)
		b, err := json.Marshal(res)
		if err != nil {
			return Answer{}, fmt.Errorf("encoding the answer to %s %s: %w", l.Method, l.Tool, err)
		}
		return Answer{Result: b}, nil
	}
	if werr := wireError(err); werr != nil && cctx.Err() == nil {
		return Answer{Error: &schema.Error{Code: int(werr.Code), Message: werr.Message, Data: werr.Data}}, nil
	}
	if cctx.Err() == nil && !errors.Is(err, errArguments) {
		_ = (*cs).Close()
		*cs = nil
	}
	return Answer{}, r.timedOut(cctx, err)
}

// transportMarks are the JSON-RPC errors go-sdk's client wraps around
// failures of its own to classify them (jsonrpc2's ErrRejected,
// ErrClientClosing and ErrServerClosing): found in an error, they are not
// the endpoint's answer.
var transportMarks = []jsonrpc.Error{
	{Code: -32005, Message: "rejected by transport"},
	{Code: -32003, Message: "client is closing"},
	{Code: -32004, Message: "server is closing"},
}

// wireError returns the JSON-RPC error the endpoint answered with, the
// first in err's tree (as errors.As looks) that is not one of
// transportMarks, or nil. go-sdk returns a JSON-RPC error answer as such
// an error, wrapped; a transport failure wraps only a mark.
func wireError(err error) *jsonrpc.Error {
	if err == nil {
		return nil
	}
	if we, ok := err.(*jsonrpc.Error); ok && we != nil {
		mark := false
		for _, m := range transportMarks {
			mark = mark || we.Code == m.Code && we.Message == m.Message
		}
		if !mark {
			return we
		}
	}
	switch u := err.(type) {
	case interface{ Unwrap() error }:
		return wireError(u.Unwrap())
	case interface{ Unwrap() []error }:
		for _, e := range u.Unwrap() {
			if we := wireError(e); we != nil {
				return we
			}
		}
	}
	return nil
}

// timedOut says so when err is cctx's deadline.
func (r *rerunner) timedOut(cctx context.Context, err error) error {
	if errors.Is(cctx.Err(), context.DeadlineExceeded) {
		return fmt.Errorf("no answer within %v: %w", r.o.Timeout, err)
	}
	return err
}

// errArguments is returned for a line whose arguments cannot be sent.
var errArguments = errors.New("arguments not sendable")

// send makes l's call through cs and returns go-sdk's result.
func send(ctx context.Context, cs *mcp.ClientSession, l *Line) (any, error) {
	switch l.Method {
	case schema.MethodToolsCall:
		p := &mcp.CallToolParams{Name: l.Tool}
		if len(l.Arguments) > 0 {
			p.Arguments = l.Arguments
		}
		return cs.CallTool(ctx, p)
	case schema.MethodPromptsGet:
		p := &mcp.GetPromptParams{Name: l.Tool}
		if len(l.Arguments) > 0 {
			if err := json.Unmarshal(l.Arguments, &p.Arguments); err != nil {
				return nil, fmt.Errorf("%w: the arguments of prompt %s: %v", errArguments, l.Tool, err)
			}
		}
		return cs.GetPrompt(ctx, p)
	case schema.MethodResourcesRead:
		return cs.ReadResource(ctx, &mcp.ReadResourceParams{URI: l.Tool})
	case schema.MethodCompletionComplete:
		p := new(mcp.CompleteParams)
		if err := json.Unmarshal(l.Arguments, p); err != nil {
			return nil, fmt.Errorf("%w: the completion params: %v", errArguments, err)
		}
		return cs.Complete(ctx, p)
	}
	return nil, fmt.Errorf("method %s is not re-run", l.Method)
}

// normalResult is raw, a result of method, decoded into go-sdk's type for
// it, with the protocol's defaults filled in ([protocolDefaults]), and
// encoded again; raw itself when it does not decode.
func normalResult(method string, raw json.RawMessage) json.RawMessage {
	var v any
	switch method {
	case schema.MethodToolsCall:
		v = new(mcp.CallToolResult)
	case schema.MethodPromptsGet:
		v = new(mcp.GetPromptResult)
	case schema.MethodResourcesRead:
		v = new(mcp.ReadResourceResult)
	case schema.MethodCompletionComplete:
		v = new(mcp.CompleteResult)
	default:
		return raw
	}
	if len(raw) == 0 || json.Unmarshal(raw, v) != nil {
		return raw
	}
	protocolDefaults(v)
	b, err := json.Marshal(v)
	if err != nil {
		return raw
	}
	return withoutFraming(b)
}

// withoutFraming is a result less what a protocol revision's framing adds
// around the handler's answer: resultType, and the _meta members under
// the prefix the protocol reserves (a gateway's server info). The answer
// a worker recorded has neither.
func withoutFraming(b json.RawMessage) json.RawMessage {
	var m map[string]json.RawMessage
	if json.Unmarshal(b, &m) != nil {
		return b
	}
	_, framed := m["resultType"]
	delete(m, "resultType")
	var meta map[string]json.RawMessage
	if json.Unmarshal(m["_meta"], &meta) == nil {
		for k := range meta {
			if strings.HasPrefix(k, reservedMeta) {
				delete(meta, k)
				framed = true
			}
		}
		if len(meta) == 0 {
			delete(m, "_meta")
		} else if mb, err := json.Marshal(meta); err == nil {
			m["_meta"] = mb
		}
	}
	if !framed {
		return b
	}
	out, err := json.Marshal(m)
	if err != nil {
		return b
	}
	return out
}

// reservedMeta prefixes the _meta keys the protocol reserves.
const reservedMeta = "io.modelcontextprotocol/"

// protocolDefaults fills in what the protocol says an absent member
// means where go-sdk's type would write it empty instead: a resource
// read's cacheScope, "public" when absent (a go-sdk server sends it, a
// recording of a server of an earlier revision has none).
func protocolDefaults(result any) {
	if r, ok := result.(*mcp.ReadResourceResult); ok && r != nil && r.CacheScope == "" {
		r.CacheScope = "public"
	}
}

// rerunLine is what Rerun writes for a call.
type rerunLine struct {
	Seq     uint64          `json:"seq"`
	Stream  string          `json:"stream"`
	Key     string          `json:"key"`
	Method  string          `json:"method"`
	Tool    string          `json:"tool,omitempty"`
	Outcome string          `json:"outcome"`
	Took    string          `json:"took"`
	Diff    string          `json:"diff,omitempty"`
	Result  json.RawMessage `json:"result,omitempty"`
	Error   *schema.Error   `json:"error,omitempty"`
	Failure string          `json:"failure,omitempty"`
}

// report counts a call's outcome and writes its line. A write error ends
// the run.
func (r *rerunner) report(l *Line, got Answer, failure error, took time.Duration) {
	rl := rerunLine{Seq: l.Seq, Stream: l.Stream, Key: l.Key, Method: l.Method, Tool: l.Tool, Took: took.String()}
	outcome := Failed
	switch {
	case failure != nil:
		rl.Failure = failure.Error()
	case r.o.Diff:
		recorded := Answer{Result: normalResult(l.Method, l.Result), Error: l.Error}
		outcome, rl.Diff = Compare(recorded, Answer{Result: withoutFraming(got.Result), Error: got.Error}, r.o.Ignore)
		if outcome == Unrecorded {
			rl.Result, rl.Error = got.Result, got.Error
		}
	default:
		rl.Result, rl.Error = got.Result, got.Error
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sum.Sent++
	switch outcome {
	case Same:
		r.sum.Same++
	case Different:
		r.sum.Different++
	case Unrecorded:
		r.sum.Unrecorded++
	}
	if failure != nil {
		r.sum.Failed++
	} else {
		r.sum.Answered++
	}
	rl.Outcome = outcome.String()
	if !r.o.Diff && failure == nil {
		rl.Outcome = "answered"
	}
	if (r.o.Diff && outcome == Same) || r.writeErr != nil {
		return
	}
	b, err := encodeLine(rl)
	if err == nil {
		_, err = r.out.Write(b)
	}
	if err != nil {
		r.writeErr = fmt.Errorf("re-run: writing the answer to %s seq %d: %w", l.Stream, l.Seq, err)
		r.cancel()
	}
}

// endGrace bounds each HTTP request sent once a re-run has ended (the
// cancellation of a call under way, the end of a session), so that an
// endpoint slow to take them does not hold Rerun's return.
const endGrace = time.Second

// runTransport sets header on every request, and bounds the requests sent
// once run has ended to endGrace.
type runTransport struct {
	base   http.RoundTripper // nil is http.DefaultTransport
	header http.Header
	run    context.Context
}

// RoundTrip sends a copy of req with the header set.
func (t runTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	req = req.Clone(req.Context())
	for k, vs := range t.header {
		req.Header.Del(k)
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	base := t.base
	if base == nil {
		base = http.DefaultTransport
	}
	if t.run.Err() == nil {
		return base.RoundTrip(req)
	}
	ctx, cancel := context.WithTimeout(req.Context(), endGrace)
	resp, err := base.RoundTrip(req.WithContext(ctx))
	if err != nil {
		cancel()
		return nil, err
	}
	resp.Body = cancelBody{ReadCloser: resp.Body, cancel: cancel}
	return resp, nil
}

// cancelBody is a response's body that cancels its request's context when
// closed.
type cancelBody struct {
	io.ReadCloser
	cancel context.CancelFunc
}

// Close closes the body and cancels the request's context.
func (b cancelBody) Close() error {
	err := b.ReadCloser.Close()
	b.cancel()
	return err
}
