package itest

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	mcpgoclient "github.com/mark3labs/mcp-go/client"
	mcpgo "github.com/mark3labs/mcp-go/mcp"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// TestSamplingAndElicitationRoundTrips: a worker's handler asks the client
// for a model message and for user input; each request travels worker ->
// gateway -> the call's SSE stream -> the client's handler, and the answer
// comes back through the gateway to the handler, which puts it in its
// result. Both real clients.
func TestSamplingAndElicitationRoundTrips(t *testing.T) {
	dev, endpoint, _ := startDev(t, false, "--examples", "conformance")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	t.Run("go-sdk", func(t *testing.T) {
		var sampled, elicited string
		cs := connectOfficial(t, ctx, endpoint, "itest-sampling", &mcp.ClientOptions{
			CreateMessageHandler: func(_ context.Context, req *mcp.CreateMessageRequest) (*mcp.CreateMessageResult, error) {
				sampled = req.Params.Messages[0].Content.(*mcp.TextContent).Text
				return &mcp.CreateMessageResult{Role: "assistant", Model: "m1",
					Content: &mcp.TextContent{Text: "echo of " + sampled}}, nil
			},
			ElicitationHandler: func(_ context.Context, req *mcp.ElicitRequest) (*mcp.ElicitResult, error) {
				elicited = req.Params.Message
				return &mcp.ElicitResult{Action: "accept", Content: map[string]any{"username": "ada"}}, nil
			},
		})
		defer cs.Close()
		res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "test_sampling", Arguments: map[string]any{"prompt": "two words"}})
		if err != nil {
			t.Fatal(err)
		}
		if text := res.Content[0].(*mcp.TextContent).Text; res.IsError || text != "LLM response: echo of two words" || sampled != "two words" {
			t.Fatalf("sampling: result %q (isError %v), handler saw %q", text, res.IsError, sampled)
		}
		res, err = cs.CallTool(ctx, &mcp.CallToolParams{Name: "test_elicitation", Arguments: map[string]any{"message": "who are you?"}})
		if err != nil {
			t.Fatal(err)
		}
		if text := res.Content[0].(*mcp.TextContent).Text; res.IsError || text != `Elicitation result: action=accept, content={"username":"ada"}` || elicited != "who are you?" {
			t.Fatalf("elicitation: result %q (isError %v), handler saw %q", text, res.IsError, elicited)
		}
	})

	t.Run("mcp-go", func(t *testing.T) {
		c := connectMCPGo(t, ctx, endpoint, "itest-mcp-go-sampling", nil, mcpgoclient.WithSamplingHandler(sampler{}))
		defer c.Close()
		res, err := c.CallTool(ctx, mcpgo.CallToolRequest{Params: mcpgo.CallToolParams{Name: "test_sampling", Arguments: map[string]any{"prompt": "hi"}}})
		if err != nil {
			t.Fatal(err)
		}
		if text := res.Content[0].(mcpgo.TextContent).Text; res.IsError || text != "LLM response: mcp-go says hi" {
			t.Fatalf("sampling: result %q (isError %v)", text, res.IsError)
		}
	})
	dev.stop()
}

type sampler struct{}

func (sampler) CreateMessage(_ context.Context, req mcpgo.CreateMessageRequest) (*mcpgo.CreateMessageResult, error) {
	text := req.Messages[0].Content.(mcpgo.TextContent).Text
	return &mcpgo.CreateMessageResult{Model: "m2", SamplingMessage: mcpgo.SamplingMessage{
		Role: mcpgo.RoleAssistant, Content: mcpgo.NewTextContent("mcp-go says " + text)}}, nil
}

// TestClientAnswersOnAnotherGateway: the elicitation goes out on gateway A,
// where the call waits; the client posts its answer to gateway B, which
// passes it to the worker by the request's id alone. An answer posted by
// another session is ignored, and a client without the capability gets a
// prompt refusal instead of a wait.
func TestClientAnswersOnAnotherGateway(t *testing.T) {
	devA, endpointA, natsURL := startDev(t, true, "--examples", "conformance")
	gwB := start(t, "gateway-b", "gateway", "--nats", natsURL, "--addr", "127.0.0.1:0", "--log-level", "warn")
	endpointB := gwB.waitLine(endpointRE, 30*time.Second)[1]

	initWith := func(caps string) string {
		r := post(t, endpointA, `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":`+caps+`,"clientInfo":{"name":"raw","version":"1"}}}`)
		if r.status != http.StatusOK {
			t.Fatalf("initialize: %d %s", r.status, r.body)
		}
		return r.header.Get("Mcp-Session-Id")
	}
	sid, other := initWith(`{"elicitation":{}}`), initWith(`{"elicitation":{}}`)

	req, _ := http.NewRequest(http.MethodPost, endpointA, strings.NewReader(
		`{"jsonrpc":"2.0","id":"call-1","method":"tools/call","params":{"name":"test_elicitation","arguments":{"message":"name?"}}}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Mcp-Session-Id", sid)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("Content-Type %q, want an event stream carrying the request", ct)
	}
	events := bufio.NewScanner(resp.Body)
	next := func() map[string]json.RawMessage {
		t.Helper()
		for events.Scan() {
			if data, ok := strings.CutPrefix(events.Text(), "data: "); ok {
				var m map[string]json.RawMessage
				if err := json.Unmarshal([]byte(data), &m); err != nil {
					t.Fatalf("event %s: %v", data, err)
				}
				return m
			}
		}
		t.Fatalf("stream ended: %v", events.Err())
		return nil
	}
	ask := next()
	if string(ask["method"]) != `"elicitation/create"` || !strings.Contains(string(ask["params"]), `"message":"name?"`) {
		t.Fatalf("first event is not the elicitation: %v", ask)
	}
	id := string(ask["id"])
	answer := func(session, name string) rawResponse {
		return post(t, endpointB, fmt.Sprintf(`{"jsonrpc":"2.0","id":%s,"result":{"action":"accept","content":{"username":%q}}}`, id, name),
			"Mcp-Session-Id", session)
	}
	if r := answer(other, "mallory"); r.status != http.StatusAccepted {
		t.Fatalf("answer from another session: status %d %s, want 202", r.status, r.body)
	}
	if r := answer(sid, "ada"); r.status != http.StatusAccepted {
		t.Fatalf("answer on gateway B: status %d %s, want 202", r.status, r.body)
	}
	final := next()
	if string(final["id"]) != `"call-1"` || !strings.Contains(string(final["result"]), `content={\"username\":\"ada\"}`) {
		t.Fatalf("result %s, want the answer of the call's own session", final["result"])
	}

	// No elicitation capability: refused at once by the gateway, so the
	// tool fails fast with the reason, long before the call's deadline.
	plain := initWith(`{}`)
	start := time.Now()
	r := post(t, endpointB, `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"test_elicitation","arguments":{"message":"x"}}}`,
		"Mcp-Session-Id", plain)
	if !strings.Contains(string(r.body), `"isError":true`) || !strings.Contains(string(r.body), "did not declare the elicitation capability") {
		t.Fatalf("client without the capability: %s", r.body)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("the refusal took %v", d)
	}
	gwB.stop()
	devA.stop()
}
