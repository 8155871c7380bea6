package itest

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	mcpgoclient "github.com/mark3labs/mcp-go/client"
	mcpgo "github.com/mark3labs/mcp-go/mcp"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcpstream/mcpstream/gateway"
	"github.com/mcpstream/mcpstream/schema"
	"github.com/mcpstream/mcpstream/workers"
)

// TestCancellationReachesTheHandler: the official client cancels a call
// (notifications/cancelled in 2025-11-25; in 2026-07-28, by closing the
// request's stream); the gateway passes it to the workers, and the handler
// running the call sees its context cancelled with the client's reason.
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
	for _, era := range []struct {
		name string
		opts *mcp.ClientSessionOptions
		want string
	}{
		{"2025-11-25", &mcp.ClientSessionOptions{ProtocolVersion: "2025-11-25"}, ""},
		{"2026-07-28", nil, "the client closed the request's stream"},
	} {
		t.Run(era.name, func(t *testing.T) { cancelOnce(t, ctx, s.url, era.opts, era.want, started, seen) })
	}
	t.Run("mcp-go", func(t *testing.T) {
		c, err := mcpgoclient.NewStreamableHttpClient(s.url)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if err := c.Start(ctx); err != nil {
			t.Fatal(err)
		}
		// Over HTTP mcp-go cancels by closing the request's stream, which
		// is the cancellation in 2026-07-28 (in a session revision a
		// dropped connection is not one, and mcp-go sends nothing there).
		if _, err := c.Initialize(ctx, mcpgo.InitializeRequest{Params: mcpgo.InitializeParams{
			ClientInfo: mcpgo.Implementation{Name: "itest-cancel-mcp-go", Version: "1"}}}); err != nil {
			t.Fatal(err)
		}
		callCtx, cancelCall := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() {
			defer close(done)
			_, _ = c.CallTool(callCtx, mcpgo.CallToolRequest{Params: mcpgo.CallToolParams{Name: "wait_for_cancel"}})
		}()
		awaitN(t, ctx, started, 1, "handler never started")
		cancelCall()
		<-done
		select {
		case cause := <-seen:
			if cause == nil || cause.Error() != "the client closed the request's stream" {
				t.Fatalf("handler's context ended with %v, want mcp-go's cancellation", cause)
			}
		case <-ctx.Done():
			t.Fatal("handler's context was not cancelled")
		}
	})
}

// cancelOnce has the official client cancel a call of wait_for_cancel and
// checks the handler's context ends with the cancellation (cause want, if
// given): in 2025-11-25 by notifications/cancelled, in 2026-07-28 by
// closing the request's stream.
func cancelOnce(t *testing.T, ctx context.Context, url string, opts *mcp.ClientSessionOptions, want string, started chan struct{}, seen chan error) {
	client := mcp.NewClient(&mcp.Implementation{Name: "itest-cancel", Version: "1"}, nil)
	cs, err := client.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: url, HTTPClient: &http.Client{}, MaxRetries: -1}, opts)
	if err != nil {
		t.Fatal(err)
	}
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
	cancelCall()
	if err := <-callErr; err == nil {
		t.Fatal("cancelled call returned no error")
	}
	select {
	case cause := <-seen:
		if cause == nil || cause == context.DeadlineExceeded || cause.Error() == "not cancelled within 30s" || (want != "" && cause.Error() != want) {
			t.Fatalf("handler's context ended with %v, want the client's cancellation %q", cause, want)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("handler's context was not cancelled")
	}
}
