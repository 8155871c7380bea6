package replay

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcpstream/mcpstream/schema"
)

// server is a go-sdk MCP server on loopback (Streamable HTTP) with tools
// echo (returns its text) and slow (answers when its call is cancelled),
// prompt greet, resource mem://motd and completions; it counts the
// sessions initialized and keeps what echo was sent by server session.
type server struct {
	URL string
	// started receives when a call of slow starts.
	started chan struct{}

	mu          sync.Mutex
	initialized int
	echoed      map[string][]string // texts by server session id
	auth        []string            // the Authorization header of each request
}

// startServer starts a server, closed when t ends.
func startServer(t *testing.T) *server {
	t.Helper()
	s := &server{started: make(chan struct{}, 16), echoed: map[string][]string{}}
	release := make(chan struct{})
	srv := mcp.NewServer(&mcp.Implementation{Name: "test", Version: "1"}, &mcp.ServerOptions{
		InitializedHandler: func(context.Context, *mcp.InitializedRequest) {
			s.mu.Lock()
			s.initialized++
			s.mu.Unlock()
		},
		CompletionHandler: func(_ context.Context, req *mcp.CompleteRequest) (*mcp.CompleteResult, error) {
			return &mcp.CompleteResult{Completion: mcp.CompletionResultDetails{Values: []string{req.Params.Argument.Value + "da"}}}, nil
		},
	})
	object := json.RawMessage(`{"type":"object"}`)
	srv.AddTool(&mcp.Tool{Name: "echo", InputSchema: object}, func(_ context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		var a struct{ Text string }
		if err := json.Unmarshal(req.Params.Arguments, &a); err != nil {
			return nil, err
		}
		s.mu.Lock()
		s.echoed[req.Session.ID()] = append(s.echoed[req.Session.ID()], a.Text)
		s.mu.Unlock()
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: a.Text}}}, nil
	})
	srv.AddTool(&mcp.Tool{Name: "slow", InputSchema: object}, func(ctx context.Context, _ *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		s.started <- struct{}{}
		select {
		case <-ctx.Done():
		case <-release:
		}
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "late"}}}, nil
	})
	srv.AddPrompt(&mcp.Prompt{Name: "greet", Arguments: []*mcp.PromptArgument{{Name: "name"}}},
		func(_ context.Context, req *mcp.GetPromptRequest) (*mcp.GetPromptResult, error) {
			return &mcp.GetPromptResult{Messages: []*mcp.PromptMessage{
				{Role: "user", Content: &mcp.TextContent{Text: "hello " + req.Params.Arguments["name"]}}}}, nil
		})
	srv.AddResource(&mcp.Resource{URI: "mem://motd", Name: "motd"}, func(_ context.Context, req *mcp.ReadResourceRequest) (*mcp.ReadResourceResult, error) {
		return &mcp.ReadResourceResult{Contents: []*mcp.ResourceContents{{URI: req.Params.URI, Text: "be kind"}}}, nil
	})
	h := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return srv }, nil)
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.auth = append(s.auth, r.Header.Get("Authorization"))
		s.mu.Unlock()
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(hs.Close)
	t.Cleanup(func() { close(release) }) // before hs.Close: slow calls end
	s.URL = hs.URL
	return s
}

// toolLine is a recorded tools/call of tool with args, answered with
// result (none when "").
func toolLine(seq uint64, session, tool, args, result string) *Line {
	l := &Line{Seq: seq, Stream: "MCP_REQ_0", Key: fmt.Sprintf("key-%d", seq), Session: session,
		Method: schema.MethodToolsCall, Tool: tool, Arguments: json.RawMessage(args)}
	if result != "" {
		l.Result = json.RawMessage(result)
	}
	return l
}

// echo is a recorded call of echo with text, answered with answered.
func echo(seq uint64, session, text, answered string) *Line {
	return toolLine(seq, session, "echo", fmt.Sprintf(`{"text":%q}`, text),
		fmt.Sprintf(`{"content":[{"type":"text","text":%q}]}`, answered))
}

// each yields lines, in order.
func each(lines ...*Line) iter.Seq2[*Line, error] {
	return func(yield func(*Line, error) bool) {
		for _, l := range lines {
			if !yield(l, nil) {
				return
			}
		}
	}
}

// rerun runs Rerun and returns its summary and the lines it wrote,
// failing the test on an error.
func rerun(t *testing.T, o RerunOptions, lines ...*Line) (Summary, []rerunLine) {
	t.Helper()
	var out bytes.Buffer
	sum, err := Rerun(context.Background(), o, each(lines...), &out)
	if err != nil {
		t.Fatalf("Rerun: %v", err)
	}
	return sum, outLines(t, &out)
}

// outLines decodes what Rerun wrote.
func outLines(t *testing.T, out *bytes.Buffer) []rerunLine {
	t.Helper()
	var got []rerunLine
	for _, b := range bytes.Split(bytes.TrimSuffix(out.Bytes(), []byte("\n")), []byte("\n")) {
		if len(b) == 0 {
			continue
		}
		var rl rerunLine
		if err := json.Unmarshal(b, &rl); err != nil {
			t.Fatalf("line %s: %v", b, err)
		}
		got = append(got, rl)
	}
	return got
}

// bySeq indexes written lines by seq.
func bySeq(lines []rerunLine) map[uint64]rerunLine {
	m := map[uint64]rerunLine{}
	for _, l := range lines {
		m[l.Seq] = l
	}
	return m
}

// TestRerunDiff: against a real server, the four methods' answers that
// equal their recorded ones (spelt differently, or with what go-sdk's
// types drop) are Same and not written; a changed text is Different with
// a diff showing both texts; a line without a recorded answer is
// Unrecorded with the new answer; a JSON-RPC error recorded as the same
// error is Same, as another error Different; other methods are skipped.
func TestRerunDiff(t *testing.T) {
	s := startServer(t)
	unknown := toolLine(4, "", "nope", `{}`, "")
	unknown.Error = &schema.Error{Code: -32602, Message: `unknown tool "nope"`}
	otherErr := toolLine(5, "", "nope", `{}`, "")
	otherErr.Error = &schema.Error{Code: -32602, Message: `no such tool`}
	prompt := &Line{Seq: 7, Key: "k7", Method: schema.MethodPromptsGet, Tool: "greet", Arguments: json.RawMessage(`{"name":"ada"}`),
		Result: json.RawMessage(`{"messages":[{"content":{"text":"hello ada","type":"text"},"role":"user"}]}`)}
	resource := &Line{Seq: 8, Key: "k8", Method: schema.MethodResourcesRead, Tool: "mem://motd",
		Result: json.RawMessage(`{"contents":[{"uri":"mem://motd","text":"be kind"}]}`)}
	complete := &Line{Seq: 9, Key: "k9", Method: schema.MethodCompletionComplete,
		Arguments: json.RawMessage(`{"ref":{"type":"ref/prompt","name":"greet"},"argument":{"name":"name","value":"a"}}`),
		Result:    json.RawMessage(`{"completion":{"values":["ada"]}}`)}
	lines := []*Line{
		echo(1, "a", "hi", "hi"),
		echo(2, "a", "hi", "hello"),
		toolLine(3, "b", "echo", `{"text":"hi"}`, ""),
		unknown, otherErr,
		{Seq: 6, Key: "k6", Method: schema.MethodToolsList},
		prompt, resource, complete,
		toolLine(10, "a", "echo", `{"text":"hi"}`, `{ "isError": false, "content": [ {"text": "hi", "type": "text"} ] }`),
	}
	sum, out := rerun(t, RerunOptions{To: s.URL, Diff: true}, lines...)
	want := Summary{Sent: 9, Answered: 9, Same: 6, Different: 2, Unrecorded: 1, Skipped: 1, Compared: true}
	if sum != want {
		t.Errorf("summary %+v, want %+v; lines %+v", sum, want, out)
	}
	if got := sum.String(); got != "9 sent: 6 same, 2 different, 0 failed, 1 unrecorded, 1 skipped" {
		t.Errorf("summary reads %q", got)
	}
	got := bySeq(out)
	if len(out) != 3 {
		t.Errorf("%d lines written, want 3 (2, 3 and 5): %+v", len(out), out)
	}
	if l := got[2]; l.Outcome != "different" || !strings.Contains(l.Diff, `"hello"`) || !strings.Contains(l.Diff, `"hi"`) ||
		l.Key != "key-2" || l.Tool != "echo" || l.Method != "tools/call" || l.Stream != "MCP_REQ_0" || l.Took == "" {
		t.Errorf("line 2: %+v", l)
	}
	if l := got[3]; l.Outcome != "unrecorded" || !strings.Contains(string(l.Result), `"text":"hi"`) || l.Diff != "" {
		t.Errorf("line 3: %+v", l)
	}
	if l := got[5]; l.Outcome != "different" || !strings.Contains(l.Diff, "no such tool") || !strings.Contains(l.Diff, "unknown tool") {
		t.Errorf("line 5: %+v", l)
	}
}

// TestRerunIgnore: a difference under an ignored pointer is not one.
func TestRerunIgnore(t *testing.T) {
	s := startServer(t)
	o := RerunOptions{To: s.URL, Diff: true}
	if sum, _ := rerun(t, o, echo(1, "", "hi", "hello")); sum.Different != 1 {
		t.Fatalf("without ignore: %+v", sum)
	}
	o.Ignore = []Pointer{pointer(t, "/result/content/*/text")}
	sum, out := rerun(t, o, echo(1, "", "hi", "hello"))
	if sum.Same != 1 || sum.Different != 0 || len(out) != 0 {
		t.Errorf("ignoring the text: %+v, %+v", sum, out)
	}
}

// TestRerunAnswers: without Diff every call is written with what the
// endpoint answered, result or JSON-RPC error, recorded or not.
func TestRerunAnswers(t *testing.T) {
	s := startServer(t)
	sum, out := rerun(t, RerunOptions{To: s.URL}, echo(1, "", "hi", "recorded"), toolLine(2, "", "nope", `{}`, ""))
	if sum != (Summary{Sent: 2, Answered: 2}) || sum.String() != "2 sent: 2 answered, 0 failed, 0 skipped" {
		t.Errorf("summary %+v %q", sum, sum)
	}
	got := bySeq(out)
	if l := got[1]; l.Outcome != "answered" || string(l.Result) != `{"content":[{"type":"text","text":"hi"}]}` || l.Error != nil || l.Diff != "" {
		t.Errorf("line 1: %+v (result %s)", l, l.Result)
	}
	if l := got[2]; l.Outcome != "answered" || l.Error == nil || l.Error.Code != -32602 || !strings.Contains(l.Error.Message, "nope") || l.Result != nil {
		t.Errorf("line 2: %+v", l)
	}
}

// TestRerunUnreachable: calls to an endpoint nobody listens on fail, each
// written with why, and the re-run itself does not.
func TestRerunUnreachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + ln.Addr().String() + "/mcp"
	ln.Close()
	for _, diff := range []bool{false, true} {
		sum, out := rerun(t, RerunOptions{To: url, Diff: diff}, echo(1, "a", "hi", "hi"), echo(2, "a", "hi", "hi"))
		if sum.Sent != 2 || sum.Failed != 2 || sum.Answered != 0 || sum.Same != 0 || len(out) != 2 {
			t.Errorf("diff %v: %+v, %+v", diff, sum, out)
		}
		for _, l := range out {
			if l.Outcome != "failed" || !strings.Contains(l.Failure, "connecting to "+url) || l.Result != nil || l.Error != nil {
				t.Errorf("diff %v: line %+v", diff, l)
			}
		}
	}
}

// TestRerunTimeout: a call without an answer within Timeout fails; the
// session's next call is answered.
func TestRerunTimeout(t *testing.T) {
	s := startServer(t)
	sum, out := rerun(t, RerunOptions{To: s.URL, Diff: true, Timeout: 300 * time.Millisecond},
		toolLine(1, "a", "slow", `{}`, `{"content":[]}`), echo(2, "a", "hi", "hi"))
	if sum.Failed != 1 || sum.Same != 1 || len(out) != 1 {
		t.Fatalf("%+v, %+v", sum, out)
	}
	if l := out[0]; l.Seq != 1 || l.Outcome != "failed" || !strings.Contains(l.Failure, "no answer within 300ms") {
		t.Errorf("line %+v", l)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.initialized != 1 {
		t.Errorf("%d sessions opened, want 1: a timeout keeps the session", s.initialized)
	}
}

// TestRerunOriginalPacing: the recorded gaps are kept, capped at MaxGap.
func TestRerunOriginalPacing(t *testing.T) {
	s := startServer(t)
	t0 := time.Now().Add(-24 * time.Hour)
	lines := []*Line{echo(1, "", "a", "a"), echo(2, "", "b", "b"), echo(3, "", "c", "c"), echo(4, "", "d", "d")}
	lines[0].at, lines[1].at, lines[2].at, lines[3].at = t0, t0.Add(200*time.Millisecond), t0.Add(time.Hour), t0.Add(time.Hour)
	start := time.Now()
	sum, _ := rerun(t, RerunOptions{To: s.URL, Diff: true, Rate: Rate{Original: true}, MaxGap: 300 * time.Millisecond}, lines...)
	elapsed := time.Since(start)
	if sum.Same != 4 {
		t.Fatalf("%+v", sum)
	}
	if elapsed < 500*time.Millisecond || elapsed > time.Minute {
		t.Errorf("took %v, want 200ms + 300ms (an hour capped) at least, and the hour not waited", elapsed)
	}
}

// TestRerunPerSecond: calls go no faster than the rate.
func TestRerunPerSecond(t *testing.T) {
	s := startServer(t)
	var lines []*Line
	for i := range 6 {
		lines = append(lines, echo(uint64(i), fmt.Sprint(i), "x", "x"))
	}
	start := time.Now()
	sum, _ := rerun(t, RerunOptions{To: s.URL, Diff: true, Rate: Rate{PerSecond: 20}, Concurrency: 6}, lines...)
	if sum.Same != 6 {
		t.Fatalf("%+v", sum)
	}
	if elapsed := time.Since(start); elapsed < 250*time.Millisecond {
		t.Errorf("6 calls at 20/s took %v, want 250ms at least", elapsed)
	}
}

// TestRerunConcurrency: N goroutines use N sessions of the endpoint; all
// the calls of one recorded session go through one of them, in their
// recorded order.
func TestRerunConcurrency(t *testing.T) {
	for _, n := range []int{1, 3} {
		s := startServer(t)
		var lines []*Line
		for j := range 5 {
			for i := range 20 {
				lines = append(lines, echo(uint64(100*j+i), fmt.Sprintf("sess-%d", i), fmt.Sprintf("sess-%d/%d", i, j), "x"))
			}
		}
		sum, _ := rerun(t, RerunOptions{To: s.URL, Concurrency: n}, lines...)
		if sum.Answered != 100 {
			t.Fatalf("n=%d: %+v", n, sum)
		}
		s.mu.Lock()
		if s.initialized != n || len(s.echoed) != n {
			t.Errorf("n=%d: %d sessions initialized, %d used", n, s.initialized, len(s.echoed))
		}
		where := map[string]string{} // recorded session -> server session
		for id, texts := range s.echoed {
			next := map[string]int{}
			for _, text := range texts {
				sess, j, _ := strings.Cut(text, "/")
				if w, ok := where[sess]; ok && w != id {
					t.Errorf("n=%d: %s on sessions %s and %s", n, sess, w, id)
				}
				where[sess] = id
				if want := fmt.Sprint(next[sess]); j != want {
					t.Errorf("n=%d: %s call %s came when %s was due", n, sess, j, want)
				}
				next[sess]++
			}
		}
		s.mu.Unlock()
		if len(where) != 20 {
			t.Errorf("n=%d: %d recorded sessions seen, want 20", n, len(where))
		}
	}
}

// TestPick: a session's lines share a queue whatever their keys; lines
// without a session spread over the queues by key.
func TestPick(t *testing.T) {
	const n = 4
	used := map[int]bool{}
	for i := range 64 {
		l := &Line{Key: fmt.Sprint("key-", i)}
		used[pick(l, n)] = true
		if q := pick(&Line{Key: fmt.Sprint("key-", i), Session: "s"}, n); q != pick(&Line{Key: "other", Session: "s"}, n) {
			t.Fatalf("session s in queues %d and %d", q, pick(&Line{Key: "other", Session: "s"}, n))
		}
	}
	if len(used) != n {
		t.Errorf("64 keys in %d of %d queues", len(used), n)
	}
}

// TestRerunCancel: ending ctx stops a re-run with a call under way; the
// call cut short is neither counted nor written.
func TestRerunCancel(t *testing.T) {
	s := startServer(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-s.started:
			cancel()
		case <-ctx.Done():
		}
	}()
	var out bytes.Buffer
	start := time.Now()
	sum, err := Rerun(ctx, RerunOptions{To: s.URL, Timeout: time.Hour}, each(toolLine(1, "a", "slow", `{}`, ""), echo(2, "a", "hi", "hi")), &out)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("error %v, want context.Canceled", err)
	}
	if sum.Sent != 0 || out.Len() != 0 {
		t.Errorf("cancelled: %+v, wrote %s", sum, out.String())
	}
	// The server holds the session's DELETE until its slow call ends (5 s
	// go-sdk's client would wait): once cancelled, Rerun waits endGrace.
	if elapsed := time.Since(start); elapsed > endGrace+2*time.Second {
		t.Errorf("returned %v after being cancelled", elapsed)
	}
}

// TestRerunLinesError: an error reading the lines ends the re-run with
// it, after the calls already read.
func TestRerunLinesError(t *testing.T) {
	s := startServer(t)
	broken := errors.New("stream gone")
	lines := func(yield func(*Line, error) bool) {
		if yield(echo(1, "", "hi", "hi"), nil) {
			yield(nil, broken)
		}
	}
	sum, err := Rerun(context.Background(), RerunOptions{To: s.URL, Diff: true}, lines, &bytes.Buffer{})
	if !errors.Is(err, broken) || !strings.Contains(err.Error(), "reading the lines") {
		t.Errorf("error %v", err)
	}
	if sum.Same != 1 {
		t.Errorf("%+v", sum)
	}
}

// failWriter fails every write.
type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

// TestRerunWriteError: an error writing a line ends the re-run with it.
func TestRerunWriteError(t *testing.T) {
	s := startServer(t)
	_, err := Rerun(context.Background(), RerunOptions{To: s.URL}, each(echo(1, "", "hi", "hi"), echo(2, "", "hi", "hi")), failWriter{})
	if err == nil || !strings.Contains(err.Error(), "disk full") || !strings.Contains(err.Error(), "seq 1") {
		t.Errorf("error %v", err)
	}
}

// TestRerunHeader: Header is on every request, over the given client.
func TestRerunHeader(t *testing.T) {
	s := startServer(t)
	rerun(t, RerunOptions{To: s.URL, HTTPClient: &http.Client{}, Header: http.Header{"Authorization": {"Bearer t"}}}, echo(1, "", "hi", "hi"))
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.auth) < 3 || slices.ContainsFunc(s.auth, func(a string) bool { return a != "Bearer t" }) {
		t.Errorf("Authorization of the requests: %q", s.auth)
	}
}

// TestRerunOptions: options that cannot work are refused before anything
// is sent, with an error naming what is wrong.
func TestRerunOptions(t *testing.T) {
	for _, c := range []struct {
		o    RerunOptions
		want string
	}{
		{RerunOptions{}, "no endpoint"},
		{RerunOptions{To: "localhost:8080"}, "not an http"},
		{RerunOptions{To: "ftp://h/mcp"}, "not an http"},
		{RerunOptions{To: "http://h/mcp", Rate: Rate{Original: true, PerSecond: 3}}, "not both"},
		{RerunOptions{To: "http://h/mcp", Rate: Rate{PerSecond: -1}}, "positive"},
	} {
		_, err := Rerun(context.Background(), c.o, each(echo(1, "", "a", "a")), &bytes.Buffer{})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: error %v, want %q", c.o, err, c.want)
		}
	}
}

// TestParseRate: the three forms are read, and anything else is refused
// saying what is accepted.
func TestParseRate(t *testing.T) {
	for s, want := range map[string]Rate{"original": {Original: true}, "instant": {}, "50": {PerSecond: 50}, " 0.5 ": {PerSecond: 0.5}, "1e3": {PerSecond: 1000}} {
		got, err := ParseRate(s)
		if err != nil || got != want {
			t.Errorf("ParseRate(%q) = %+v, %v", s, got, err)
		}
		if back, err := ParseRate(got.String()); err != nil || back != got {
			t.Errorf("ParseRate(%q) = %+v, %v", got.String(), back, err)
		}
	}
	for s, msg := range map[string]string{"": "original", "fast": "original", "0": "positive", "-2": "positive", "NaN": "positive", "+Inf": "positive"} {
		if _, err := ParseRate(s); err == nil || !strings.Contains(err.Error(), msg) {
			t.Errorf("ParseRate(%q): error %v, want one saying %q", s, err, msg)
		}
	}
}

// TestWireError: a JSON-RPC error found in go-sdk's error is the
// endpoint's answer; the marks its transport wraps failures in are not.
func TestWireError(t *testing.T) {
	rejected := &jsonrpc.Error{Code: -32005, Message: "rejected by transport"}
	answer := &jsonrpc.Error{Code: -32602, Message: "bad"}
	for name, c := range map[string]struct {
		err  error
		want *jsonrpc.Error
	}{
		"answer":             {fmt.Errorf("calling %q: %w", "tools/call", answer), answer},
		"refused":            {fmt.Errorf("calling: %w: %w", rejected, errors.New("connection refused")), nil},
		"answer on a 4xx":    {fmt.Errorf("POST: %w: %w: Bad Request", answer, rejected), answer},
		"rejected then join": {errors.Join(rejected, answer), answer},
		"plain":              {errors.New("EOF"), nil},
		"nil":                {nil, nil},
	} {
		if got := wireError(c.err); got != c.want {
			t.Errorf("%s: %v, want %v", name, got, c.want)
		}
	}
}

// TestSummaryString: the summary reads as the counts, with or without
// comparing.
func TestSummaryString(t *testing.T) {
	s := Summary{Sent: 1000, Answered: 1000, Same: 998, Different: 2, Skipped: 3, Compared: true}
	if got := s.String(); got != "1000 sent: 998 same, 2 different, 0 failed, 0 unrecorded, 3 skipped" {
		t.Errorf("%q", got)
	}
	s = Summary{Sent: 10, Answered: 9, Failed: 1}
	if got := s.String(); got != "10 sent: 9 answered, 1 failed, 0 skipped" {
		t.Errorf("%q", got)
	}
}

// TestScheduleOutOfOrder: at the original rate, a line recorded before
// an earlier one goes at once and does not move the schedule back: lines
// stamped 0, 10, 5 and 15 ms go at 0, 10, 10 and 15 ms (not 20 for the
// last, its gap counted from 5); MaxGap cuts only forward gaps, and a
// line without a time goes at once.
func TestScheduleOutOfOrder(t *testing.T) {
	t0 := time.Date(2026, 12, 7, 5, 0, 0, 0, time.UTC)
	ms := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Millisecond) }
	for _, c := range []struct {
		maxGap time.Duration
		at     []time.Time
		want   []time.Duration
	}{
		{0, []time.Time{ms(0), ms(10), ms(5), ms(15)}, []time.Duration{0, 10 * time.Millisecond, 10 * time.Millisecond, 15 * time.Millisecond}},
		{0, []time.Time{ms(100), ms(0), ms(0), ms(150)}, []time.Duration{0, 0, 0, 50 * time.Millisecond}},
		{20 * time.Millisecond, []time.Time{ms(0), ms(100), ms(50), ms(110), {}, ms(200)},
			[]time.Duration{0, 20 * time.Millisecond, 20 * time.Millisecond, 30 * time.Millisecond, 30 * time.Millisecond, 50 * time.Millisecond}},
	} {
		s := schedule{maxGap: c.maxGap}
		var got []time.Duration
		for _, at := range c.at {
			got = append(got, s.next(at))
		}
		if !slices.Equal(got, c.want) {
			t.Errorf("max gap %v, lines at %v: due %v, want %v", c.maxGap, c.at, got, c.want)
		}
	}
}
