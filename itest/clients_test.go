package itest

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"sync"
	"testing"
	"time"

	mcpgoclient "github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	mcpgo "github.com/mark3labs/mcp-go/mcp"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// caller is what the tests need of an MCP client session, so the same
// checks run through both third-party clients.
type caller interface {
	listTools(ctx context.Context) ([]string, error)
	// call returns the text of the first content item and the structured
	// content (JSON), or the error; isError results come back as errors.
	call(ctx context.Context, tool string, args map[string]any) (text string, structured []byte, err error)
	close() error
}

// goSDK is a session of the official Go SDK client, pinned to 2025-11-25.
type goSDK struct{ cs *mcp.ClientSession }

func dialGoSDK(ctx context.Context, endpoint string, hc *http.Client) (caller, error) {
	c := mcp.NewClient(&mcp.Implementation{Name: "itest-go-sdk", Version: "1"}, nil)
	cs, err := c.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: endpoint, HTTPClient: hc, MaxRetries: -1},
		&mcp.ClientSessionOptions{ProtocolVersion: "2025-11-25"})
	if err != nil {
		return nil, fmt.Errorf("go-sdk connect: %w", err)
	}
	if v := cs.InitializeResult().ProtocolVersion; v != "2025-11-25" {
		_ = cs.Close()
		return nil, fmt.Errorf("go-sdk negotiated %s, want 2025-11-25", v)
	}
	return &goSDK{cs: cs}, nil
}

func (g *goSDK) listTools(ctx context.Context) ([]string, error) {
	res, err := g.cs.ListTools(ctx, nil)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, t := range res.Tools {
		names = append(names, t.Name)
	}
	return names, nil
}

func (g *goSDK) call(ctx context.Context, tool string, args map[string]any) (string, []byte, error) {
	res, err := g.cs.CallTool(ctx, &mcp.CallToolParams{Name: tool, Arguments: args})
	if err != nil {
		return "", nil, err
	}
	text := ""
	if len(res.Content) > 0 {
		tc, ok := res.Content[0].(*mcp.TextContent)
		if !ok {
			return "", nil, fmt.Errorf("content is %T, want text", res.Content[0])
		}
		text = tc.Text
	}
	if res.IsError {
		return "", nil, fmt.Errorf("tool error: %s", text)
	}
	var structured []byte
	if res.StructuredContent != nil {
		structured, _ = json.Marshal(res.StructuredContent)
	}
	return text, structured, nil
}

func (g *goSDK) close() error { return g.cs.Close() }

// mcpGo is a session of the mark3labs/mcp-go client with its default
// negotiation (it tries the stateless revision first, then initialize).
type mcpGo struct{ c *mcpgoclient.Client }

func dialMCPGo(ctx context.Context, endpoint string, hc *http.Client) (caller, error) {
	c, err := mcpgoclient.NewStreamableHttpClient(endpoint, transport.WithHTTPBasicClient(hc))
	if err != nil {
		return nil, fmt.Errorf("mcp-go client: %w", err)
	}
	if err := c.Start(ctx); err != nil {
		return nil, fmt.Errorf("mcp-go start: %w", err)
	}
	// Pinned to the session era, as the go-sdk dialer is: left alone,
	// mcp-go negotiates 2026-07-28 (TestStatelessRevision covers that).
	res, err := c.Initialize(ctx, mcpgo.InitializeRequest{Params: mcpgo.InitializeParams{
		ProtocolVersion: "2025-11-25", ClientInfo: mcpgo.Implementation{Name: "itest-mcp-go", Version: "1"},
	}})
	if err != nil {
		_ = c.Close()
		return nil, fmt.Errorf("mcp-go initialize: %w", err)
	}
	if res.ProtocolVersion != "2025-11-25" {
		_ = c.Close()
		return nil, fmt.Errorf("mcp-go negotiated %s, want 2025-11-25", res.ProtocolVersion)
	}
	return &mcpGo{c: c}, nil
}

func (m *mcpGo) listTools(ctx context.Context) ([]string, error) {
	res, err := m.c.ListTools(ctx, mcpgo.ListToolsRequest{})
	if err != nil {
		return nil, err
	}
	var names []string
	for _, t := range res.Tools {
		names = append(names, t.Name)
	}
	return names, nil
}

func (m *mcpGo) call(ctx context.Context, tool string, args map[string]any) (string, []byte, error) {
	req := mcpgo.CallToolRequest{}
	req.Params.Name = tool
	req.Params.Arguments = args
	res, err := m.c.CallTool(ctx, req)
	if err != nil {
		return "", nil, err
	}
	text := ""
	if len(res.Content) > 0 {
		tc, ok := mcpgo.AsTextContent(res.Content[0])
		if !ok {
			return "", nil, fmt.Errorf("content is %T, want text", res.Content[0])
		}
		text = tc.Text
	}
	if res.IsError {
		return "", nil, fmt.Errorf("tool error: %s", text)
	}
	var structured []byte
	if res.StructuredContent != nil {
		structured, _ = json.Marshal(res.StructuredContent)
	}
	return text, structured, nil
}

func (m *mcpGo) close() error { return m.c.Close() }

var dialers = map[string]func(context.Context, string, *http.Client) (caller, error){
	"go-sdk": dialGoSDK,
	"mcp-go": dialMCPGo,
}

// TestClientsAgainstDev runs both real clients against `mcpstream dev`:
// list the demo tools, call echo, add and sleep, and see a tool error.
func TestClientsAgainstDev(t *testing.T) {
	dev, endpoint, _ := startDev(t, false)
	for name, dial := range dialers {
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			c, err := dial(ctx, endpoint, &http.Client{})
			if err != nil {
				t.Fatal(err)
			}
			defer func() {
				if err := c.close(); err != nil {
					t.Errorf("close: %v", err)
				}
			}()
			names, err := c.listTools(ctx)
			if err != nil {
				t.Fatal(err)
			}
			sort.Strings(names)
			if fmt.Sprint(names) != "[add echo increment sleep]" {
				t.Fatalf("tools = %v, want [add echo increment sleep]", names)
			}
			text, _, err := c.call(ctx, "echo", map[string]any{"text": "héllo, " + name})
			if err != nil || text != "héllo, "+name {
				t.Fatalf("echo = %q, %v", text, err)
			}
			text, structured, err := c.call(ctx, "add", map[string]any{"a": 2, "b": 3.25})
			if err != nil {
				t.Fatal(err)
			}
			var sum struct{ Sum float64 }
			if err := json.Unmarshal(structured, &sum); err != nil || sum.Sum != 5.25 || text != `{"sum":5.25}` {
				t.Fatalf("add = %q structured %s (%v), want sum 5.25", text, structured, err)
			}
			start := time.Now()
			text, _, err = c.call(ctx, "sleep", map[string]any{"ms": 150})
			if err != nil || text != "slept 150 ms" {
				t.Fatalf("sleep = %q, %v", text, err)
			}
			if took := time.Since(start); took < 150*time.Millisecond {
				t.Fatalf("sleep 150 ms answered after %s", took)
			}
			if _, _, err := c.call(ctx, "add", map[string]any{"a": "two", "b": 1}); err == nil {
				t.Fatal("add with a string argument succeeded, want a tool error")
			}
		})
	}
	dev.stop()
}

// TestConcurrentSessions opens 100 sessions at once (half through each
// client) and makes 50 calls on each; every answer must be the right one.
func TestConcurrentSessions(t *testing.T) {
	dev, endpoint, _ := startDev(t, false)
	const sessions, calls = 100, 50
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 2 * sessions, MaxConnsPerHost: 0}}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, sessions)
	var mu sync.Mutex
	answered := 0
	for s := range sessions {
		wg.Add(1)
		go func() {
			defer wg.Done()
			dial := dialGoSDK
			if s%2 == 1 {
				dial = dialMCPGo
			}
			c, err := dial(ctx, endpoint, hc)
			if err != nil {
				errs <- fmt.Errorf("session %d: %w", s, err)
				return
			}
			defer c.close()
			for i := range calls {
				want := fmt.Sprintf("session %d call %d", s, i)
				tool, args := "echo", map[string]any{"text": want}
				if i%5 == 4 {
					tool, args, want = "add", map[string]any{"a": s, "b": i}, fmt.Sprintf(`{"sum":%d}`, s+i)
				}
				got, _, err := c.call(ctx, tool, args)
				if err != nil {
					errs <- fmt.Errorf("session %d call %d: %w", s, i, err)
					return
				}
				if got != want {
					errs <- fmt.Errorf("session %d call %d: got %q, want %q", s, i, got, want)
					return
				}
				mu.Lock()
				answered++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if answered != sessions*calls {
		t.Fatalf("%d calls answered correctly, want %d", answered, sessions*calls)
	}
	dev.stop()
}
