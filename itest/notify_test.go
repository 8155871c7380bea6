package itest

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// TestProgressAndLogsReachTheClient: a worker's progress and log
// notifications travel through the reply path and the gateway to the
// official client as SSE events on the call's stream. (The client runs its
// handlers asynchronously, so the test awaits them.)
func TestProgressAndLogsReachTheClient(t *testing.T) {
	dev, endpoint, _ := startDev(t, false, "--examples", "conformance")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	progress := make(chan string, 16)
	logs := make(chan string, 16)
	cs := connectOfficial(t, ctx, endpoint, "itest-notify", &mcp.ClientOptions{
		ProgressNotificationHandler: func(_ context.Context, req *mcp.ProgressNotificationClientRequest) {
			progress <- fmt.Sprint(req.Params.Progress)
		},
		LoggingMessageHandler: func(_ context.Context, req *mcp.LoggingMessageRequest) {
			logs <- fmt.Sprint(req.Params.Data)
		},
	})
	defer cs.Close()
	await := func(what string, n int, ch <-chan string) string {
		t.Helper()
		var got []string
		for len(got) < n {
			select {
			case <-ctx.Done():
				t.Fatalf("%s: only %v arrived", what, got)
			case v := <-ch:
				got = append(got, v)
			}
		}
		return strings.Join(got, ",")
	}

	params := &mcp.CallToolParams{Name: "test_tool_with_progress"}
	params.SetProgressToken("tok-7")
	res, err := cs.CallTool(ctx, params)
	if err != nil {
		t.Fatal(err)
	}
	if text := res.Content[0].(*mcp.TextContent).Text; text != "tok-7" {
		t.Fatalf("progress tool answered %q, want its token", text)
	}
	if got := await("progress", 3, progress); got != "0,50,100" {
		t.Fatalf("progress %s, want 0,50,100", got)
	}
	if _, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "test_tool_with_logging"}); err != nil {
		t.Fatal(err)
	}
	if got := await("logs", 3, logs); got != "Tool execution started,Tool processing data,Tool execution completed" {
		t.Fatalf("logs %s", got)
	}
	dev.stop()
}

// TestLogLevelFiltersOnTheGateway: the notifications come first on the
// call's SSE stream, in order; once the session's level is above theirs,
// the gateway relays none and answers with plain JSON.
func TestLogLevelFiltersOnTheGateway(t *testing.T) {
	dev, endpoint, _ := startDev(t, false, "--examples", "conformance")
	const call = `{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"test_tool_with_logging"}}`
	sid := initSession(t, endpoint)
	r := post(t, endpoint, call, "Mcp-Session-Id", sid)
	if r.header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("with log messages to relay: Content-Type %q, want an event stream", r.header.Get("Content-Type"))
	}
	body := string(r.body)
	i1, i2, i3 := strings.Index(body, "Tool execution started"), strings.Index(body, "Tool processing data"), strings.Index(body, "Tool execution completed")
	ires := strings.Index(body, `"result"`)
	if !(0 <= i1 && i1 < i2 && i2 < i3 && i3 < ires) || strings.Count(body, `"method":"notifications/message"`) != 3 {
		t.Fatalf("want three log events in order, then the result:\n%s", body)
	}

	r = post(t, endpoint, `{"jsonrpc":"2.0","id":6,"method":"logging/setLevel","params":{"level":"warning"}}`, "Mcp-Session-Id", sid)
	if r.status != http.StatusOK || !strings.Contains(string(r.body), `"result":{}`) {
		t.Fatalf("logging/setLevel: status %d: %s", r.status, r.body)
	}
	r = post(t, endpoint, call, "Mcp-Session-Id", sid)
	if ct := r.header.Get("Content-Type"); ct != "application/json" || strings.Contains(string(r.body), "notifications/message") {
		t.Fatalf("above the messages' level: Content-Type %q, body %s; want plain JSON", ct, r.body)
	}
	r = post(t, endpoint, `{"jsonrpc":"2.0","id":7,"method":"logging/setLevel","params":{"level":"loud"}}`, "Mcp-Session-Id", sid)
	if !strings.Contains(string(r.body), `"code":-32602`) {
		t.Fatalf("unknown level: %s", r.body)
	}
	dev.stop()
}
