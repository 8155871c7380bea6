package upstream

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcpstream/mcpstream/schema"
	"github.com/mcpstream/mcpstream/workers"
)

// TestCompletionProgressTokenNotForwarded: completion/complete's params
// are forwarded whole, and a client's _meta.progressToken among them
// would reach the upstream as it is; the upstream's progress for it then
// carries the client's token, which the connection reads as one of its
// own ids. Here call A runs on the connection (it reported progress under
// its id, and waits), and another client asks for a completion with a
// progress token equal to A's id; the upstream reports progress under the
// token it got. A's client must get none of it, and the upstream must not
// see the client's token.
func TestCompletionProgressTokenNotForwarded(t *testing.T) {
	release := make(chan struct{})
	tokens := make(chan any, 4) // the progress tokens completion/complete carried
	s := mcp.NewServer(&mcp.Implementation{Name: "progressive", Version: "1"}, &mcp.ServerOptions{
		CompletionHandler: func(ctx context.Context, req *mcp.CompleteRequest) (*mcp.CompleteResult, error) {
			tok := req.Params.Meta["progressToken"]
			tokens <- tok
			if tok != nil {
				_ = req.Session.NotifyProgress(ctx, &mcp.ProgressNotificationParams{ProgressToken: tok, Progress: 1, Message: "completing"})
			}
			return &mcp.CompleteResult{Completion: mcp.CompletionResultDetails{Values: []string{"alice"}, Total: 1}}, nil
		},
	})
	s.AddPrompt(&mcp.Prompt{Name: "greet", Arguments: []*mcp.PromptArgument{{Name: "name"}}},
		func(context.Context, *mcp.GetPromptRequest) (*mcp.GetPromptResult, error) {
			return &mcp.GetPromptResult{}, nil
		})
	mcp.AddTool(s, &mcp.Tool{Name: "hold", Description: "reports progress once, then waits for the test"},
		func(ctx context.Context, req *mcp.CallToolRequest, _ struct{}) (*mcp.CallToolResult, any, error) {
			if tok := req.Params.GetProgressToken(); tok != nil {
				_ = req.Session.NotifyProgress(ctx, &mcp.ProgressNotificationParams{ProgressToken: tok, Message: "holding"})
			}
			select {
			case <-release:
			case <-ctx.Done():
			}
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "released"}}}, nil, nil
		})
	url := serveHTTP(t, s, false, nil)

	h, err := New("g", Config{URL: url, Transport: TransportStreamable, Pool: 1, MinBackoff: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	h.names.Store(&nameMap{tools: map[string]toolInfo{"hold": {upstream: "hold"}}, prompts: map[string]string{"greet": "greet"}})
	runPools(t, h)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	k, err := h.pool.any(ctx)
	if err != nil {
		t.Fatal(err)
	}

	// A: a call that asked for progress, under its id on the connection.
	a := &progressCounter{c: ctx, first: make(chan struct{})}
	ids := make(chan int64, 1)
	aerr := make(chan error, 1)
	go func() {
		_, err := k.roundTripWith(ctx, schema.MethodToolsCall, func(id int64) json.RawMessage {
			ids <- id
			return fmt.Appendf(nil, `{"name":"hold","arguments":{},"_meta":{"progressToken":%d}}`, id)
		}, a)
		aerr <- err
	}()
	select {
	case <-a.first:
	case err := <-aerr:
		t.Fatalf("call A ended before it reported progress: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("call A reported no progress within 10s")
	}
	defer func() {
		close(release)
		if err := <-aerr; err != nil {
			t.Errorf("call A: %v", err)
		}
	}()
	idA := <-ids

	// B: another client's completion, its progress token A's id.
	params := fmt.Appendf(nil, `{"ref":{"type":"ref/prompt","name":"greet"},"argument":{"name":"name","value":"al"},"_meta":{"progressToken":%d}}`, idA)
	res, err := h.handle(ctx, &workers.Call{Key: "b"}, workers.RawRequest{Method: schema.MethodCompletionComplete, Name: "greet", Params: params})
	if err != nil {
		t.Fatalf("completion/complete: %v", err)
	}
	var r struct {
		Completion struct {
			Values []string `json:"values"`
		} `json:"completion"`
	}
	if err := json.Unmarshal(res, &r); err != nil || len(r.Completion.Values) != 1 || r.Completion.Values[0] != "alice" {
		t.Fatalf("completion/complete result %s: %v", res, err)
	}
	// The upstream's progress, if any, was read before its answer.
	if n := a.count(); n != 1 {
		t.Errorf("call A's client got %d progress notifications, want its own one: the completion's progress reached it", n)
	}
	if tok := <-tokens; tok != nil {
		t.Errorf("the upstream got progress token %v with completion/complete: the client's token, forwarded as it is (want none)", tok)
	}
}
