// Command upstreamserver is an MCP server written with the official
// go-sdk's server API, for the tests of worker groups that host an
// existing server (package workers/upstream). It serves over stdio, over
// Streamable HTTP with -http ADDR, or over the 2024-11-05 HTTP+SSE
// transport with -sse ADDR (it prints "listening on URL"). Over stdio the
// SDK speaks 2026-07-28 as well as the session revisions; over HTTP only
// with -stateless (no sessions then: no requests to the client).
//
// Tools: say (readOnlyHint), slow (20 ms, or -slow), progress (three
// progress notifications and a log message), sample (asks the client's
// model), elicit (asks the user), add_tool (adds a tool, which sends
// notifications/tools/list_changed), pid (the process's id), wait
// (reports progress once, then waits until cancelled), pid_later
// (readOnlyHint: progress once, then its pid ms later), hang (ignores
// cancellation), ask_name (asks the user's name with an input_required
// result of its own: key upstream_name, requestState upstream-state-1;
// a session client is asked by the SDK with elicitation/create),
// linger (ignores cancellation; once release is called, sends a log
// message and a sampling request, answers release with how the sampling
// went, then answers), release (lets linger go on; answers what its
// sampling request got: "sampled: ..." or "sampling failed: ..."),
// stop_reading (over stdio: answers, then its stdin is no longer read,
// so a writer to it blocks once the pipe is full), need_sampling (-32021 unless the calling client declared sampling, as
// its request says), region (an argument marked x-mcp-header). A resource test://static, a
// template test://items/{id}, a prompt greet whose argument name
// completes.
//
// With -never-init it reads its input and never answers: an upstream that
// never initializes.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

func main() {
	httpAddr := flag.String("http", "", "serve Streamable HTTP on this address instead of stdio")
	sseAddr := flag.String("sse", "", "serve the 2024-11-05 HTTP+SSE transport on this address instead of stdio")
	neverInit := flag.Bool("never-init", false, "read the input and never answer")
	stateless := flag.Bool("stateless", false, "with -http: serve Streamable HTTP statelessly, which the SDK needs to speak 2026-07-28 over HTTP")
	slow := flag.Duration("slow", 20*time.Millisecond, "how long the slow tool takes")
	flag.Parse()
	if *neverInit {
		fmt.Fprintln(os.Stderr, "upstreamserver: never initializing")
		_, _ = io.Copy(io.Discard, os.Stdin)
		return
	}
	s := newServer(*slow)
	if *httpAddr == "" && *sseAddr == "" {
		fmt.Fprintln(os.Stderr, "upstreamserver: serving on stdio")
		if err := s.Run(context.Background(), &mcp.IOTransport{Reader: stdin, Writer: os.Stdout}); err != nil {
			log.Fatal(err)
		}
		return
	}
	addr, path, h := *httpAddr, "/mcp", http.Handler(mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s },
		&mcp.StreamableHTTPOptions{Stateless: *stateless}))
	if *sseAddr != "" {
		addr, path, h = *sseAddr, "/sse", mcp.NewSSEHandler(func(*http.Request) *mcp.Server { return s }, nil)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("listening on http://%s%s\n", ln.Addr(), path)
	mux := http.NewServeMux()
	mux.Handle(path, h)
	log.Fatal(http.Serve(ln, mux))
}

// stdin is the server's stdin over stdio, until stop_reading stops it.
var stdin = &gatedReader{r: os.Stdin}

// gatedReader reads r until stopped, then blocks each read for an hour
// (a timer, so that the runtime does not take it for a deadlock and
// exit): a process that does not read its input.
type gatedReader struct {
	r       io.ReadCloser
	stopped atomic.Bool
}

func (g *gatedReader) Read(p []byte) (int, error) {
	if g.stopped.Load() {
		time.Sleep(time.Hour)
	}
	return g.r.Read(p)
}

func (g *gatedReader) Close() error { return g.r.Close() }

type echoIn struct {
	Msg string `json:"msg"`
}

func text(s string) *mcp.CallToolResult {
	return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: s}}}
}

func newServer(slow time.Duration) *mcp.Server {
	s := mcp.NewServer(&mcp.Implementation{Name: "upstreamserver", Version: "1"}, &mcp.ServerOptions{
		CompletionHandler: func(_ context.Context, req *mcp.CompleteRequest) (*mcp.CompleteResult, error) {
			var out []string
			for _, v := range []string{"alice", "alfred", "bob"} {
				if strings.HasPrefix(v, req.Params.Argument.Value) {
					out = append(out, v)
				}
			}
			return &mcp.CompleteResult{Completion: mcp.CompletionResultDetails{Values: out, Total: len(out)}}, nil
		},
	})
	mcp.AddTool(s, &mcp.Tool{Name: "say", Description: "says msg back", Annotations: &mcp.ToolAnnotations{ReadOnlyHint: true}},
		func(_ context.Context, _ *mcp.CallToolRequest, in echoIn) (*mcp.CallToolResult, any, error) {
			return text("say: " + in.Msg), nil, nil
		})
	mcp.AddTool(s, &mcp.Tool{Name: "slow", Description: "takes a while", Annotations: &mcp.ToolAnnotations{ReadOnlyHint: true}},
		func(ctx context.Context, _ *mcp.CallToolRequest, _ struct{}) (*mcp.CallToolResult, any, error) {
			select {
			case <-time.After(slow):
			case <-ctx.Done():
				return nil, nil, ctx.Err()
			}
			return text("slow done"), nil, nil
		})
	mcp.AddTool(s, &mcp.Tool{Name: "progress", Description: "reports progress and logs"},
		func(ctx context.Context, req *mcp.CallToolRequest, _ struct{}) (*mcp.CallToolResult, any, error) {
			_ = req.Session.Log(ctx, &mcp.LoggingMessageParams{Level: "info", Logger: "upstreamserver", Data: "working"})
			if tok := req.Params.GetProgressToken(); tok != nil {
				for i := 1; i <= 3; i++ {
					if err := req.Session.NotifyProgress(ctx, &mcp.ProgressNotificationParams{ProgressToken: tok, Progress: float64(i), Total: 3, Message: fmt.Sprintf("step %d", i)}); err != nil {
						return nil, nil, err
					}
				}
			}
			return text("progress done"), nil, nil
		})
	mcp.AddTool(s, &mcp.Tool{Name: "sample", Description: "asks the client's model"},
		func(ctx context.Context, req *mcp.CallToolRequest, _ struct{}) (*mcp.CallToolResult, any, error) {
			res, err := req.Session.CreateMessage(ctx, &mcp.CreateMessageParams{MaxTokens: 10,
				Messages: []*mcp.SamplingMessage{{Role: "user", Content: &mcp.TextContent{Text: "say hi"}}}})
			if err != nil {
				return nil, nil, fmt.Errorf("sampling: %w", err)
			}
			t, _ := res.Content.(*mcp.TextContent)
			if t == nil {
				return text("sampled: (not text)"), nil, nil
			}
			return text("sampled: " + t.Text), nil, nil
		})
	mcp.AddTool(s, &mcp.Tool{Name: "elicit", Description: "asks the user"},
		func(ctx context.Context, req *mcp.CallToolRequest, _ struct{}) (*mcp.CallToolResult, any, error) {
			res, err := req.Session.Elicit(ctx, &mcp.ElicitParams{Message: "name?",
				RequestedSchema: map[string]any{"type": "object", "properties": map[string]any{"name": map[string]any{"type": "string"}}}})
			if err != nil {
				return nil, nil, fmt.Errorf("elicitation: %w", err)
			}
			return text(fmt.Sprintf("elicited: %s %v", res.Action, res.Content["name"])), nil, nil
		})
	var added atomic.Int64
	mcp.AddTool(s, &mcp.Tool{Name: "add_tool", Description: "adds a tool"},
		func(_ context.Context, _ *mcp.CallToolRequest, _ struct{}) (*mcp.CallToolResult, any, error) {
			name := fmt.Sprintf("added_%d", added.Add(1))
			mcp.AddTool(s, &mcp.Tool{Name: name, Description: "added at run time"},
				func(context.Context, *mcp.CallToolRequest, struct{}) (*mcp.CallToolResult, any, error) {
					return text(name + " here"), nil, nil
				})
			return text(name), nil, nil
		})
	mcp.AddTool(s, &mcp.Tool{Name: "pid", Description: "the process id", Annotations: &mcp.ToolAnnotations{ReadOnlyHint: true}},
		func(context.Context, *mcp.CallToolRequest, struct{}) (*mcp.CallToolResult, any, error) {
			return text(fmt.Sprint(os.Getpid())), nil, nil
		})
	mcp.AddTool(s, &mcp.Tool{Name: "wait", Description: "reports progress 0 once, then waits until cancelled"},
		func(ctx context.Context, req *mcp.CallToolRequest, _ struct{}) (*mcp.CallToolResult, any, error) {
			if tok := req.Params.GetProgressToken(); tok != nil {
				_ = req.Session.NotifyProgress(ctx, &mcp.ProgressNotificationParams{ProgressToken: tok, Message: "waiting"})
			}
			<-ctx.Done()
			return nil, nil, ctx.Err()
		})
	mcp.AddTool(s, &mcp.Tool{Name: "pid_later", Description: "reports progress once, waits ms, then answers its pid", Annotations: &mcp.ToolAnnotations{ReadOnlyHint: true}},
		func(ctx context.Context, req *mcp.CallToolRequest, in struct {
			Ms int `json:"ms"`
		}) (*mcp.CallToolResult, any, error) {
			if tok := req.Params.GetProgressToken(); tok != nil {
				_ = req.Session.NotifyProgress(ctx, &mcp.ProgressNotificationParams{ProgressToken: tok, Message: "waiting"})
			}
			select {
			case <-time.After(time.Duration(in.Ms) * time.Millisecond):
			case <-ctx.Done():
				return nil, nil, ctx.Err()
			}
			return text(fmt.Sprint(os.Getpid())), nil, nil
		})
	mcp.AddTool(s, &mcp.Tool{Name: "hang", Description: "ignores cancellation"},
		func(context.Context, *mcp.CallToolRequest, struct{}) (*mcp.CallToolResult, any, error) {
			select {}
		})
	// linger and release: release hands linger a channel to answer on;
	// linger, whose own context may be cancelled by then, logs and asks
	// for sampling without it, so that both reach the client after the
	// call was cancelled. Linger reports progress as it starts, when the
	// call asks for it: a call cancelled before its handler starts never
	// runs it.
	releases := make(chan chan string)
	mcp.AddTool(s, &mcp.Tool{Name: "linger", Description: "ignores cancellation; once released, logs and asks for sampling"},
		func(ctx context.Context, req *mcp.CallToolRequest, _ struct{}) (*mcp.CallToolResult, any, error) {
			if tok := req.Params.GetProgressToken(); tok != nil {
				_ = req.Session.NotifyProgress(ctx, &mcp.ProgressNotificationParams{ProgressToken: tok, Message: "started"})
			}
			report := <-releases
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			_ = req.Session.Log(ctx, &mcp.LoggingMessageParams{Level: "info", Logger: "upstreamserver", Data: "linger after cancellation"})
			res, err := req.Session.CreateMessage(ctx, &mcp.CreateMessageParams{MaxTokens: 10,
				Messages: []*mcp.SamplingMessage{{Role: "user", Content: &mcp.TextContent{Text: "linger"}}}})
			if err != nil {
				report <- "sampling failed: " + err.Error()
			} else {
				t, _ := res.Content.(*mcp.TextContent)
				if t == nil {
					t = &mcp.TextContent{Text: "(not text)"}
				}
				report <- "sampled: " + t.Text
			}
			return text("linger done"), nil, nil
		})
	mcp.AddTool(s, &mcp.Tool{Name: "release", Description: "lets linger go on and says how its sampling went"},
		func(ctx context.Context, _ *mcp.CallToolRequest, _ struct{}) (*mcp.CallToolResult, any, error) {
			report := make(chan string, 1)
			select {
			case releases <- report:
			case <-ctx.Done():
				return nil, nil, ctx.Err()
			}
			select {
			case r := <-report:
				return text(r), nil, nil
			case <-ctx.Done():
				return nil, nil, ctx.Err()
			}
		})
	mcp.AddTool(s, &mcp.Tool{Name: "stop_reading", Description: "over stdio: stops reading stdin once answered"},
		func(context.Context, *mcp.CallToolRequest, struct{}) (*mcp.CallToolResult, any, error) {
			stdin.stopped.Store(true)
			return text("no longer reading"), nil, nil
		})
	mcp.AddTool(s, &mcp.Tool{Name: "ask_name", Description: "asks the user's name with an input_required result"},
		func(_ context.Context, req *mcp.CallToolRequest, _ struct{}) (*mcp.CallToolResult, any, error) {
			if r, ok := req.Params.InputResponses["upstream_name"].(*mcp.ElicitResult); ok && r != nil {
				if req.Params.RequestState != "upstream-state-1" {
					return nil, nil, fmt.Errorf("requestState %q is not mine", req.Params.RequestState)
				}
				return text(fmt.Sprintf("hello %v (state %s)", r.Content["name"], req.Params.RequestState)), nil, nil
			}
			return &mcp.CallToolResult{InputRequests: mcp.InputRequestMap{
				"upstream_name": &mcp.ElicitParams{Message: "name?",
					RequestedSchema: map[string]any{"type": "object", "properties": map[string]any{"name": map[string]any{"type": "string"}}}},
			}, RequestState: "upstream-state-1"}, nil, nil
		})
	mcp.AddTool(s, &mcp.Tool{Name: "need_sampling", Description: "requires the sampling capability of the calling client"},
		func(_ context.Context, req *mcp.CallToolRequest, _ struct{}) (*mcp.CallToolResult, any, error) {
			if caps := req.ClientCapabilities(); caps != nil && caps.Sampling != nil {
				return text("sampling declared"), nil, nil
			}
			data, _ := json.Marshal(mcp.MissingRequiredClientCapabilityData{RequiredCapabilities: &mcp.ClientCapabilities{Sampling: &mcp.SamplingCapabilities{}}})
			return nil, nil, &jsonrpc.Error{Code: mcp.CodeMissingRequiredClientCapabilities, Message: "sampling required", Data: data}
		})
	mcp.AddTool(s, &mcp.Tool{Name: "region", Description: "says its region argument, which 2026-07-28 mirrors into Mcp-Param-Region",
		InputSchema: json.RawMessage(`{"type":"object","properties":{"region":{"type":"string","x-mcp-header":"Region"}}}`)},
		func(_ context.Context, _ *mcp.CallToolRequest, in struct {
			Region string `json:"region"`
		}) (*mcp.CallToolResult, any, error) {
			return text("region " + in.Region), nil, nil
		})
	s.AddResource(&mcp.Resource{URI: "test://static", Name: "static", MIMEType: "text/plain"},
		func(_ context.Context, req *mcp.ReadResourceRequest) (*mcp.ReadResourceResult, error) {
			return &mcp.ReadResourceResult{Contents: []*mcp.ResourceContents{{URI: req.Params.URI, MIMEType: "text/plain", Text: "static content"}}}, nil
		})
	s.AddResourceTemplate(&mcp.ResourceTemplate{URITemplate: "test://items/{id}", Name: "item", MIMEType: "text/plain"},
		func(_ context.Context, req *mcp.ReadResourceRequest) (*mcp.ReadResourceResult, error) {
			id := strings.TrimPrefix(req.Params.URI, "test://items/")
			return &mcp.ReadResourceResult{Contents: []*mcp.ResourceContents{{URI: req.Params.URI, MIMEType: "text/plain", Text: "item " + id}}}, nil
		})
	s.AddPrompt(&mcp.Prompt{Name: "greet", Description: "greets", Arguments: []*mcp.PromptArgument{{Name: "name", Required: true}}},
		func(_ context.Context, req *mcp.GetPromptRequest) (*mcp.GetPromptResult, error) {
			return &mcp.GetPromptResult{Messages: []*mcp.PromptMessage{{Role: "user", Content: &mcp.TextContent{Text: "hello " + req.Params.Arguments["name"]}}}}, nil
		})
	return s
}
