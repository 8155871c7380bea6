package itest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	mcpgoclient "github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	mcpgo "github.com/mark3labs/mcp-go/mcp"
	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcpstream/mcpstream/gateway"
)

// TestStatelessRevision: the official client, left to negotiate, speaks
// 2026-07-28 to mcpstream (and so does mcp-go): no initialize and no session, every request
// self-describing. Tools, prompts, resources, completion and progress all
// travel through JetStream as in the session revisions.
func TestStatelessRevision(t *testing.T) {
	dev, endpoint, _ := startDev(t, false, "--examples", "conformance")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	progress := make(chan float64, 8)
	client := mcp.NewClient(&mcp.Implementation{Name: "itest-stateless", Version: "1"}, &mcp.ClientOptions{
		ProgressNotificationHandler: func(_ context.Context, req *mcp.ProgressNotificationClientRequest) { progress <- req.Params.Progress },
	})
	cs, err := client.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: endpoint, HTTPClient: &http.Client{}, MaxRetries: -1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	if v := cs.InitializeResult().ProtocolVersion; v != "2026-07-28" {
		t.Fatalf("negotiated %q, want 2026-07-28", v)
	}
	if cs.ID() != "" {
		t.Errorf("a stateless connection got session id %q", cs.ID())
	}
	tools, err := cs.ListTools(ctx, nil)
	if err != nil || len(tools.Tools) < 10 {
		t.Fatalf("tools/list: %d tools, %v", len(tools.Tools), err)
	}
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "test_simple_text"})
	if err != nil || res.Content[0].(*mcp.TextContent).Text != "This is a simple text response for testing." {
		t.Fatalf("tools/call: %v, %v", res, err)
	}
	params := &mcp.CallToolParams{Name: "test_tool_with_progress"}
	params.SetProgressToken("p1")
	if _, err := cs.CallTool(ctx, params); err != nil {
		t.Fatal(err)
	}
	var got []string
	for len(got) < 3 {
		select {
		case p := <-progress:
			got = append(got, fmt.Sprint(p))
		case <-ctx.Done():
			t.Fatalf("progress: only %v", got)
		}
	}
	if strings.Join(got, ",") != "0,50,100" {
		t.Errorf("progress %v", got)
	}
	pr, err := cs.GetPrompt(ctx, &mcp.GetPromptParams{Name: "test_prompt_with_arguments", Arguments: map[string]string{"arg1": "a", "arg2": "b"}})
	if err != nil || !strings.Contains(pr.Messages[0].Content.(*mcp.TextContent).Text, "arg1='a'") {
		t.Fatalf("prompts/get: %v, %v", pr, err)
	}
	rr, err := cs.ReadResource(ctx, &mcp.ReadResourceParams{URI: "test://template/7/data"})
	if err != nil || !strings.Contains(rr.Contents[0].Text, "Data for ID: 7") {
		t.Fatalf("resources/read: %v, %v", rr, err)
	}
	var rpcErr *jsonrpc.Error
	if _, err := cs.ReadResource(ctx, &mcp.ReadResourceParams{URI: "test://missing"}); !errors.As(err, &rpcErr) || rpcErr.Code != -32602 {
		t.Errorf("unknown resource: %v, want -32602 (the code of 2026-07-28)", err)
	}
	cr, err := cs.Complete(ctx, &mcp.CompleteParams{Ref: &mcp.CompleteReference{Type: "ref/prompt", Name: "test_prompt_with_arguments"},
		Argument: mcp.CompleteParamsArgument{Name: "arg1", Value: "pa"}})
	if err != nil || fmt.Sprint(cr.Completion.Values) != "[paris park party]" {
		t.Fatalf("completion: %v, %v", cr, err)
	}

	// mcp-go, left to negotiate, also picks 2026-07-28.
	mc, err := mcpgoclient.NewStreamableHttpClient(endpoint, transport.WithHTTPBasicClient(&http.Client{}))
	if err != nil {
		t.Fatal(err)
	}
	defer mc.Close()
	if err := mc.Start(ctx); err != nil {
		t.Fatal(err)
	}
	ir, err := mc.Initialize(ctx, mcpgo.InitializeRequest{Params: mcpgo.InitializeParams{ClientInfo: mcpgo.Implementation{Name: "itest-mcp-go-stateless", Version: "1"}}})
	if err != nil || ir.ProtocolVersion != "2026-07-28" {
		t.Fatalf("mcp-go negotiated %v, %v; want 2026-07-28", ir, err)
	}
	mres, err := mc.CallTool(ctx, mcpgo.CallToolRequest{Params: mcpgo.CallToolParams{Name: "test_simple_text"}})
	if err != nil || mres.Content[0].(mcpgo.TextContent).Text != "This is a simple text response for testing." {
		t.Fatalf("mcp-go tools/call: %v, %v", mres, err)
	}
	dev.stop()
}

// TestStatelessRevisionRefusals: what 2026-07-28 asks of a server for
// requests whose headers and body disagree, lack what the revision
// requires, or use what it removed.
func TestStatelessRevisionRefusals(t *testing.T) {
	s := newStack(t, gateway.Config{})
	const meta = `"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}`
	call := `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"text":"x"},` + meta + `}}`
	for _, tc := range []struct {
		name    string
		body    string
		headers []string
		status  int
		code    string
	}{
		{"served", call, []string{"Mcp-Method", "tools/call", "Mcp-Name", "echo"}, 200, `"resultType":"complete"`},
		{"name in base64", call, []string{"Mcp-Method", "tools/call", "Mcp-Name", "=?base64?ZWNobw==?="}, 200, `"text":"x"`},
		{"no version header", call, []string{"MCP-Protocol-Version", "", "Mcp-Method", "tools/call", "Mcp-Name", "echo"}, 400, "-32020"},
		{"version header differs from _meta", call, []string{"MCP-Protocol-Version", "2099-01-01", "Mcp-Method", "tools/call", "Mcp-Name", "echo"}, 400, "-32020"},
		{"no Mcp-Method", call, []string{"Mcp-Name", "echo"}, 400, "-32020"},
		{"Mcp-Method differs", call, []string{"Mcp-Method", "tools/list", "Mcp-Name", "echo"}, 400, "-32020"},
		{"no Mcp-Name", call, []string{"Mcp-Method", "tools/call"}, 400, "-32020"},
		{"Mcp-Name differs", call, []string{"Mcp-Method", "tools/call", "Mcp-Name", "add"}, 400, "-32020"},
		{"malformed base64 name", call, []string{"Mcp-Method", "tools/call", "Mcp-Name", "=?base64?***?="}, 400, "-32020"},
		{"unsupported version", `{"jsonrpc":"2.0","id":2,"method":"tools/list","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2099-01-01","io.modelcontextprotocol/clientCapabilities":{}}}}`,
			[]string{"MCP-Protocol-Version", "2099-01-01", "Mcp-Method", "tools/list"}, 400, `"code":-32022,"message":"Unsupported protocol version: 2099-01-01","data":{"supported":["2026-07-28"`},
		{"no client capabilities", `{"jsonrpc":"2.0","id":3,"method":"tools/list","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}}}`,
			[]string{"Mcp-Method", "tools/list"}, 400, "-32602"},
		{"ping is gone", `{"jsonrpc":"2.0","id":4,"method":"ping","params":{` + meta + `}}`, []string{"Mcp-Method", "ping"}, 404, "-32601"},
		{"logging/setLevel is gone", `{"jsonrpc":"2.0","id":5,"method":"logging/setLevel","params":{"level":"info",` + meta + `}}`, []string{"Mcp-Method", "logging/setLevel"}, 404, "-32601"},
		{"discover", `{"jsonrpc":"2.0","id":6,"method":"server/discover","params":{` + meta + `}}`, []string{"Mcp-Method", "server/discover"}, 200, `"supportedVersions":["2026-07-28"`},
		{"a response from the client", `{"jsonrpc":"2.0","id":7,"result":{}}`, []string{"Mcp-Method", "x"}, 400, "-32600"},
	} {
		headers := append([]string{"MCP-Protocol-Version", "2026-07-28"}, tc.headers...)
		r := post(t, s.url, tc.body, headers...)
		if r.status != tc.status || !strings.Contains(string(r.body), tc.code) {
			t.Errorf("%s: status %d %s, want %d with %s", tc.name, r.status, r.body, tc.status, tc.code)
		}
		if r.header.Get("Mcp-Session-Id") != "" {
			t.Errorf("%s: a session id was minted", tc.name)
		}
	}
	for _, method := range []string{http.MethodGet, http.MethodDelete} {
		req, _ := http.NewRequest(method, s.url, nil)
		req.Header.Set("MCP-Protocol-Version", "2026-07-28")
		if r := do(t, req); r.status != http.StatusMethodNotAllowed {
			t.Errorf("%s: status %d, want 405", method, r.status)
		}
	}
	// A draining gateway refuses stateless requests as it does a
	// session's: 503 with Retry-After, for the client to try another.
	s.gw.Drain()
	r := post(t, s.url, call, "MCP-Protocol-Version", "2026-07-28", "Mcp-Method", "tools/call", "Mcp-Name", "echo")
	if r.status != http.StatusServiceUnavailable || r.header.Get("Retry-After") == "" || !strings.Contains(string(r.body), "shutting down") {
		t.Errorf("while draining: status %d, Retry-After %q, %s; want 503 with Retry-After", r.status, r.header.Get("Retry-After"), r.body)
	}
}

// TestInputRequiredRoundTrips: in 2026-07-28 a handler's questions come
// back as an input_required result; the official client answers them with
// its handlers (elicitation, and sampling) and retries, and the handler, run
// again on a worker, gets the answers, over two rounds, with the first round's answer carried in
// the signed requestState. A tampered state is refused.
func TestInputRequiredRoundTrips(t *testing.T) {
	dev, endpoint, _ := startDev(t, false, "--examples", "conformance")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var asked []string
	client := mcp.NewClient(&mcp.Implementation{Name: "itest-mrtr", Version: "1"}, &mcp.ClientOptions{
		CreateMessageHandler: func(_ context.Context, req *mcp.CreateMessageRequest) (*mcp.CreateMessageResult, error) {
			return &mcp.CreateMessageResult{Role: "assistant", Model: "m",
				Content: &mcp.TextContent{Text: "Paris, of course"}}, nil
		},
		ElicitationHandler: func(_ context.Context, req *mcp.ElicitRequest) (*mcp.ElicitResult, error) {
			asked = append(asked, req.Params.Message)
			if strings.Contains(req.Params.Message, "colour") {
				return &mcp.ElicitResult{Action: "accept", Content: map[string]any{"color": "blue"}}, nil
			}
			return &mcp.ElicitResult{Action: "accept", Content: map[string]any{"name": "Ada"}}, nil
		},
	})
	cs, err := client.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: endpoint, HTTPClient: &http.Client{}, MaxRetries: -1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "test_input_required_result_multi_round"})
	if err != nil {
		t.Fatal(err)
	}
	if text := res.Content[0].(*mcp.TextContent).Text; res.IsError || text != "Ada likes blue" {
		t.Fatalf("multi-round result %q (isError %v), want \"Ada likes blue\"", text, res.IsError)
	}
	if strings.Join(asked, " | ") != "Your name? | Your favourite colour, Ada?" {
		t.Errorf("questions asked: %q", asked)
	}
	// A sampling round trip, the 2026-07-28 way.
	res, err = cs.CallTool(ctx, &mcp.CallToolParams{Name: "test_input_required_result_sampling"})
	if err != nil || res.IsError || res.Content[0].(*mcp.TextContent).Text != "LLM response: Paris, of course" {
		t.Fatalf("sampling through an input-required result: %v, %v", res, err)
	}

	// By hand: the first round's state, tampered with or replayed on
	// another tool, is refused with -32602.
	const meta = `"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{"elicitation":{}}}`
	callTool := func(name, extra string) rawResponse {
		return post(t, endpoint, `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"`+name+`","arguments":{},`+extra+meta+`}}`,
			"MCP-Protocol-Version", "2026-07-28", "Mcp-Method", "tools/call", "Mcp-Name", name)
	}
	r := callTool("test_input_required_result_request_state", "")
	var first struct {
		Result struct {
			ResultType    string                     `json:"resultType"`
			InputRequests map[string]json.RawMessage `json:"inputRequests"`
			RequestState  string                     `json:"requestState"`
		} `json:"result"`
	}
	if err := json.Unmarshal(r.body, &first); err != nil || first.Result.ResultType != "input_required" || first.Result.RequestState == "" || first.Result.InputRequests["confirm"] == nil {
		t.Fatalf("first round: %s", r.body)
	}
	answer := `"inputResponses":{"confirm":{"action":"accept","content":{"ok":true}}},`
	for name, state := range map[string]string{
		"test_input_required_result_request_state":  first.Result.RequestState + "-TAMPERED",
		"test_input_required_result_tampered_state": first.Result.RequestState,
	} {
		if r := callTool(name, answer+`"requestState":"`+state+`",`); !strings.Contains(string(r.body), `"code":-32602`) {
			t.Errorf("%s with a state not its own: %s, want -32602", name, r.body)
		}
	}
	if r := callTool("test_input_required_result_request_state", answer+`"requestState":"`+first.Result.RequestState+`",`); !strings.Contains(string(r.body), "state-ok") {
		t.Errorf("the genuine state: %s", r.body)
	}
	dev.stop()
}
