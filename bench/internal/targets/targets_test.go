package targets

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/mcpstream/mcpstream/bench"
)

// TestTools: both plain servers, on real loopback HTTP, answer every
// tool the comparison calls.
func TestTools(t *testing.T) {
	for name, h := range map[string]http.Handler{"mcp-go": MCPGo(), "go-sdk": GoSDK()} {
		srv := httptest.NewServer(h)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		for _, c := range []struct{ tool, args string }{{"echo", `{"text":"hi"}`}, {"increment", `{}`}, {"increment", `{"by":2}`}} {
			if _, err := bench.ProbeCall(ctx, srv.URL, c.tool, json.RawMessage(c.args)); err != nil {
				t.Errorf("%s: %s %s: %v", name, c.tool, c.args, err)
			}
		}
		cancel()
		srv.Close()
	}
}
