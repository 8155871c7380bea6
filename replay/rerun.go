package replay

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"iter"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"golang.org/x/time/rate"

	"github.com/mcpstream/mcpstream/schema"
)

// Rate is the pace of a re-run. The zero value sends as fast as the
// concurrency allows.
type Rate struct {
	// Original keeps the recorded spacing between calls.
	Original bool
	// PerSecond, if positive, sends that many calls a second at most.
	PerSecond float64
}

// ParseRate reads "original", "instant" or a positive number of calls a
// second. It returns an error naming what it was given otherwise.
func ParseRate(s string) (Rate, error) {
	switch s {
	case "original":
		return Rate{Original: true}, nil
	case "instant", "":
		return Rate{}, nil
	}
	n, err := strconv.ParseFloat(s, 64)
	if err != nil || n <= 0 || n != n {
		return Rate{}, fmt.Errorf(`rate %q: want "original", "instant" or calls per second (a positive number)`, s)
	}
	return Rate{PerSecond: n}, nil
}

// RerunOptions configure [Rerun]. To is required; the zero value of the
// others is usable.
type RerunOptions struct {
	// To is the Streamable HTTP MCP endpoint the calls are sent to.
	To string
	// Rate paces the calls (default as fast as Concurrency allows).
	Rate Rate
	// MaxGap, if positive, caps the pause between two calls at the
	// Original rate.
	MaxGap time.Duration
	// Concurrency is the number of client sessions sending calls at once
	// (default 1). A recorded session's calls all go, in order, through
	// the same one.
	Concurrency int
	// Diff compares each answer with the recorded one (the lines'
	// Result or Error) and writes only the calls that are not the same.
	Diff bool
	// Ignore are left out of the comparison: pointers from the answer's
	// root, {"result": ...} or {"error": ...}.
	Ignore []Pointer
	// Timeout bounds one call (default 60s).
	Timeout time.Duration
	// HTTPClient sends the calls (default a new client).
	HTTPClient *http.Client
	// Header is sent with every request (credentials, for instance).
	Header http.Header
}

// Summary counts what a re-run did.
type Summary struct {
	// Sent counts the calls sent; Skipped the lines whose method is not
	// re-run (only tools/call, prompts/get, resources/read and
	// completion/complete are).
	Sent, Skipped int
	// Same, Different, Unrecorded and Failed count the outcomes with
	// Diff; Answered and Failed without.
	Same, Different, Unrecorded, Failed, Answered int
}

func (s Summary) String() string {
	out := fmt.Sprintf("%d sent: ", s.Sent)
	if s.Answered > 0 || (s.Same == 0 && s.Different == 0 && s.Unrecorded == 0) {
		out += fmt.Sprintf("%d answered, %d failed", s.Answered, s.Failed)
	} else {
		out += fmt.Sprintf("%d same, %d different, %d failed, %d unrecorded", s.Same, s.Different, s.Failed, s.Unrecorded)
	}
	return out + fmt.Sprintf(", %d skipped", s.Skipped)
}

// rerunLine is what [Rerun] writes for a call: with Diff, for each call
// that is not the same; without, for each call.
type rerunLine struct {
	Seq     uint64          `json:"seq"`
	Stream  string          `json:"stream"`
	Key     string          `json:"key"`
	Method  string          `json:"method"`
	Tool    string          `json:"tool,omitempty"`
	Outcome string          `json:"outcome"`
	Diff    string          `json:"diff,omitempty"`
	Result  json.RawMessage `json:"result,omitempty"`
	Error   any             `json:"error,omitempty"`
}

// rerunnable is whether a method is sent again.
func rerunnable(method string) bool {
	switch method {
	case schema.MethodToolsCall, schema.MethodPromptsGet, schema.MethodResourcesRead, schema.MethodCompletionComplete:
		return true
	}
	return false
}

// Rerun sends the calls of lines again to o.To, paced by o.Rate, through
// o.Concurrency client sessions of the official MCP Go client, and writes
// one JSON line per call to out (with o.Diff, per call whose answer is
// not the same as the recorded one, with the diff). It stops at the end
// of lines, at the first error lines yields, or when ctx ends.
//
// It returns the summary with the error of lines, of connecting a client
// session to o.To, of writing to out, or ctx's.
func Rerun(ctx context.Context, o RerunOptions, lines iter.Seq2[*Line, error], out io.Writer) (Summary, error) {
	if o.Concurrency <= 0 {
		o.Concurrency = 1
	}
	if o.Timeout <= 0 {
		o.Timeout = time.Minute
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	sessions := make([]*mcp.ClientSession, o.Concurrency)
	for i := range sessions {
		cs, err := connect(ctx, o)
		if err != nil {
			for _, s := range sessions[:i] {
				_ = s.Close()
			}
			return Summary{}, err
		}
		sessions[i] = cs
	}
	var sum Summary
	var mu sync.Mutex // sum and out
	var werr error
	report := func(l *Line, got Answer, callErr error) {
		rl := rerunLine{Seq: l.Seq, Stream: l.Stream, Key: l.Key, Method: l.Method, Tool: l.Tool}
		outcome := Answered
		switch {
		case callErr != nil:
			outcome, rl.Error = Failed, callErr.Error()
		case o.Diff && l.Result == nil && l.Error == nil:
			outcome = Unrecorded
		case o.Diff:
			outcome, rl.Diff = Compare(normalize(l.Method, Answer{l.Result, l.Error}), normalize(l.Method, got), o.Ignore)
		}
		if outcome != Failed && (outcome == Answered || outcome == Unrecorded) {
			rl.Result = got.Result
			if got.Error != nil {
				rl.Error = got.Error
			}
		}
		rl.Outcome = outcome.String()
		mu.Lock()
		defer mu.Unlock()
		switch outcome {
		case Same:
			sum.Same++
		case Different:
			sum.Different++
		case Failed:
			sum.Failed++
		case Unrecorded:
			sum.Unrecorded++
		case Answered:
			sum.Answered++
		}
		if outcome == Same || werr != nil {
			return
		}
		b, err := encodeLine(rl)
		if err == nil {
			_, err = out.Write(b)
		}
		if err != nil {
			werr = fmt.Errorf("writing: %w", err)
			cancel(werr)
		}
	}
	// One goroutine a session, each with its queue: a recorded session's
	// calls keep their order.
	queues := make([]chan *Line, o.Concurrency)
	var wg sync.WaitGroup
	for i, cs := range sessions {
		queues[i] = make(chan *Line, 1)
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer cs.Close()
			for l := range queues[i] {
				got, err := call(ctx, cs, l, o.Timeout)
				report(l, got, err)
			}
		}()
	}
	err := feed(ctx, o, lines, queues, &sum, &mu)
	for _, q := range queues {
		close(q)
	}
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	if werr != nil {
		return sum, werr
	}
	return sum, err
}

// feed paces the lines and hands each re-runnable one to its session's
// queue.
func feed(ctx context.Context, o RerunOptions, lines iter.Seq2[*Line, error], queues []chan *Line, sum *Summary, mu *sync.Mutex) error {
	var limiter *rate.Limiter
	if o.Rate.PerSecond > 0 {
		limiter = rate.NewLimiter(rate.Limit(o.Rate.PerSecond), 1)
	}
	var prev time.Time // the previous call's recorded time
	next := time.Now() // when the next call is due, at the original rate
	for l, err := range lines {
		if err != nil {
			return err
		}
		if !rerunnable(l.Method) {
			mu.Lock()
			sum.Skipped++
			mu.Unlock()
			continue
		}
		switch {
		case limiter != nil:
			if err := limiter.Wait(ctx); err != nil {
				return context.Cause(ctx)
			}
		case o.Rate.Original:
			if !prev.IsZero() {
				gap := max(l.At().Sub(prev), 0)
				if o.MaxGap > 0 {
					gap = min(gap, o.MaxGap)
				}
				next = next.Add(gap)
				if err := sleepUntil(ctx, next); err != nil {
					return err
				}
			}
			prev = l.At()
		}
		q := queues[route(l, len(queues))]
		select {
		case q <- l:
			mu.Lock()
			sum.Sent++
			mu.Unlock()
		case <-ctx.Done():
			return context.Cause(ctx)
		}
	}
	return nil
}

// route picks the session of a line: by its recorded session, or by its
// key for a stateless request.
func route(l *Line, n int) int {
	h := fnv.New32a()
	if l.Session != "" {
		h.Write([]byte(l.Session))
	} else {
		h.Write([]byte(l.Key))
	}
	return int(h.Sum32() % uint32(n))
}

// sleepUntil waits until t or the end of ctx (its cause returned).
func sleepUntil(ctx context.Context, t time.Time) error {
	d := time.Until(t)
	if d <= 0 {
		return nil
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

// connect opens a client session to o.To.
func connect(ctx context.Context, o RerunOptions) (*mcp.ClientSession, error) {
	hc := o.HTTPClient
	if hc == nil {
		hc = &http.Client{}
	}
	if len(o.Header) > 0 {
		c := *hc
		c.Transport = headerTransport{base: hc.Transport, header: o.Header}
		hc = &c
	}
	client := mcp.NewClient(&mcp.Implementation{Name: "mcpstream-replay", Version: "1"}, nil)
	cs, err := client.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: o.To, HTTPClient: hc, MaxRetries: -1}, nil)
	if err != nil {
		return nil, fmt.Errorf("connecting to %s: %w", o.To, err)
	}
	return cs, nil
}

// headerTransport adds header to every request.
type headerTransport struct {
	base   http.RoundTripper
	header http.Header
}

func (t headerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	for k, vs := range t.header {
		r.Header[k] = append([]string(nil), vs...)
	}
	base := t.base
	if base == nil {
		base = http.DefaultTransport
	}
	return base.RoundTrip(r)
}

// call sends l's call on cs and returns its answer, normalised through
// the client's result type; the error is set when no answer came.
func call(ctx context.Context, cs *mcp.ClientSession, l *Line, timeout time.Duration) (Answer, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var res any
	var err error
	switch l.Method {
	case schema.MethodToolsCall:
		res, err = cs.CallTool(ctx, &mcp.CallToolParams{Name: l.Tool, Arguments: rawArgs(l.Arguments)})
	case schema.MethodPromptsGet:
		var args map[string]string
		if len(l.Arguments) > 0 {
			if err := json.Unmarshal(l.Arguments, &args); err != nil {
				return Answer{}, fmt.Errorf("the recorded prompt arguments: %w", err)
			}
		}
		res, err = cs.GetPrompt(ctx, &mcp.GetPromptParams{Name: l.Tool, Arguments: args})
	case schema.MethodResourcesRead:
		res, err = cs.ReadResource(ctx, &mcp.ReadResourceParams{URI: l.Tool})
	case schema.MethodCompletionComplete:
		var p mcp.CompleteParams
		if err := json.Unmarshal(l.Arguments, &p); err != nil {
			return Answer{}, fmt.Errorf("the recorded completion params: %w", err)
		}
		res, err = cs.Complete(ctx, &p)
	}
	if err != nil {
		var we *jsonrpc.Error
		if errors.As(err, &we) {
			return Answer{Error: &schema.Error{Code: int(we.Code), Message: we.Message, Data: we.Data}}, nil
		}
		return Answer{}, err
	}
	b, err := json.Marshal(res)
	if err != nil {
		return Answer{}, fmt.Errorf("encoding the answer: %w", err)
	}
	return Answer{Result: b}, nil
}

// rawArgs passes recorded arguments on as they are (none as none).
func rawArgs(b json.RawMessage) any {
	if len(b) == 0 {
		return nil
	}
	return b
}

// normalize passes a result through the client's result type of method
// (a recorded one is as the worker sent it), so that both sides compare
// member for member, and leaves out what a protocol revision's framing
// adds around the handler's answer: resultType, and the _meta members
// under the reserved io.modelcontextprotocol/ prefix (a gateway's server
// info). A result that does not fit the type is compared as it is.
func normalize(method string, a Answer) Answer {
	if a.Error != nil || len(a.Result) == 0 {
		return a
	}
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
		return a
	}
	if json.Unmarshal(a.Result, v) != nil {
		return a
	}
	b, err := json.Marshal(v)
	if err != nil {
		return a
	}
	var m map[string]any
	if json.Unmarshal(b, &m) != nil {
		return a
	}
	delete(m, "resultType")
	if meta, ok := m["_meta"].(map[string]any); ok {
		for k := range meta {
			if strings.HasPrefix(k, reservedMeta) {
				delete(meta, k)
			}
		}
		if len(meta) == 0 {
			delete(m, "_meta")
		}
	}
	if b, err = json.Marshal(m); err != nil {
		return a
	}
	return Answer{Result: b}
}

// reservedMeta prefixes the _meta keys the protocol reserves.
const reservedMeta = "io.modelcontextprotocol/"
