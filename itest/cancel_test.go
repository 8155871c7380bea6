package itest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcpstream/mcpstream/gateway"
	"github.com/mcpstream/mcpstream/schema"
	"github.com/mcpstream/mcpstream/workers"
)

// TestCancellationReachesTheHandler: the official client cancels a call
// (notifications/cancelled); the gateway passes it to the workers, and the
// handler running the call sees its context cancelled with the client's
// reason.
func TestCancellationReachesTheHandler(t *testing.T) {
	s := newStack(t, gateway.Config{})
	started := make(chan struct{}, 1)
	seen := make(chan error, 1)
	g := workers.NewGroup("probe")
	workers.AddTool(g, workers.Tool{Name: "wait_for_cancel"},
		func(ctx context.Context, _ *workers.Call, _ struct{}) (*schema.ToolResult, error) {
			started <- struct{}{}
			select {
			case <-ctx.Done():
				seen <- context.Cause(ctx)
			case <-time.After(30 * time.Second):
				seen <- errors.New("not cancelled within 30s")
			}
			return nil, ctx.Err()
		})
	s.runGroup(t, g, "wait_for_cancel")

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cs := connectOfficial(t, ctx, s.url, "itest-cancel", nil)
	defer cs.Close()
	callCtx, cancelCall := context.WithCancel(ctx)
	callErr := make(chan error, 1)
	go func() {
		_, err := cs.CallTool(callCtx, &mcp.CallToolParams{Name: "wait_for_cancel"})
		callErr <- err
	}()
	select {
	case <-started:
	case <-time.After(20 * time.Second):
		t.Fatal("handler never started")
	}
	cancelCall() // the client sends notifications/cancelled
	if err := <-callErr; err == nil {
		t.Fatal("cancelled call returned no error")
	}
	select {
	case cause := <-seen:
		if cause == nil || cause == context.DeadlineExceeded || cause.Error() == "not cancelled within 30s" {
			t.Fatalf("handler's context ended with %v, want the client's cancellation", cause)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("handler's context was not cancelled")
	}
}
