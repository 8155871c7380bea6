package gateway_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/mcpstream/mcpstream/gateway"
	"github.com/mcpstream/mcpstream/schema"
	"github.com/mcpstream/mcpstream/streams"
)

// batchOf is a JSON-RPC batch of the messages.
func batchOf(msgs ...string) string { return "[" + strings.Join(msgs, ",") + "]" }

// holdBatch is a batch of n calls of the hold tool, ids first to
// first+n-1.
func holdBatch(first, n int) string {
	var msgs []string
	for i := range n {
		msgs = append(msgs, callBody(first+i, "hold", `{}`, ""))
	}
	return batchOf(msgs...)
}

// refusedWhole checks that a batch over MaxBatch was answered with 400 and
// -32600 naming the cap, and that none of its calls of the hold tool
// reached the worker before the answer came.
func refusedWhole(t *testing.T, tg *testGateway, done <-chan response, limit int) {
	t.Helper()
	select {
	case r := <-done:
		m := wantError(t, r, http.StatusBadRequest, schema.CodeInvalidRequest)
		if want := fmt.Sprintf("at most %d", limit); !strings.Contains(m.Error.Message, want) {
			t.Errorf("message %q does not say %q", m.Error.Message, want)
		}
	case h := <-tg.held:
		h.release <- nil
		t.Fatalf("a call of the refused batch reached the worker: %s", h.call.Env.Name)
	}
}

// TestBatchLimit checks MaxBatch on both transports: a batch of more
// messages is refused whole with 400 and -32600 before any of it runs,
// and a batch of exactly MaxBatch is served in full.
func TestBatchLimit(t *testing.T) {
	const limit = 3
	tg := newTestGateway(t, gateway.Config{MaxBatch: limit})

	t.Run("Streamable HTTP", func(t *testing.T) {
		hs := tg.initialize(t, "2025-03-26", `{}`)
		refusedWhole(t, tg, tg.postAsync(context.Background(), holdBatch(1, limit+1), hs...), limit)

		r := tg.post(t, batchOf(callBody(1, "echo", `{"text":"a"}`, ""), `{"jsonrpc":"2.0","id":2,"method":"ping"}`,
			callBody(3, "echo", `{"text":"c"}`, "")), hs...)
		if r.status != http.StatusOK {
			t.Fatalf("a batch of %d: status %d: %s", limit, r.status, r.body)
		}
		var out []json.RawMessage
		if err := json.Unmarshal(r.body, &out); err != nil || len(out) != limit {
			t.Fatalf("a batch of %d: want %d responses (%v): %s", limit, limit, err, r.body)
		}
		for i, b := range out {
			if m := decode(t, b); m.Error != nil || string(m.ID) != fmt.Sprint(i+1) {
				t.Errorf("response %d: %s", i, b)
			}
		}
	})

	t.Run("HTTP+SSE", func(t *testing.T) {
		c := openHTTPSSE(t, tg)
		c.initialize(`{}`)
		done := make(chan response, 1)
		go func() {
			r, err := tg.try(context.Background(), http.MethodPost, c.messages, holdBatch(1, limit+1))
			if err != nil {
				r = response{body: []byte(err.Error())}
			}
			done <- r
		}()
		refusedWhole(t, tg, done, limit)

		c.send(batchOf(callBody(1, "echo", `{"text":"a"}`, ""), `{"jsonrpc":"2.0","id":2,"method":"ping"}`,
			callBody(3, "echo", `{"text":"c"}`, "")))
		seen := map[string]bool{}
		for range limit {
			m := c.next("an answer of the batch")
			if m.Error != nil || m.Result == nil {
				t.Errorf("answer %s", m)
			}
			seen[string(m.ID)] = true
		}
		if !seen["1"] || !seen["2"] || !seen["3"] {
			t.Errorf("answers for ids %v, want 1, 2 and 3", seen)
		}
	})
}

// TestBatchConcurrency checks BatchConcurrency on both transports: of a
// batch of calls the worker holds, no more than BatchConcurrency reach it
// at once; the next comes as one is released, and the batch is served in
// full.
func TestBatchConcurrency(t *testing.T) {
	const limit, calls = 2, 7
	tg := newTestGateway(t, gateway.Config{BatchConcurrency: limit})
	// serve releases the batch's calls as they reach the worker, limit at
	// a time (the last, fewer): each round waits for limit calls, which
	// gives any call beyond the limit time to reach the handler too.
	serve := func(t *testing.T) {
		t.Helper()
		for left := calls; left > 0; {
			round := make([]heldCall, min(limit, left))
			for i := range round {
				round[i] = tg.awaitHeld(t)
			}
			for _, h := range round {
				h.release <- map[string]any{"content": []any{map[string]any{"type": "text", "text": "done"}}}
				await(t, h.ended, "the end of a held call")
			}
			left -= len(round)
		}
		if most := tg.mostHolding.Load(); most > limit {
			t.Errorf("%d calls of one batch at the worker at once, want at most %d", most, limit)
		}
	}

	t.Run("Streamable HTTP", func(t *testing.T) {
		hs := tg.initialize(t, "2025-03-26", `{}`)
		done := tg.postAsync(context.Background(), holdBatch(1, calls), hs...)
		serve(t)
		r := await(t, done, "the batch's response")
		var out []json.RawMessage
		if err := json.Unmarshal(r.body, &out); r.status != http.StatusOK || err != nil || len(out) != calls {
			t.Fatalf("status %d, want 200 and %d responses (%v): %s", r.status, calls, err, r.body)
		}
		for i, b := range out {
			if m := decode(t, b); m.Error != nil || string(m.ID) != fmt.Sprint(i+1) || toolText(t, m.Result) != "done" {
				t.Errorf("response %d: %s", i, b)
			}
		}
	})

	t.Run("HTTP+SSE", func(t *testing.T) {
		tg.mostHolding.Store(0)
		c := openHTTPSSE(t, tg)
		c.initialize(`{}`)
		c.send(holdBatch(1, calls))
		serve(t)
		seen := map[string]bool{}
		for range calls {
			m := c.next("an answer of the batch")
			if m.Error != nil || toolText(t, m.Result) != "done" {
				t.Errorf("answer %s", m)
			}
			seen[string(m.ID)] = true
		}
		if len(seen) != calls {
			t.Errorf("answers for ids %v, want %d", seen, calls)
		}
	})
}

// TestBatchAnswersWaitTheirTurn checks that an answer of a batch keeps its
// request's slot until it is written, in the order of the requests: with
// BatchConcurrency 2 and the first call held, the second call's answer
// waits for the first, and no third call starts meanwhile. Otherwise a
// batch whose first call is slow holds every other call's answer in
// memory, however large (MaxBatch of them), until the first one ends.
func TestBatchAnswersWaitTheirTurn(t *testing.T) {
	tg := newTestGateway(t, gateway.Config{BatchConcurrency: 2})
	hs := tg.initialize(t, "2025-03-26", `{}`)
	done := tg.postAsync(context.Background(), holdBatch(1, 3), hs...)
	first, second := tg.awaitHeld(t), tg.awaitHeld(t)
	if first.call.Env.RequestID != "1" {
		first, second = second, first
	}
	if first.call.Env.RequestID != "1" || second.call.Env.RequestID != "2" {
		t.Fatalf("calls %s and %s reached the worker first, want 1 and 2", first.call.Env.RequestID, second.call.Env.RequestID)
	}
	second.release <- map[string]any{"content": []any{map[string]any{"type": "text", "text": "second"}}}
	await(t, second.ended, "the end of the second call")
	// Nothing can be awaited for a call that must not start: the third
	// is given a while to reach the worker (it does at once without the
	// bound).
	select {
	case h := <-tg.held:
		h.release <- nil
		t.Fatalf("call %s started while the answer of call 2 waited for call 1's", h.call.Env.RequestID)
	case <-time.After(300 * time.Millisecond):
	}
	first.release <- map[string]any{"content": []any{map[string]any{"type": "text", "text": "first"}}}
	third := tg.awaitHeld(t)
	third.release <- map[string]any{"content": []any{map[string]any{"type": "text", "text": "third"}}}
	r := await(t, done, "the batch's response")
	var out []json.RawMessage
	if err := json.Unmarshal(r.body, &out); r.status != http.StatusOK || err != nil || len(out) != 3 {
		t.Fatalf("status %d, want 200 and 3 responses (%v): %s", r.status, err, r.body)
	}
	for i, want := range []string{"first", "second", "third"} {
		if m := decode(t, out[i]); m.Error != nil || string(m.ID) != fmt.Sprint(i+1) || toolText(t, m.Result) != want {
			t.Errorf("response %d: %s, want id %d and %q", i, out[i], i+1, want)
		}
	}
}

// TestBatchPrincipalRate checks that each request of a batch counts
// against its principal's rate (Config.PrincipalRate) as if posted alone:
// of a batch of five pings with three tokens left, three are served and
// two refused in their slots with -32000, and the batch is 200.
func TestBatchPrincipalRate(t *testing.T) {
	tg := newTestGateway(t, gateway.Config{PrincipalHeader: "X-User", PrincipalRate: 0.01, PrincipalBurst: 4, PrincipalRateHold: -1})
	r := tg.post(t, initializeBody(1, "2025-03-26", `{}`), "X-User", "alice") // the first token
	wantResult(t, r)
	hs := []string{"X-User", "alice", "Mcp-Session-Id", r.header.Get("Mcp-Session-Id"), "MCP-Protocol-Version", "2025-03-26"}
	var pings []string
	for i := range 5 {
		pings = append(pings, fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"ping"}`, i+1))
	}
	r = tg.post(t, batchOf(pings...), hs...)
	var out []json.RawMessage
	if err := json.Unmarshal(r.body, &out); r.status != http.StatusOK || err != nil || len(out) != len(pings) {
		t.Fatalf("status %d, want 200 and %d responses (%v): %s", r.status, len(pings), err, r.body)
	}
	served, refused := 0, 0
	for _, b := range out {
		switch m := decode(t, b); {
		case m.Error == nil:
			served++
		case m.Error.Code == schema.CodeOverloaded:
			refused++
		}
	}
	if served != 3 || refused != 2 {
		t.Errorf("%d served and %d refused, want 3 and 2: %s", served, refused, r.body)
	}
}

// TestBatchEventOnly: a client that accepts only event streams gets a
// batch's answers as one SSE event whose data is the array, in the order
// of the requests, a bad element's error in its place.
func TestBatchEventOnly(t *testing.T) {
	tg := newTestGateway(t, gateway.Config{})
	hs := append(tg.initialize(t, "2025-03-26", `{}`), "Accept", "text/event-stream")
	r := tg.post(t, batchOf(callBody(1, "echo", `{"text":"a"}`, ""), `{"foo":1}`, `{"jsonrpc":"2.0","id":2,"method":"ping"}`,
		`{"jsonrpc":"2.0","method":"notifications/initialized"}`, callBody(3, "echo", `{"text":"c"}`, "")), hs...)
	if r.status != http.StatusOK || !strings.HasPrefix(r.header.Get("Content-Type"), "text/event-stream") {
		t.Fatalf("status %d, type %q, want 200 and an event stream: %s", r.status, r.header.Get("Content-Type"), r.body)
	}
	data, ok := strings.CutPrefix(string(r.body), "event: message\ndata: ")
	if !ok || !strings.HasSuffix(data, "\n\n") || strings.Count(data, "\n") != 2 {
		t.Fatalf("want one message event: %q", r.body)
	}
	var out []json.RawMessage
	if err := json.Unmarshal([]byte(data), &out); err != nil || len(out) != 4 {
		t.Fatalf("want an array of 4 answers (%v): %s", err, data)
	}
	for i, id := range []string{"1", "null", "2", "3"} {
		if m := decode(t, out[i]); string(m.ID) != id || (id == "null") != (m.Error != nil) {
			t.Errorf("answer %d: %s, want id %s", i, out[i], id)
		}
	}
}

// TestCancelPrincipalRate: notifications/cancelled, which the gateway
// passes to every worker, counts against its principal's rate as a
// request does: in a batch, those past the rate are dropped (the batch
// still gets 202: a notification has no answer), and one posted alone is
// refused with 429 and Retry-After. Another principal's cancellation,
// passed on after them on the same connection, marks the end of alice's.
func TestCancelPrincipalRate(t *testing.T) {
	tg := newTestGateway(t, gateway.Config{PrincipalHeader: "X-User", PrincipalRate: 0.01, PrincipalBurst: 4, PrincipalRateHold: -1})
	nc, err := tg.emb.Connect()
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	sub, err := nc.SubscribeSync(streams.CancelSubject)
	if err != nil || nc.Flush() != nil {
		t.Fatalf("subscribing to cancellations: %v", err)
	}
	session := func(user string) []string {
		r := tg.post(t, initializeBody(1, "2025-03-26", `{}`), "X-User", user) // a token
		wantResult(t, r)
		return []string{"X-User", user, "Mcp-Session-Id", r.header.Get("Mcp-Session-Id"), "MCP-Protocol-Version", "2025-03-26"}
	}
	alice, bob := session("alice"), session("bob")
	cancel := func(id int) string {
		return fmt.Sprintf(`{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":%d}}`, id)
	}
	var cancels []string
	for i := range 5 {
		cancels = append(cancels, cancel(100+i))
	}
	if r := tg.post(t, batchOf(cancels...), alice...); r.status != http.StatusAccepted {
		t.Fatalf("a batch of cancellations: status %d, want 202: %s", r.status, r.body)
	}
	r := tg.post(t, cancel(200), alice...)
	if r.status != http.StatusTooManyRequests || r.header.Get("Retry-After") == "" {
		t.Fatalf("a cancellation past the rate: status %d, Retry-After %q, want 429 with one: %s", r.status, r.header.Get("Retry-After"), r.body)
	}
	wantError(t, r, http.StatusTooManyRequests, schema.CodeOverloaded)
	if r := tg.post(t, cancel(300), bob...); r.status != http.StatusAccepted {
		t.Fatalf("bob's cancellation: status %d: %s", r.status, r.body)
	}
	var passed []string
	for {
		m, err := sub.NextMsg(waitFor)
		if err != nil {
			t.Fatalf("waiting for bob's cancellation (alice's passed on: %v): %v", passed, err)
		}
		c, err := schema.UnmarshalCancel(m.Data)
		if err != nil {
			t.Fatal(err)
		}
		if c.RequestID == "300" {
			break
		}
		passed = append(passed, c.RequestID)
	}
	if want := []string{"100", "101", "102"}; fmt.Sprint(passed) != fmt.Sprint(want) {
		t.Errorf("alice's cancellations passed on: %v, want %v (three tokens left of her burst of four)", passed, want)
	}
}

// TestGETPrincipalRate: a session's GET stream counts against its
// principal's rate as a request does (each one replaces the session's
// stream, and a resumption reads the events stream): past the principal's
// burst a GET is refused with 429 and Retry-After.
func TestGETPrincipalRate(t *testing.T) {
	tg := newTestGateway(t, gateway.Config{PrincipalHeader: "X-User", PrincipalRate: 0.01, PrincipalBurst: 3, PrincipalRateHold: -1})
	r := tg.post(t, initializeBody(1, "2025-11-25", `{}`), "X-User", "alice") // the first token
	wantResult(t, r)
	get := []string{"X-User", "alice", "Accept", "text/event-stream", "Mcp-Session-Id", r.header.Get("Mcp-Session-Id"),
		"MCP-Protocol-Version", "2025-11-25", "Last-Event-ID", "1"}
	for i := range 2 {
		if resp := tg.open(t, t.Context(), http.MethodGet, tg.url, "", get...); resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %d within the burst: status %d", i+1, resp.StatusCode)
		}
	}
	resp := tg.open(t, t.Context(), http.MethodGet, tg.url, "", get...)
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("GET past the burst: status %d, Retry-After %q, want 429 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
}
