package gateway_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/mcpstream/mcpstream/gateway"
	"github.com/mcpstream/mcpstream/internal/testkit"
	"github.com/mcpstream/mcpstream/schema"
)

// TestSessionRules checks the session rules of Streamable HTTP: a request
// without Mcp-Session-Id is 400, one naming an unknown session 404 (for
// POST, GET and DELETE); the GET event stream opens (200,
// text/event-stream, counted in OpenEventStreams), a second one for the
// session replaces it (200; the server closes the first, and one stream
// stays open), and once the client closes that one none is open; a GET
// without an Accept allowing event streams is 406; DELETE ends the
// session (204) and its open stream, after which the session is 404.
func TestSessionRules(t *testing.T) {
	tg := newTestGateway(t, gateway.Config{})
	ping := `{"jsonrpc":"2.0","id":1,"method":"ping"}`

	t.Run("no session id", func(t *testing.T) {
		m := wantError(t, tg.post(t, ping, "MCP-Protocol-Version", "2025-11-25"), http.StatusBadRequest, schema.CodeInvalidRequest)
		if string(m.ID) != "1" {
			t.Errorf("id %s", m.ID)
		}
		if r := tg.do(t, http.MethodGet, tg.url, "", "Accept", "text/event-stream"); r.status != http.StatusBadRequest {
			t.Errorf("GET without a session: status %d", r.status)
		}
		if r := tg.do(t, http.MethodDelete, tg.url, ""); r.status != http.StatusBadRequest {
			t.Errorf("DELETE without a session: status %d", r.status)
		}
	})

	t.Run("unknown session", func(t *testing.T) {
		for _, sid := range []string{"0123456789abcdef0123456789abcdef", "not-a-session"} {
			wantError(t, tg.post(t, ping, "Mcp-Session-Id", sid, "MCP-Protocol-Version", "2025-11-25"), http.StatusNotFound, schema.CodeInvalidRequest)
			if r := tg.do(t, http.MethodGet, tg.url, "", "Mcp-Session-Id", sid, "Accept", "text/event-stream"); r.status != http.StatusNotFound {
				t.Errorf("GET of session %s: status %d", sid, r.status)
			}
			if r := tg.do(t, http.MethodDelete, tg.url, "", "Mcp-Session-Id", sid); r.status != http.StatusNotFound {
				t.Errorf("DELETE of session %s: status %d", sid, r.status)
			}
		}
	})

	t.Run("event stream", func(t *testing.T) {
		hs := tg.initialize(t, "2025-11-25", `{}`)
		get := append([]string{"Accept", "text/event-stream"}, hs...)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		first := tg.open(t, ctx, http.MethodGet, tg.url, "", get...)
		if first.StatusCode != http.StatusOK || first.Header.Get("Content-Type") != "text/event-stream" {
			t.Fatalf("GET: status %d, Content-Type %q", first.StatusCode, first.Header.Get("Content-Type"))
		}
		if n := tg.g.OpenEventStreams(); n != 1 {
			t.Errorf("OpenEventStreams %d with one stream open", n)
		}
		if r := tg.do(t, http.MethodGet, tg.url, "", append(hs, "Accept", "application/json")...); r.status != http.StatusNotAcceptable {
			t.Errorf("GET accepting only JSON: status %d, want 406", r.status)
		}
		firstEvents := readSSE(first.Body)
		second := tg.open(t, ctx, http.MethodGet, tg.url, "", get...)
		if second.StatusCode != http.StatusOK {
			t.Fatalf("second GET: status %d, want 200", second.StatusCode)
		}
		select {
		case ev, ok := <-firstEvents:
			if ok {
				t.Fatalf("event %+v on the replaced stream", ev)
			}
		case <-time.After(waitFor):
			t.Fatal("the replaced stream stayed open")
		}
		testkit.Eventually(t, "one stream left open", waitFor, func() bool { return tg.g.OpenEventStreams() == 1 })
		second.Body.Close()
		testkit.Eventually(t, "the closed stream to be let go", waitFor, func() bool { return tg.g.OpenEventStreams() == 0 })
	})

	t.Run("delete", func(t *testing.T) {
		hs := tg.initialize(t, "2025-11-25", `{}`)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		stream := tg.open(t, ctx, http.MethodGet, tg.url, "", append([]string{"Accept", "text/event-stream"}, hs...)...)
		events := readSSE(stream.Body)
		if r := tg.do(t, http.MethodDelete, tg.url, "", hs...); r.status != http.StatusNoContent {
			t.Fatalf("DELETE: status %d, want 204: %s", r.status, r.body)
		}
		select {
		case ev, ok := <-events:
			if ok {
				t.Fatalf("event %+v on the deleted session's stream", ev)
			}
		case <-time.After(waitFor):
			t.Fatal("the deleted session's event stream stayed open")
		}
		wantError(t, tg.post(t, ping, hs...), http.StatusNotFound, schema.CodeInvalidRequest)
		if r := tg.do(t, http.MethodDelete, tg.url, "", hs...); r.status != http.StatusNotFound {
			t.Errorf("second DELETE: status %d, want 404", r.status)
		}
	})
}

// TestBatch checks JSON-RPC batches, which only revision 2025-03-26
// allows: the responses come as one JSON array in the order of the
// requests (a call the worker holds first, though the ping after it is
// answered sooner), with
// no entry for a notification, an error entry for an initialize inside
// the batch and for a worker's error; a batch of notifications only is
// 202; for a client accepting only event streams the array is one SSE
// event; a batch in a 2025-11-25 session is 400.
func TestBatch(t *testing.T) {
	tg := newTestGateway(t, gateway.Config{})
	hs := tg.initialize(t, "2025-03-26", `{}`)
	batch := `[` + callBody(1, "hold", `{}`, "") + `,
		{"jsonrpc":"2.0","method":"notifications/initialized"},
		{"jsonrpc":"2.0","id":2,"method":"ping"},
		` + initializeBody(3, "2025-03-26", `{}`) + `,
		` + callBody(4, "fail", `{}`, "") + `]`

	// send posts the batch and releases the held call.
	send := func(t *testing.T, headers ...string) response {
		t.Helper()
		done := tg.postAsync(context.Background(), batch, headers...)
		tg.awaitHeld(t).release <- map[string]any{"content": []any{map[string]any{"type": "text", "text": "first"}}}
		return await(t, done, "the batch's response")
	}
	check := func(t *testing.T, body []byte) {
		t.Helper()
		var out []json.RawMessage
		if err := json.Unmarshal(body, &out); err != nil || len(out) != 4 {
			t.Fatalf("want an array of 4 responses (%v): %s", err, body)
		}
		var ms []rpcMessage
		for _, b := range out {
			ms = append(ms, decode(t, b))
		}
		for i, want := range []string{"1", "2", "3", "4"} {
			if string(ms[i].ID) != want {
				t.Fatalf("response %d has id %s, want %s (request order): %s", i, ms[i].ID, want, body)
			}
		}
		if ms[0].Error != nil || toolText(t, ms[0].Result) != "first" {
			t.Errorf("tools/call: %s", out[0])
		}
		if ms[1].Error != nil || string(ms[1].Result) != `{}` {
			t.Errorf("ping: %s", out[1])
		}
		if ms[2].Error == nil || ms[2].Error.Code != schema.CodeInvalidRequest {
			t.Errorf("initialize in a batch: %s, want error %d", out[2], schema.CodeInvalidRequest)
		}
		if ms[3].Error == nil || ms[3].Error.Code != failError.Code {
			t.Errorf("failing call: %s, want error %d", out[3], failError.Code)
		}
	}

	t.Run("JSON", func(t *testing.T) {
		r := send(t, hs...)
		if r.status != http.StatusOK || r.header.Get("Content-Type") != "application/json" {
			t.Fatalf("status %d, Content-Type %q: %s", r.status, r.header.Get("Content-Type"), r.body)
		}
		check(t, r.body)
	})

	t.Run("SSE only client", func(t *testing.T) {
		r := send(t, append(hs, "Accept", "text/event-stream")...)
		if r.status != http.StatusOK || r.header.Get("Content-Type") != "text/event-stream" {
			t.Fatalf("status %d, Content-Type %q: %s", r.status, r.header.Get("Content-Type"), r.body)
		}
		evs := parseSSE(r.body)
		if len(evs) != 1 {
			t.Fatalf("want one event: %q", r.body)
		}
		check(t, []byte(evs[0].data))
	})

	t.Run("notifications only", func(t *testing.T) {
		r := tg.post(t, `[{"jsonrpc":"2.0","method":"notifications/initialized"},{"jsonrpc":"2.0","id":"x","result":{}}]`, hs...)
		if r.status != http.StatusAccepted || len(r.body) != 0 {
			t.Fatalf("status %d body %q, want 202 and none", r.status, r.body)
		}
	})

	t.Run("not in 2025-11-25", func(t *testing.T) {
		hs := tg.initialize(t, "2025-11-25", `{}`)
		wantError(t, tg.post(t, `[{"jsonrpc":"2.0","id":1,"method":"ping"}]`, hs...), http.StatusBadRequest, schema.CodeInvalidRequest)
	})
}

// TestProtocolVersionHeader checks the MCP-Protocol-Version header on
// every Streamable HTTP request of a session, as the spec asks: a value
// naming no session revision (unknown, malformed, or the HTTP+SSE
// transport's 2024-11-05) is refused with 400 and the same -32600 error on
// a POST of one message, of a batch, on GET (no stream opens) and on
// DELETE (the session stays); the same requests without the header are
// served. A stateless notification naming an unknown revision is refused
// with 400 and -32022, with or without _meta naming it too.
func TestProtocolVersionHeader(t *testing.T) {
	tg := newTestGateway(t, gateway.Config{})
	hs := tg.initialize(t, "2025-03-26", `{}`) // a revision that allows batches
	sid := []string{"Mcp-Session-Id", hs[1]}
	ping := `{"jsonrpc":"2.0","id":7,"method":"ping"}`
	// get sends a GET for the session's stream and returns its answer,
	// the body read unless a stream opened.
	get := func(t *testing.T, headers ...string) response {
		t.Helper()
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		resp := tg.open(t, ctx, http.MethodGet, tg.url, "", append([]string{"Accept", "text/event-stream"}, headers...)...)
		r := response{status: resp.StatusCode, header: resp.Header}
		if r.status != http.StatusOK {
			r.body, _ = io.ReadAll(resp.Body)
		}
		return r
	}

	for _, v := range []string{"1999-01-01", "not-a-version", schema.Revision20241105} {
		t.Run(v, func(t *testing.T) {
			bad := append(append([]string{}, sid...), "MCP-Protocol-Version", v)
			single := wantError(t, tg.post(t, ping, bad...), http.StatusBadRequest, schema.CodeInvalidRequest)
			if string(single.ID) != "7" || !strings.Contains(single.Error.Message, v) {
				t.Fatalf("one message: %s, want id 7 and the version named", single)
			}
			for _, c := range []struct {
				name string
				send func(t *testing.T) response
			}{
				{"batch", func(t *testing.T) response { return tg.post(t, "["+ping+"]", bad...) }},
				{"GET", func(t *testing.T) response { return get(t, bad...) }},
				{"DELETE", func(t *testing.T) response { return tg.do(t, http.MethodDelete, tg.url, "", bad...) }},
			} {
				t.Run(c.name, func(t *testing.T) {
					m := wantError(t, c.send(t), http.StatusBadRequest, schema.CodeInvalidRequest)
					if string(m.ID) != "null" || m.Error.Message != single.Error.Message {
						t.Errorf("%s, want id null and the error one message gets: %s", m, single.Error.Message)
					}
				})
			}
			wantResult(t, tg.post(t, ping, hs...)) // the session stays
		})
	}

	t.Run("no header", func(t *testing.T) {
		wantResult(t, tg.post(t, ping, sid...))
		if r := tg.post(t, "["+ping+"]", sid...); r.status != http.StatusOK {
			t.Errorf("batch: status %d: %s", r.status, r.body)
		}
		if r := get(t, sid...); r.status != http.StatusOK {
			t.Errorf("GET: status %d: %s", r.status, r.body)
		}
		if r := tg.do(t, http.MethodDelete, tg.url, "", sid...); r.status != http.StatusNoContent {
			t.Errorf("DELETE: status %d: %s", r.status, r.body)
		}
	})

	t.Run("stateless notification", func(t *testing.T) {
		const method = "notifications/roots/list_changed"
		headers := []string{"MCP-Protocol-Version", "2099-01-01", "Mcp-Method", method}
		for _, body := range []string{
			`{"jsonrpc":"2.0","method":"` + method + `"}`,
			`{"jsonrpc":"2.0","method":"` + method + `","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2099-01-01"}}}`,
		} {
			m := wantError(t, tg.post(t, body, headers...), http.StatusBadRequest, schema.CodeUnsupportedVersion)
			if !strings.Contains(string(m.Error.Data), schema.Revision20260728) {
				t.Errorf("%s: error data %s, want the supported revisions", body, m.Error.Data)
			}
		}
	})
}

// TestEventStreamNeedsHijack checks a session's GET on connections the
// gateway cannot take over, through a ResponseWriter that hides Hijack (a
// wrapping middleware) and over HTTP/2: it is answered at once with 405,
// Allow: POST, DELETE and -32600 (the spec's answer of a server that
// offers no stream), not with a stream that never delivers; the session's
// GET over HTTP/1.1 still opens its stream.
func TestEventStreamNeedsHijack(t *testing.T) {
	tg := newTestGateway(t, gateway.Config{})
	hs := tg.initialize(t, "2025-11-25", `{}`)
	get := append([]string{"Accept", "text/event-stream"}, hs...)
	wrapped := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tg.g.ServeHTTP(struct{ http.ResponseWriter }{w}, r) // Write, WriteHeader and Header only
	}))
	t.Cleanup(wrapped.Close)
	h2 := httptest.NewUnstartedServer(tg.g)
	h2.EnableHTTP2 = true
	h2.StartTLS()
	t.Cleanup(h2.Close)

	for _, c := range []struct {
		name  string
		srv   *httptest.Server
		major int
	}{{"hidden Hijack", wrapped, 1}, {"HTTP/2", h2, 2}} {
		t.Run(c.name, func(t *testing.T) {
			req, err := newRequest(t.Context(), http.MethodGet, c.srv.URL+gateway.MCPPath, "", get...)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := c.srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.ProtoMajor != c.major {
				t.Fatalf("served over %s, want HTTP/%d", resp.Proto, c.major)
			}
			if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "POST, DELETE" {
				t.Fatalf("status %d, Allow %q, Content-Type %q: want 405 and Allow: POST, DELETE",
					resp.StatusCode, resp.Header.Get("Allow"), resp.Header.Get("Content-Type"))
			}
			b, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			wantError(t, response{status: resp.StatusCode, header: resp.Header, body: b}, http.StatusMethodNotAllowed, schema.CodeInvalidRequest)
		})
	}
	if r := tg.open(t, t.Context(), http.MethodGet, tg.url, "", get...); r.StatusCode != http.StatusOK {
		t.Fatalf("GET over HTTP/1.1 after the refusals: status %d", r.StatusCode)
	}
	testkit.Eventually(t, "the stream open", waitFor, func() bool { return tg.g.OpenEventStreams() == 1 })
}
