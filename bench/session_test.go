package bench

import (
	"context"
	"errors"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/mcpstream/mcpstream/bench/internal/targets"
)

// TestClientSessions: a session opened by a Client calls, holds its GET
// stream, ends it, is deleted, and is unknown after (go-sdk; mcp-go
// answers a deleted session's calls); a call whose context ends mid-call
// returns the context's error.
func TestClientSessions(t *testing.T) {
	for name, tc := range map[string]struct {
		h          http.Handler
		forgetting bool // answers 404 once a session is deleted
	}{"mcp-go": {targets.MCPGo(), false}, "go-sdk": {targets.GoSDK(), true}} {
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			c := NewClient(serve(t, tc.h), 4)
			defer c.CloseIdleConnections()
			params, err := CallParams("echo", []byte(`{"text":"x"}`))
			if err != nil {
				t.Fatal(err)
			}
			s, err := c.Open(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if s.ID() == "" {
				t.Fatal("no session id")
			}
			if err := s.Call(ctx, params); err != nil {
				t.Fatalf("call: %v", err)
			}
			sctx, scancel := context.WithCancel(ctx)
			body, err := s.OpenStream(sctx)
			if err != nil {
				t.Fatalf("GET stream: %v", err)
			}
			done := make(chan struct{})
			go func() { defer close(done); _, _ = io.Copy(io.Discard, body); _ = body.Close() }()
			scancel()
			<-done
			cut, cutCancel := context.WithCancel(ctx)
			cutCancel()
			if err := s.Call(cut, params); !errors.Is(err, context.Canceled) || ErrorKind(err) != KindCanceled {
				t.Errorf("a call cut short: %v (kind %q), want context.Canceled", err, ErrorKind(err))
			}
			if err := s.Delete(ctx); err != nil {
				t.Fatalf("DELETE: %v", err)
			}
			if err := s.Call(ctx, params); tc.forgetting && ErrorKind(err) != "http-404" {
				t.Errorf("a call after DELETE: %v (kind %q), want http-404", err, ErrorKind(err))
			}
		})
	}
	if _, err := CallParams("echo", []byte(`[1]`)); err == nil {
		t.Error("CallParams took an array for arguments")
	}
}
