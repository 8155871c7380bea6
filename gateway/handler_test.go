package gateway_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/mcpstream/mcpstream/gateway"
	"github.com/mcpstream/mcpstream/schema"
)

// TestInitialize checks the opening of a session on the Streamable HTTP
// endpoint: a served revision is answered in kind (HTTP 200, JSON, with a
// visible-ASCII Mcp-Session-Id, the server's capabilities and info); an
// unsupported one negotiates the latest; initialize without params is
// -32602 and opens no session; a later request naming an unsupported
// MCP-Protocol-Version header is refused with 400.
func TestInitialize(t *testing.T) {
	tg := newTestGateway(t, gateway.Config{ServerInfo: schema.Implementation{Name: "gw-under-test", Version: "9.9"}, Instructions: "be kind"})
	sessionID := regexp.MustCompile(`^[\x21-\x7e]+$`)

	t.Run("latest revision", func(t *testing.T) {
		r := tg.post(t, initializeBody(1, "2025-11-25", `{}`))
		m := wantResult(t, r)
		if string(m.ID) != "1" {
			t.Errorf("id %s, want 1", m.ID)
		}
		if sid := r.header.Get("Mcp-Session-Id"); !sessionID.MatchString(sid) {
			t.Errorf("Mcp-Session-Id %q: want visible ASCII", sid)
		}
		var res struct {
			ProtocolVersion string                     `json:"protocolVersion"`
			Capabilities    map[string]json.RawMessage `json:"capabilities"`
			ServerInfo      schema.Implementation      `json:"serverInfo"`
			Instructions    string                     `json:"instructions"`
		}
		if err := json.Unmarshal(m.Result, &res); err != nil {
			t.Fatal(err)
		}
		if res.ProtocolVersion != "2025-11-25" || res.ServerInfo.Name != "gw-under-test" || res.ServerInfo.Version != "9.9" || res.Instructions != "be kind" {
			t.Errorf("result %s", m.Result)
		}
		for _, c := range []string{"tools", "prompts", "resources", "logging"} {
			if res.Capabilities[c] == nil {
				t.Errorf("capability %s missing: %s", c, m.Result)
			}
		}
	})

	t.Run("older served revision", func(t *testing.T) {
		tg.initialize(t, "2025-03-26", `{}`) // checks the negotiated revision
		tg.initialize(t, "2025-06-18", `{}`)
	})

	t.Run("unsupported revision negotiates the latest", func(t *testing.T) {
		r := tg.post(t, initializeBody(2, "1999-01-01", `{}`))
		m := wantResult(t, r)
		var res struct {
			ProtocolVersion string `json:"protocolVersion"`
		}
		if err := json.Unmarshal(m.Result, &res); err != nil || res.ProtocolVersion != schema.LatestRevision {
			t.Fatalf("negotiated %s, want %s", m.Result, schema.LatestRevision)
		}
		if r.header.Get("Mcp-Session-Id") == "" {
			t.Error("no Mcp-Session-Id")
		}
	})

	t.Run("missing params", func(t *testing.T) {
		r := tg.post(t, `{"jsonrpc":"2.0","id":3,"method":"initialize"}`)
		m := wantError(t, r, http.StatusOK, schema.CodeInvalidParams)
		if string(m.ID) != "3" {
			t.Errorf("id %s, want 3", m.ID)
		}
		if sid := r.header.Get("Mcp-Session-Id"); sid != "" {
			t.Errorf("a failed initialize opened session %q", sid)
		}
	})

	t.Run("unsupported MCP-Protocol-Version header", func(t *testing.T) {
		hs := tg.initialize(t, "2025-11-25", `{}`)
		r := tg.post(t, `{"jsonrpc":"2.0","id":4,"method":"ping"}`, append(hs, "MCP-Protocol-Version", "1999-01-01")...)
		wantError(t, r, http.StatusBadRequest, schema.CodeInvalidRequest)
	})
}

// TestToolsCall checks tools/call in a 2025-11-25 session, through the
// worker: the result as JSON; as one SSE event for a client that accepts
// only event streams; a worker's progress notification turning the
// response into an event stream, the notification (with the request's
// progress token) before the result; the notification dropped for a
// client that accepts only JSON; the worker's JSON-RPC error passed on as
// is; an unknown tool refused with -32602 without a worker; and the
// envelope the worker receives naming the session, revision, request id,
// arguments and client capabilities, the call counted in InFlight meanwhile.
func TestToolsCall(t *testing.T) {
	tg := newTestGateway(t, gateway.Config{})
	hs := tg.initialize(t, "2025-11-25", `{"roots":{}}`)

	t.Run("JSON result", func(t *testing.T) {
		m := wantResult(t, tg.post(t, callBody(2, "echo", `{"text":"hi"}`, ""), hs...))
		if string(m.ID) != "2" || toolText(t, m.Result) != "hi" {
			t.Fatalf("response id %s result %s", m.ID, m.Result)
		}
	})

	t.Run("SSE only client", func(t *testing.T) {
		r := tg.post(t, callBody(3, "echo", `{"text":"streamed"}`, ""), append(hs, "Accept", "text/event-stream")...)
		if r.status != http.StatusOK || r.header.Get("Content-Type") != "text/event-stream" {
			t.Fatalf("status %d, Content-Type %q: %s", r.status, r.header.Get("Content-Type"), r.body)
		}
		evs := parseSSE(r.body)
		if len(evs) != 1 || evs[0].event != "message" {
			t.Fatalf("want one message event: %q", r.body)
		}
		if m := decode(t, []byte(evs[0].data)); string(m.ID) != "3" || toolText(t, m.Result) != "streamed" {
			t.Fatalf("event %s", evs[0].data)
		}
	})

	t.Run("progress turns the response into a stream", func(t *testing.T) {
		r := tg.post(t, callBody(4, "progress", `{}`, "tok-4"), hs...)
		if r.status != http.StatusOK || r.header.Get("Content-Type") != "text/event-stream" {
			t.Fatalf("status %d, Content-Type %q: %s", r.status, r.header.Get("Content-Type"), r.body)
		}
		evs := parseSSE(r.body)
		if len(evs) != 2 {
			t.Fatalf("want 2 events (notification, result): %q", r.body)
		}
		n := decode(t, []byte(evs[0].data))
		if n.Method != schema.NotificationProgress || n.ID != nil {
			t.Fatalf("first event %s, want notifications/progress", evs[0].data)
		}
		var p struct {
			ProgressToken string  `json:"progressToken"`
			Progress      float64 `json:"progress"`
			Total         float64 `json:"total"`
			Message       string  `json:"message"`
		}
		if err := json.Unmarshal(n.Params, &p); err != nil || p.ProgressToken != "tok-4" || p.Progress != 1 || p.Total != 2 || p.Message != "halfway" {
			t.Fatalf("progress params %s (%v)", n.Params, err)
		}
		if m := decode(t, []byte(evs[1].data)); string(m.ID) != "4" || toolText(t, m.Result) != "done" {
			t.Fatalf("last event %s", evs[1].data)
		}
	})

	t.Run("JSON only client gets no notifications", func(t *testing.T) {
		m := wantResult(t, tg.post(t, callBody(5, "progress", `{}`, "tok-5"), append(hs, "Accept", "application/json")...))
		if toolText(t, m.Result) != "done" {
			t.Fatalf("result %s", m.Result)
		}
	})

	t.Run("worker error", func(t *testing.T) {
		m := wantError(t, tg.post(t, callBody(6, "fail", `{}`, ""), hs...), http.StatusOK, failError.Code)
		if string(m.ID) != "6" || m.Error.Message != failError.Message || string(m.Error.Data) != string(failError.Data) {
			t.Fatalf("error %+v, want %+v", m.Error, failError)
		}
	})

	t.Run("unknown tool", func(t *testing.T) {
		m := wantError(t, tg.post(t, callBody(7, "nosuchtool", `{}`, ""), hs...), http.StatusOK, schema.CodeInvalidParams)
		if string(m.ID) != "7" {
			t.Fatalf("id %s", m.ID)
		}
	})

	t.Run("envelope", func(t *testing.T) {
		done := tg.postAsync(context.Background(), callBody(8, "hold", `{"a":[1,"x"]}`, ""), hs...)
		h := tg.awaitHeld(t)
		env := h.call.Env
		if env.Method != schema.MethodToolsCall || env.Name != "hold" || env.Session != hs[1] || env.Revision != "2025-11-25" ||
			env.RequestID != "8" || string(h.call.Args) != `{"a":[1,"x"]}` {
			t.Errorf("envelope %+v, arguments %s", env, h.call.Args)
		}
		if caps, err := schema.MsgpackToJSON(nil, env.ClientCaps); err != nil || string(caps) != `{"roots":{}}` {
			t.Errorf("client capabilities %s (%v)", caps, err)
		}
		if d := time.Until(env.DeadlineTime()); d <= 0 || d > 61*time.Second {
			t.Errorf("deadline in %s, want within the default 60s call timeout", d)
		}
		if n := tg.g.InFlight(); n != 1 {
			t.Errorf("InFlight %d while a call is held, want 1", n)
		}
		h.release <- map[string]any{"content": []any{map[string]any{"type": "text", "text": "released"}}}
		m := wantResult(t, await(t, done, "the held call's response"))
		if toolText(t, m.Result) != "released" {
			t.Fatalf("result %s", m.Result)
		}
		if n := tg.g.InFlight(); n != 0 {
			t.Errorf("InFlight %d after the call answered, want 0", n)
		}
	})
}

// TestCallTimeout checks that a call the worker does not answer within
// Config.CallTimeout is answered -32001 (HTTP 200) once it passes, not
// before, and that the envelope's deadline is the gateway's.
func TestCallTimeout(t *testing.T) {
	const timeout = 300 * time.Millisecond
	tg := newTestGateway(t, gateway.Config{CallTimeout: timeout})
	hs := tg.initialize(t, "2025-11-25", `{}`)
	start := time.Now()
	done := tg.postAsync(context.Background(), callBody(2, "hold", `{}`, ""), hs...)
	h := tg.awaitHeld(t)
	if d := h.call.Env.DeadlineTime().Sub(start); d > timeout+time.Second {
		t.Errorf("envelope deadline %s after the request, want about %s", d, timeout)
	}
	m := wantError(t, await(t, done, "the timed-out call's response"), http.StatusOK, schema.CodeRequestTimeout)
	if elapsed := time.Since(start); elapsed < timeout {
		t.Errorf("answered after %s, before the %s timeout", elapsed, timeout)
	}
	if string(m.ID) != "2" {
		t.Errorf("id %s", m.ID)
	}
	if err := await(t, h.ended, "the end of the held handler"); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("the handler's context ended with %v, want the deadline", err)
	}
}

// TestPromptAndResource checks that prompts and resources of a live
// group are listed by the gateway and that prompts/get and resources/read
// reach the worker with the prompt's arguments or the resource's URI and
// answer its result; an unknown resource is -32002.
func TestPromptAndResource(t *testing.T) {
	tg := newTestGateway(t, gateway.Config{})
	hs := tg.initialize(t, "2025-11-25", `{}`)

	m := wantResult(t, tg.post(t, `{"jsonrpc":"2.0","id":2,"method":"prompts/list"}`, hs...))
	if string(m.Result) != `{"prompts":[{"name":"greet","arguments":[{"name":"name","required":true}]}]}` {
		t.Errorf("prompts/list %s", m.Result)
	}
	m = wantResult(t, tg.post(t, `{"jsonrpc":"2.0","id":3,"method":"prompts/get","params":{"name":"greet","arguments":{"name":"Ada"}}}`, hs...))
	if string(m.Result) != `{"messages":[{"content":{"text":"Hello, Ada","type":"text"},"role":"user"}]}` {
		t.Errorf("prompts/get %s", m.Result)
	}
	m = wantResult(t, tg.post(t, `{"jsonrpc":"2.0","id":4,"method":"resources/list"}`, hs...))
	if string(m.Result) != `{"resources":[{"uri":"test://readme","name":"readme","mimeType":"text/plain"}]}` {
		t.Errorf("resources/list %s", m.Result)
	}
	m = wantResult(t, tg.post(t, `{"jsonrpc":"2.0","id":5,"method":"resources/read","params":{"uri":"test://readme"}}`, hs...))
	if string(m.Result) != `{"contents":[{"mimeType":"text/plain","text":"read me","uri":"test://readme"}]}` {
		t.Errorf("resources/read %s", m.Result)
	}
	wantError(t, tg.post(t, `{"jsonrpc":"2.0","id":6,"method":"resources/read","params":{"uri":"test://nothing"}}`, hs...), http.StatusOK, schema.CodeResourceNotFound)
	wantError(t, tg.post(t, `{"jsonrpc":"2.0","id":7,"method":"prompts/get","params":{"name":"nothing"}}`, hs...), http.StatusOK, schema.CodeInvalidParams)
}

// TestAnsweredByGateway checks the requests the gateway answers itself in
// a session: ping ({}), tools/list (the worker's tools, sorted, with
// their input schemas), logging/setLevel ({}; an unknown level -32602),
// and an unknown method -32601 with HTTP 200.
func TestAnsweredByGateway(t *testing.T) {
	tg := newTestGateway(t, gateway.Config{})
	hs := tg.initialize(t, "2025-11-25", `{}`)

	if m := wantResult(t, tg.post(t, `{"jsonrpc":"2.0","id":"p","method":"ping"}`, hs...)); string(m.Result) != `{}` || string(m.ID) != `"p"` {
		t.Errorf("ping: id %s result %s", m.ID, m.Result)
	}

	m := wantResult(t, tg.post(t, `{"jsonrpc":"2.0","id":2,"method":"tools/list"}`, hs...))
	var list struct {
		Tools []schema.Tool `json:"tools"`
	}
	if err := json.Unmarshal(m.Result, &list); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, tool := range list.Tools {
		names = append(names, tool.Name)
		if tool.Name == "echo" && string(tool.InputSchema) != echoSchema {
			t.Errorf("echo's input schema %s", tool.InputSchema)
		}
		if len(tool.InputSchema) == 0 {
			t.Errorf("tool %s has no input schema", tool.Name)
		}
	}
	if got, want := names, []string{"echo", "fail", "hold", "log", "progress", "roots"}; !equal(got, want) {
		t.Errorf("tools/list names %v, want %v", got, want)
	}

	if m := wantResult(t, tg.post(t, `{"jsonrpc":"2.0","id":3,"method":"logging/setLevel","params":{"level":"warning"}}`, hs...)); string(m.Result) != `{}` {
		t.Errorf("logging/setLevel result %s", m.Result)
	}
	wantError(t, tg.post(t, `{"jsonrpc":"2.0","id":4,"method":"logging/setLevel","params":{"level":"loud"}}`, hs...), http.StatusOK, schema.CodeInvalidParams)
	if m := wantError(t, tg.post(t, `{"jsonrpc":"2.0","id":5,"method":"no/such/method"}`, hs...), http.StatusOK, schema.CodeMethodNotFound); string(m.ID) != "5" {
		t.Errorf("id %s", m.ID)
	}
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestLogLevel checks that a worker's log messages (notifications/message)
// reach the client on the call's stream at or above the level it chose: a
// session hears every level until logging/setLevel, then only those at or
// above it; a stateless request hears none unless its _meta names a
// level, then those at or above it.
func TestLogLevel(t *testing.T) {
	tg := newTestGateway(t, gateway.Config{})
	// levels returns the levels of the log messages before the result
	// of a call of the log tool answered r.
	levels := func(t *testing.T, r response) []string {
		t.Helper()
		if r.status != http.StatusOK {
			t.Fatalf("status %d: %s", r.status, r.body)
		}
		if r.header.Get("Content-Type") == "application/json" {
			if m := decode(t, r.body); toolText(t, m.Result) != "logged" {
				t.Fatalf("result %s", m.Result)
			}
			return nil
		}
		evs := parseSSE(r.body)
		var out []string
		for i, ev := range evs {
			m := decode(t, []byte(ev.data))
			if i == len(evs)-1 {
				if toolText(t, m.Result) != "logged" {
					t.Fatalf("last event %s", ev.data)
				}
				break
			}
			var p struct {
				Level string `json:"level"`
				Data  string `json:"data"`
			}
			if m.Method != schema.NotificationMessage || json.Unmarshal(m.Params, &p) != nil || p.Data != p.Level+" line" {
				t.Fatalf("event %s, want a log message", ev.data)
			}
			out = append(out, p.Level)
		}
		return out
	}

	t.Run("session", func(t *testing.T) {
		hs := tg.initialize(t, "2025-11-25", `{}`)
		if got := levels(t, tg.post(t, callBody(2, "log", `{}`, ""), hs...)); !equal(got, []string{"info", "error"}) {
			t.Errorf("before logging/setLevel: %v, want every level", got)
		}
		wantResult(t, tg.post(t, `{"jsonrpc":"2.0","id":3,"method":"logging/setLevel","params":{"level":"warning"}}`, hs...))
		if got := levels(t, tg.post(t, callBody(4, "log", `{}`, ""), hs...)); !equal(got, []string{"error"}) {
			t.Errorf("at level warning: %v, want error only", got)
		}
	})

	t.Run("stateless", func(t *testing.T) {
		body := statelessBody(5, "tools/call", `{"name":"log","arguments":{}}`)
		if got := levels(t, tg.post(t, body, statelessHeaders("tools/call", "log")...)); got != nil {
			t.Errorf("without a log level: %v, want none", got)
		}
		body = strings.Replace(body, `"_meta":{`, `"_meta":{"io.modelcontextprotocol/logLevel":"info",`, 1)
		if got := levels(t, tg.post(t, body, statelessHeaders("tools/call", "log")...)); !equal(got, []string{"info", "error"}) {
			t.Errorf("at level info: %v, want both", got)
		}
	})
}
