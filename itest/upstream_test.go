package itest

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	mcpgoclient "github.com/mark3labs/mcp-go/client"
	mcpgo "github.com/mark3labs/mcp-go/mcp"
	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcpstream/mcpstream/gateway"
	"github.com/mcpstream/mcpstream/internal/testkit"
	"github.com/mcpstream/mcpstream/workers"
	"github.com/mcpstream/mcpstream/workers/upstream"
)

// upstreamServer is the test MCP server (internal/testkit/upstreamserver),
// written with the official go-sdk's server API, built once.
var upstreamServer = &testkit.Binary{Pkg: "./internal/testkit/upstreamserver"}

// upstreamBin builds the test server and returns its path.
func upstreamBin(t testing.TB) string {
	t.Helper()
	return upstreamServer.Path(t, "..", false)
}

// runUpstream hosts the upstream cfg describes in group on the stack's
// JetStream for the rest of the test, and waits until it serves and the
// gateway's snapshot has tool (none when "").
func (s *stack) runUpstream(t testing.TB, group string, cfg upstream.Config, tool string) *upstream.Host {
	t.Helper()
	return s.runUpstreamWith(t, group, cfg, workers.Options{}, tool)
}

// runUpstreamWith is runUpstream with wo the group's options (to which
// it adds a quiet Logger and a 1s Heartbeat).
func (s *stack) runUpstreamWith(t testing.TB, group string, cfg upstream.Config, wo workers.Options, tool string) *upstream.Host {
	t.Helper()
	h, err := upstream.New(group, cfg)
	if err != nil {
		t.Fatal(err)
	}
	wo.Logger, wo.Heartbeat = quietLog, time.Second
	s.serve(t, h.Run, wo, tool)
	return h
}

// textOf is the text of a go-sdk tool result's first content.
func textOf(t testing.TB, res *mcp.CallToolResult) string {
	t.Helper()
	if len(res.Content) == 0 {
		t.Fatalf("result without content: %+v", res)
	}
	tc, ok := res.Content[0].(*mcp.TextContent)
	if !ok {
		t.Fatalf("content %T, want text", res.Content[0])
	}
	return tc.Text
}

// TestUpstreamStdioWithOfficialClient: the go-sdk test server, run as a
// stdio process behind a worker group, is used through the gateway by the
// official client: its tools (their annotations kept), a resource, a
// template, a prompt and completion answer as the server does; progress
// and log notifications reach the caller, a sampling and an elicitation
// request reach the client and the answers come back to the server; a
// tool the server adds at run time is registered, and the client is told
// the list changed.
func TestUpstreamStdioWithOfficialClient(t *testing.T) {
	s := newStack(t, gateway.Config{})
	s.runUpstream(t, "up", upstream.Config{Command: []string{upstreamBin(t)}, Pool: 1}, "say")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	var mu sync.Mutex
	var progress []float64
	var logs []string
	listChanged := make(chan struct{}, 8)
	cs := connectOfficial(t, ctx, s.url, "itest-upstream", &mcp.ClientOptions{
		ProgressNotificationHandler: func(_ context.Context, req *mcp.ProgressNotificationClientRequest) {
			mu.Lock()
			progress = append(progress, req.Params.Progress)
			mu.Unlock()
		},
		LoggingMessageHandler: func(_ context.Context, req *mcp.LoggingMessageRequest) {
			mu.Lock()
			logs = append(logs, fmt.Sprint(req.Params.Data))
			mu.Unlock()
		},
		ToolListChangedHandler: func(context.Context, *mcp.ToolListChangedRequest) { listChanged <- struct{}{} },
		CreateMessageHandler: func(_ context.Context, req *mcp.CreateMessageRequest) (*mcp.CreateMessageResult, error) {
			return &mcp.CreateMessageResult{Role: "assistant", Model: "m1",
				Content: &mcp.TextContent{Text: "hi from " + req.Params.Messages[0].Content.(*mcp.TextContent).Text}}, nil
		},
		ElicitationHandler: func(context.Context, *mcp.ElicitRequest) (*mcp.ElicitResult, error) {
			return &mcp.ElicitResult{Action: "accept", Content: map[string]any{"name": "ada"}}, nil
		},
	})
	defer cs.Close()

	tools, err := cs.ListTools(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, tool := range tools.Tools {
		names = append(names, tool.Name)
		if tool.Name == "say" && (tool.Annotations == nil || !tool.Annotations.ReadOnlyHint) {
			t.Errorf("say's annotations %+v: want readOnlyHint kept", tool.Annotations)
		}
	}
	for _, want := range []string{"say", "slow", "progress", "sample", "elicit", "add_tool"} {
		if !slices.Contains(names, want) {
			t.Fatalf("tools %v: no %s", names, want)
		}
	}
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "say", Arguments: map[string]any{"msg": "hello"}})
	if err != nil || res.IsError || textOf(t, res) != "say: hello" {
		t.Fatalf("say: %v %+v %s", err, res, textOf(t, res))
	}

	p := &mcp.CallToolParams{Name: "progress", Arguments: map[string]any{}}
	p.SetProgressToken("tok-1")
	if res, err = cs.CallTool(ctx, p); err != nil || textOf(t, res) != "progress done" {
		t.Fatalf("progress: %v %+v", err, res)
	}
	testkit.Eventually(t, "three progress notifications and a log message", 10*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(progress) == 3 && slices.Contains(logs, "working")
	})
	mu.Lock()
	if !slices.Equal(progress, []float64{1, 2, 3}) {
		t.Errorf("progress %v, want 1 2 3 in order", progress)
	}
	mu.Unlock()

	if res, err = cs.CallTool(ctx, &mcp.CallToolParams{Name: "sample", Arguments: map[string]any{}}); err != nil || textOf(t, res) != "sampled: hi from say hi" {
		t.Fatalf("sample: %v %+v", err, res)
	}
	if res, err = cs.CallTool(ctx, &mcp.CallToolParams{Name: "elicit", Arguments: map[string]any{}}); err != nil || textOf(t, res) != "elicited: accept ada" {
		t.Fatalf("elicit: %v %+v", err, res)
	}

	read, err := cs.ReadResource(ctx, &mcp.ReadResourceParams{URI: "test://static"})
	if err != nil || len(read.Contents) != 1 || read.Contents[0].Text != "static content" {
		t.Fatalf("read test://static: %v %+v", err, read)
	}
	if read, err = cs.ReadResource(ctx, &mcp.ReadResourceParams{URI: "test://items/7"}); err != nil || read.Contents[0].Text != "item 7" {
		t.Fatalf("read test://items/7: %v %+v", err, read)
	}
	templates, err := cs.ListResourceTemplates(ctx, nil)
	if err != nil || len(templates.ResourceTemplates) != 1 || templates.ResourceTemplates[0].URITemplate != "test://items/{id}" {
		t.Fatalf("templates: %v %+v", err, templates)
	}
	prompt, err := cs.GetPrompt(ctx, &mcp.GetPromptParams{Name: "greet", Arguments: map[string]string{"name": "ada"}})
	if err != nil || prompt.Messages[0].Content.(*mcp.TextContent).Text != "hello ada" {
		t.Fatalf("greet: %v %+v", err, prompt)
	}
	comp, err := cs.Complete(ctx, &mcp.CompleteParams{Ref: &mcp.CompleteReference{Type: "ref/prompt", Name: "greet"},
		Argument: mcp.CompleteParamsArgument{Name: "name", Value: "al"}})
	if err != nil || !slices.Equal(comp.Completion.Values, []string{"alice", "alfred"}) {
		t.Fatalf("complete: %v %+v", err, comp)
	}

	// A tool added at run time: list_changed from the upstream, the
	// registry updated, list_changed to the client, the tool callable.
	if res, err = cs.CallTool(ctx, &mcp.CallToolParams{Name: "add_tool", Arguments: map[string]any{}}); err != nil || textOf(t, res) != "added_1" {
		t.Fatalf("add_tool: %v %+v", err, res)
	}
	select {
	case <-listChanged:
	case <-ctx.Done():
		t.Fatal("no notifications/tools/list_changed after the upstream added a tool")
	}
	testkit.Eventually(t, "added_1 in the registry snapshot", 10*time.Second, func() bool { return s.gw.Registry().Tool("added_1") != nil })
	if res, err = cs.CallTool(ctx, &mcp.CallToolParams{Name: "added_1", Arguments: map[string]any{}}); err != nil || textOf(t, res) != "added_1 here" {
		t.Fatalf("added_1: %v %+v", err, res)
	}
}

// TestUpstreamStdioWithMCPGo: the same upstream through mark3labs/mcp-go's
// client: a tool, progress, sampling, a resource, a prompt, completion.
func TestUpstreamStdioWithMCPGo(t *testing.T) {
	s := newStack(t, gateway.Config{})
	s.runUpstream(t, "up", upstream.Config{Command: []string{upstreamBin(t)}, Pool: 2}, "say")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var mu sync.Mutex
	var notes []string
	c := connectMCPGo(t, ctx, s.url, "itest-mcp-go-upstream", func(c *mcpgoclient.Client) {
		c.OnNotification(func(n mcpgo.JSONRPCNotification) {
			mu.Lock()
			notes = append(notes, n.Method)
			mu.Unlock()
		})
	}, mcpgoclient.WithSamplingHandler(sampler{}))
	defer c.Close()
	text := func(res *mcpgo.CallToolResult) string {
		if len(res.Content) == 0 {
			return ""
		}
		tc, _ := res.Content[0].(mcpgo.TextContent)
		return tc.Text
	}
	res, err := c.CallTool(ctx, mcpgo.CallToolRequest{Params: mcpgo.CallToolParams{Name: "say", Arguments: map[string]any{"msg": "mcp-go"}}})
	if err != nil || res.IsError || text(res) != "say: mcp-go" {
		t.Fatalf("say: %v %+v", err, res)
	}
	req := mcpgo.CallToolRequest{Params: mcpgo.CallToolParams{Name: "progress", Arguments: map[string]any{}}}
	req.Params.Meta = &mcpgo.Meta{ProgressToken: "p1"}
	if res, err = c.CallTool(ctx, req); err != nil || text(res) != "progress done" {
		t.Fatalf("progress: %v %+v", err, res)
	}
	testkit.Eventually(t, "progress notifications", 10*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		n := 0
		for _, m := range notes {
			if m == "notifications/progress" {
				n++
			}
		}
		return n == 3
	})
	if res, err = c.CallTool(ctx, mcpgo.CallToolRequest{Params: mcpgo.CallToolParams{Name: "sample", Arguments: map[string]any{}}}); err != nil || text(res) != "sampled: mcp-go says say hi" {
		t.Fatalf("sample: %v %+v", err, res)
	}
	read, err := c.ReadResource(ctx, mcpgo.ReadResourceRequest{Params: mcpgo.ReadResourceParams{URI: "test://items/42"}})
	if err != nil || len(read.Contents) != 1 {
		t.Fatalf("read: %v %+v", err, read)
	}
	if tc, _ := read.Contents[0].(mcpgo.TextResourceContents); tc.Text != "item 42" {
		t.Fatalf("read test://items/42: %+v", read.Contents[0])
	}
	prompt, err := c.GetPrompt(ctx, mcpgo.GetPromptRequest{Params: mcpgo.GetPromptParams{Name: "greet", Arguments: map[string]string{"name": "bob"}}})
	if err != nil || len(prompt.Messages) != 1 {
		t.Fatalf("greet: %v %+v", err, prompt)
	}
	if tc, _ := prompt.Messages[0].Content.(mcpgo.TextContent); tc.Text != "hello bob" {
		t.Fatalf("greet: %+v", prompt.Messages[0])
	}
	comp, err := c.Complete(ctx, mcpgo.CompleteRequest{Params: mcpgo.CompleteParams{
		Ref: mcpgo.PromptReference{Type: "ref/prompt", Name: "greet"}, Argument: mcpgo.CompleteArgument{Name: "name", Value: "b"}}})
	if err != nil || !slices.Equal(comp.Completion.Values, []string{"bob"}) {
		t.Fatalf("complete: %v %+v", err, comp)
	}
}

// TestUpstreamNaming: four groups host the same server. none registers
// the names as they are; a second none group is refused every name the
// first has, which keeps serving them; conditional prefixes only what is
// taken; always prefixes everything, and include narrows it to say.
func TestUpstreamNaming(t *testing.T) {
	s := newStack(t, gateway.Config{})
	bin := upstreamBin(t)
	s.runUpstream(t, "alpha", upstream.Config{Command: []string{bin}, Pool: 1}, "say")
	beta := s.runUpstream(t, "beta", upstream.Config{Command: []string{bin}, Pool: 1}, "")
	s.runUpstream(t, "gamma", upstream.Config{Command: []string{bin}, Pool: 1, Prefix: upstream.PrefixConditional}, "gamma__say")
	s.runUpstream(t, "delta", upstream.Config{Command: []string{bin}, Pool: 1, Prefix: upstream.PrefixAlways, Separator: ".", Include: []string{"say"}}, "delta.say")

	refused := strings.Join(beta.Refused(), "\n")
	if !strings.Contains(refused, `tool "say" is registered by group alpha`) || !strings.Contains(refused, `prompt "greet" is registered by group alpha`) {
		t.Errorf("beta refused:\n%s\nwant say and greet refused, naming alpha", refused)
	}
	snap := s.gw.Registry()
	if e := snap.Tool("say"); e == nil || e.Group != "alpha" {
		t.Errorf("say served by %+v, want alpha", e)
	}
	if e := snap.Tool("gamma__slow"); e == nil || e.Group != "gamma" {
		t.Errorf("gamma__slow: %+v, want gamma's (slow taken by alpha)", e)
	}
	if snap.Tool("delta.slow") != nil {
		t.Error("delta.slow registered: include say should leave it out")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cs := connectOfficial(t, ctx, s.url, "itest-naming", nil)
	defer cs.Close()
	for name, want := range map[string]string{"say": "say: x", "gamma__say": "say: x", "delta.say": "say: x"} {
		res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: name, Arguments: map[string]any{"msg": "x"}})
		if err != nil || textOf(t, res) != want {
			t.Errorf("%s: %v %+v", name, err, res)
		}
	}
}

// callPid returns the pid of the pooled process that answers a pid call.
func callPid(t testing.TB, ctx context.Context, cs *mcp.ClientSession) int {
	t.Helper()
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "pid", Arguments: map[string]any{}})
	if err != nil || res.IsError {
		t.Fatalf("pid: %v %+v", err, res)
	}
	pid, err := strconv.Atoi(textOf(t, res))
	if err != nil {
		t.Fatal(err)
	}
	return pid
}

// TestUpstreamAffinity: with session affinity each session's calls all
// reach one pooled process; without, one session's calls spread over the
// pool.
func TestUpstreamAffinity(t *testing.T) {
	s := newStack(t, gateway.Config{})
	bin := upstreamBin(t)
	s.runUpstream(t, "sticky", upstream.Config{Command: []string{bin}, Pool: 3, Affinity: upstream.AffinitySession, Prefix: upstream.PrefixAlways}, "sticky__pid")
	s.runUpstream(t, "spread", upstream.Config{Command: []string{bin}, Pool: 3, Prefix: upstream.PrefixAlways}, "spread__pid")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	pids := func(cs *mcp.ClientSession, tool string) map[string]bool {
		out := map[string]bool{}
		for range 9 {
			res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: tool, Arguments: map[string]any{}})
			if err != nil || res.IsError {
				t.Fatalf("%s: %v %+v", tool, err, res)
			}
			out[textOf(t, res)] = true
		}
		return out
	}
	for i := range 3 {
		cs := connectOfficial(t, ctx, s.url, fmt.Sprint("itest-affinity-", i), nil)
		if got := pids(cs, "sticky__pid"); len(got) != 1 {
			t.Errorf("session %d with affinity reached processes %v, want one", i, got)
		}
		// Without affinity the calls spread over the processes up; the
		// pool's others may still be starting on a busy machine, so the
		// session calls until two have answered (at most 12 rounds).
		spread := map[string]bool{}
		for round := 0; round < 12 && len(spread) < 2; round++ {
			maps.Copy(spread, pids(cs, "spread__pid"))
		}
		if len(spread) < 2 {
			t.Errorf("session %d without affinity reached processes %v in 108 calls, want the calls spread", i, spread)
		}
		cs.Close()
	}
}

// TestUpstreamAffinityAcrossReplicas: two replicas of one group with
// session affinity, each with its share of the partitions: every session
// reaches one process of one replica for all its calls (without the
// shares, both replicas pull every partition and a session's calls reach
// both), and the sessions between them reach more than one process.
func TestUpstreamAffinityAcrossReplicas(t *testing.T) {
	s := newStack(t, gateway.Config{})
	bin := upstreamBin(t)
	for i := range 2 {
		s.runUpstreamWith(t, "sticky", upstream.Config{Command: []string{bin}, Pool: 2, Affinity: upstream.AffinitySession},
			workers.Options{Share: workers.PartitionShare{Index: i, Of: 2}}, "pid")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	all := map[int]bool{}
	for i := range 8 {
		cs := connectOfficial(t, ctx, s.url, fmt.Sprint("itest-affinity-replicas-", i), nil)
		seen := map[int]bool{}
		for range 6 {
			seen[callPid(t, ctx, cs)] = true
		}
		cs.Close()
		if len(seen) != 1 {
			t.Errorf("session %d reached processes %v, want one", i, seen)
		}
		for p := range seen {
			all[p] = true
		}
	}
	if len(all) < 2 {
		t.Errorf("8 sessions all reached %v: want the replicas' processes shared out", all)
	}
}

// crashDuringCall hosts the test server in a pool of one process, calls
// tool (with a progress token) on it and SIGKILLs the process once the
// call has reported progress. It returns the killed pid, the client
// session (for more calls) and the call's outcome.
func crashDuringCall(t *testing.T, ctx context.Context, tool string, args map[string]any) (int, *mcp.ClientSession, *mcp.CallToolResult, error) {
	t.Helper()
	s := newStack(t, gateway.Config{})
	s.runUpstream(t, "up", upstream.Config{Command: []string{upstreamBin(t)}, Pool: 1, MinBackoff: 50 * time.Millisecond}, tool)
	started := make(chan struct{}, 1)
	cs := connectOfficial(t, ctx, s.url, "itest-crash", &mcp.ClientOptions{
		ProgressNotificationHandler: func(context.Context, *mcp.ProgressNotificationClientRequest) {
			select {
			case started <- struct{}{}:
			default:
			}
		},
	})
	t.Cleanup(func() { cs.Close() })
	pid := callPid(t, ctx, cs)
	type answer struct {
		res *mcp.CallToolResult
		err error
	}
	done := make(chan answer, 1)
	go func() {
		p := &mcp.CallToolParams{Name: tool, Arguments: args}
		p.SetProgressToken("crash")
		res, err := cs.CallTool(ctx, p)
		done <- answer{res, err}
	}()
	select {
	case <-started:
	case <-ctx.Done():
		t.Fatalf("the %s call never reported progress", tool)
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	select {
	case a := <-done:
		return pid, cs, a.res, a.err
	case <-ctx.Done():
		t.Fatal("the call in flight got no answer after its process died")
	}
	return 0, nil, nil, nil
}

// TestUpstreamCrashRestarted: the pooled process is killed while a call
// (of a tool that is not idempotent) runs on it: the call gets an explicit
// JSON-RPC error saying the connection was lost and it was not sent
// again; the process is started again, and serves the next call.
func TestUpstreamCrashRestarted(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	pid, cs, _, err := crashDuringCall(t, ctx, "wait", map[string]any{})
	if err == nil || !strings.Contains(err.Error(), "connection was lost") || !strings.Contains(err.Error(), "not sent again") {
		t.Fatalf("the call in flight ended with %v, want an explicit error that it was lost and not sent again", err)
	}
	if again := callPid(t, ctx, cs); again == pid {
		t.Fatalf("pid %d after the crash: the same process", again)
	}
}

// TestUpstreamCrashIdempotentRunsAgain: the pooled process is SIGKILLed
// while a call of a readOnlyHint tool runs on it: the call is sent again,
// runs on the process started after, and the client gets its result.
func TestUpstreamCrashIdempotentRunsAgain(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	pid, _, res, err := crashDuringCall(t, ctx, "pid_later", map[string]any{"ms": 2000})
	if err != nil || res.IsError {
		t.Fatalf("the readOnlyHint call in flight: %v %+v, want it run again and answered", err, res)
	}
	if got := textOf(t, res); got == strconv.Itoa(pid) {
		t.Fatalf("answered by the killed process %s", got)
	}
}

// TestUpstreamHTTPSSE: the test server over the 2024-11-05 HTTP+SSE
// transport, found by auto-detection (Streamable HTTP fails first): a
// tool and a prompt answer through the gateway.
func TestUpstreamHTTPSSE(t *testing.T) {
	srv := startProgram(t, "upstreamserver", upstreamBin(t), "-sse", "127.0.0.1:0")
	url := srv.waitLine(regexp.MustCompile(`listening on (http://\S+)`), 30*time.Second)[1]
	s := newStack(t, gateway.Config{})
	s.runUpstream(t, "legacy", upstream.Config{URL: url, Pool: 1}, "say")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cs := connectOfficial(t, ctx, s.url, "itest-upstream-sse", nil)
	defer cs.Close()
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "say", Arguments: map[string]any{"msg": "legacy"}})
	if err != nil || textOf(t, res) != "say: legacy" {
		t.Fatalf("say: %v %+v", err, res)
	}
	prompt, err := cs.GetPrompt(ctx, &mcp.GetPromptParams{Name: "greet", Arguments: map[string]string{"name": "sse"}})
	if err != nil || prompt.Messages[0].Content.(*mcp.TextContent).Text != "hello sse" {
		t.Fatalf("greet: %v %+v", err, prompt)
	}
}

// TestUpstreamHungCallRecycled: a call that the upstream never answers,
// and whose cancellation it ignores, ends at the call's deadline with the
// gateway's timeout; the process is recycled soon after (a new pid).
func TestUpstreamHungCallRecycled(t *testing.T) {
	s := newStack(t, gateway.Config{CallTimeout: 2 * time.Second})
	s.runUpstream(t, "up", upstream.Config{Command: []string{upstreamBin(t)}, Pool: 1, HangGrace: 300 * time.Millisecond, MinBackoff: 50 * time.Millisecond}, "hang")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cs := connectOfficial(t, ctx, s.url, "itest-hang", nil)
	defer cs.Close()
	pid := callPid(t, ctx, cs)
	start := time.Now()
	_, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "hang", Arguments: map[string]any{}})
	if err == nil {
		t.Fatal("the hung call succeeded")
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Fatalf("the hung call ended after %v, want about its 2s deadline", took)
	}
	testkit.Eventually(t, "the hung process recycled", 20*time.Second, func() bool {
		res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "pid", Arguments: map[string]any{}})
		return err == nil && !res.IsError && textOf(t, res) != strconv.Itoa(pid)
	})
}

// TestUpstreamStreamableHTTP: the test server over Streamable HTTP behind
// a worker group: a tool, progress, sampling, sampling again while another
// call is in flight on the same connection (attributed by the call's own
// event stream), a resource.
func TestUpstreamStreamableHTTP(t *testing.T) {
	srv := startProgram(t, "upstreamserver", upstreamBin(t), "-http", "127.0.0.1:0")
	url := srv.waitLine(regexp.MustCompile(`listening on (http://\S+)`), 30*time.Second)[1]
	s := newStack(t, gateway.Config{})
	s.runUpstream(t, "web", upstream.Config{URL: url, Pool: 1}, "say")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var mu sync.Mutex
	var progress int
	cs := connectOfficial(t, ctx, s.url, "itest-upstream-http", &mcp.ClientOptions{
		ProgressNotificationHandler: func(context.Context, *mcp.ProgressNotificationClientRequest) {
			mu.Lock()
			progress++
			mu.Unlock()
		},
		CreateMessageHandler: func(context.Context, *mcp.CreateMessageRequest) (*mcp.CreateMessageResult, error) {
			return &mcp.CreateMessageResult{Role: "assistant", Model: "m", Content: &mcp.TextContent{Text: "over http"}}, nil
		},
	})
	defer cs.Close()
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "say", Arguments: map[string]any{"msg": "web"}})
	if err != nil || textOf(t, res) != "say: web" {
		t.Fatalf("say: %v %+v", err, res)
	}
	p := &mcp.CallToolParams{Name: "progress", Arguments: map[string]any{}}
	p.SetProgressToken(7)
	if res, err = cs.CallTool(ctx, p); err != nil || textOf(t, res) != "progress done" {
		t.Fatalf("progress: %v %+v", err, res)
	}
	testkit.Eventually(t, "three progress notifications", 10*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return progress == 3
	})
	if res, err = cs.CallTool(ctx, &mcp.CallToolParams{Name: "sample", Arguments: map[string]any{}}); err != nil || textOf(t, res) != "sampled: over http" {
		t.Fatalf("sample: %v %+v", err, res)
	}
	// With another call in flight on the one connection, the sampling
	// request still reaches its own call's client: it came on that
	// call's event stream (over stdio it would be refused as not
	// attributable).
	wctx, stopWait := context.WithCancel(ctx)
	defer stopWait()
	waiting := make(chan struct{})
	other := connectOfficial(t, ctx, s.url, "itest-upstream-http-wait", &mcp.ClientOptions{
		ProgressNotificationHandler: func(context.Context, *mcp.ProgressNotificationClientRequest) { close(waiting) },
	})
	defer other.Close()
	go func() {
		p := &mcp.CallToolParams{Name: "wait", Arguments: map[string]any{}}
		p.SetProgressToken("w")
		_, _ = other.CallTool(wctx, p)
	}()
	select {
	case <-waiting:
	case <-ctx.Done():
		t.Fatal("the wait call never reported progress")
	}
	if res, err = cs.CallTool(ctx, &mcp.CallToolParams{Name: "sample", Arguments: map[string]any{}}); err != nil || textOf(t, res) != "sampled: over http" {
		t.Fatalf("sample with another call in flight: %v %+v", err, res)
	}
	stopWait()
	read, err := cs.ReadResource(ctx, &mcp.ReadResourceParams{URI: "test://static"})
	if err != nil || read.Contents[0].Text != "static content" {
		t.Fatalf("read: %v %+v", err, read)
	}
}

// TestUpstreamNeverInitializesUnready: `mcpstream worker --upstream` with
// a server that never answers initialize keeps running, unready: /readyz
// answers 503 naming the upstream and saying it has not initialized.
func TestUpstreamNeverInitializesUnready(t *testing.T) {
	_, _, natsURL := startDev(t, true, "--examples", "0")
	bin := upstreamBin(t)
	w := start(t, "worker", "worker", "--nats", natsURL, "--log-level", "warn", "--metrics-addr", "127.0.0.1:0",
		"--group", "stuck", "--upstream", bin+" -never-init", "--upstream-init-timeout", "500ms")
	base := strings.TrimSuffix(w.waitLine(metricsRE, 30*time.Second)[1], "/metrics")
	testkit.Eventually(t, "/readyz saying the upstream has not initialized", 20*time.Second, func() bool {
		status, body := probe(t, base+"/readyz")
		return status == http.StatusServiceUnavailable && strings.Contains(body, "has not initialized") &&
			strings.Contains(body, "-never-init") && strings.Contains(body, "no answer within 500ms")
	})
}

// TestUpstreamStatelessPassThrough: a client that speaks 2026-07-28 is
// answered by an upstream that speaks it too (the test server over stdio,
// or over stateless Streamable HTTP) as that client. The upstream's
// input_required result reaches it with the upstream's own inputRequests
// key and requestState (not mcpstream's), and its retry with
// inputResponses and requestState reaches the upstream unchanged; a tool
// that needs sampling gets the upstream's -32021 for a client that did
// not declare it, and runs for one that did (mcpstream declares sampling
// on its session connections, so the upstream judges by the client's own
// _meta); a tool with an argument marked x-mcp-header is served (over
// HTTP through a session connection). A session client calling the same tool over stdio is asked by
// the upstream's SDK with elicitation/create, relayed as before. An
// upstream that does not speak 2026-07-28 (the test server over
// Streamable HTTP with sessions) is reached through a session
// connection: the round is mcpstream's, under its own key and signed
// requestState, and the retry carries the answer.
func TestUpstreamStatelessPassThrough(t *testing.T) {
	for _, tc := range []struct {
		name  string
		flags []string // none: stdio
		// through: the upstream speaks 2026-07-28.
		through bool
	}{
		{"stdio", nil, true},
		{"streamable-stateless", []string{"-http", "127.0.0.1:0", "-stateless"}, true},
		{"streamable-sessions", []string{"-http", "127.0.0.1:0"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newStack(t, gateway.Config{})
			cfg := upstream.Config{Command: []string{upstreamBin(t)}, Pool: 1}
			if tc.flags != nil {
				srv := startProgram(t, "upstreamserver", upstreamBin(t), tc.flags...)
				cfg = upstream.Config{URL: srv.waitLine(regexp.MustCompile(`listening on (http://\S+)`), 30*time.Second)[1], Pool: 1}
			}
			s.runUpstream(t, "up", cfg, "ask_name")
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			stateless := func(opts *mcp.ClientOptions) *mcp.ClientSession {
				opts.MultiRoundTrip = &mcp.MultiRoundTripOptions{Disabled: true} // see each round
				cs, err := mcp.NewClient(&mcp.Implementation{Name: "itest-stateless-upstream", Version: "1"}, opts).
					Connect(ctx, &mcp.StreamableClientTransport{Endpoint: s.url, HTTPClient: &http.Client{}, MaxRetries: -1}, nil)
				if err != nil {
					t.Fatal(err)
				}
				if v := cs.InitializeResult().ProtocolVersion; v != "2026-07-28" {
					t.Fatalf("negotiated %q, want 2026-07-28", v)
				}
				return cs
			}
			cs := stateless(&mcp.ClientOptions{ElicitationHandler: func(context.Context, *mcp.ElicitRequest) (*mcp.ElicitResult, error) {
				return nil, errors.New("not asked: the retry answers")
			}})
			defer cs.Close()

			res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "ask_name", Arguments: map[string]any{}})
			if err != nil || !res.NeedsInput() || len(res.InputRequests) != 1 {
				t.Fatalf("ask_name: %v %+v: want input_required with one request", err, res)
			}
			key := "upstream_name"
			if !tc.through {
				key = "elicitation-create-1" // mcpstream's name for the SDK's elicitation/create
			}
			if _, ok := res.InputRequests[key].(*mcp.ElicitParams); !ok || (res.RequestState == "upstream-state-1") != tc.through {
				t.Fatalf("input_required %v, requestState %q: want key %s, the upstream's state %v", res.InputRequests, res.RequestState, key, tc.through)
			}
			res, err = cs.CallTool(ctx, &mcp.CallToolParams{Name: "ask_name", Arguments: map[string]any{}, RequestState: res.RequestState,
				InputResponses: mcp.InputResponseMap{key: &mcp.ElicitResult{Action: "accept", Content: map[string]any{"name": "ada"}}}})
			if err != nil || res.NeedsInput() || textOf(t, res) != "hello ada (state upstream-state-1)" {
				t.Fatalf("ask_name retried: %v %+v", err, res)
			}
			if !tc.through {
				return
			}

			var rpcErr *jsonrpc.Error
			if res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "need_sampling", Arguments: map[string]any{}}); !errors.As(err, &rpcErr) || rpcErr.Code != -32021 {
				t.Fatalf("need_sampling without sampling: %v %+v: want the upstream's -32021", err, res)
			}
			sampler := stateless(&mcp.ClientOptions{CreateMessageHandler: func(context.Context, *mcp.CreateMessageRequest) (*mcp.CreateMessageResult, error) {
				return nil, errors.New("not asked")
			}})
			defer sampler.Close()
			if res, err := sampler.CallTool(ctx, &mcp.CallToolParams{Name: "need_sampling", Arguments: map[string]any{}}); err != nil || textOf(t, res) != "sampling declared" {
				t.Fatalf("need_sampling with sampling: %v %+v", err, res)
			}
			// An argument marked x-mcp-header: over HTTP the call takes a
			// session connection (the bridge writes no Mcp-Param header,
			// which the server would want). The client mirrors the header
			// for a tool it has listed.
			if _, err := cs.ListTools(ctx, nil); err != nil {
				t.Fatal(err)
			}
			if res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "region", Arguments: map[string]any{"region": "eu"}}); err != nil || textOf(t, res) != "region eu" {
				t.Fatalf("region: %v %+v", err, res)
			}
			if tc.flags != nil {
				return // a stateless HTTP server sends no requests to the client
			}
			session := connectOfficial(t, ctx, s.url, "itest-session-upstream", &mcp.ClientOptions{
				ElicitationHandler: func(context.Context, *mcp.ElicitRequest) (*mcp.ElicitResult, error) {
					return &mcp.ElicitResult{Action: "accept", Content: map[string]any{"name": "grace"}}, nil
				}})
			defer session.Close()
			if res, err := session.CallTool(ctx, &mcp.CallToolParams{Name: "ask_name", Arguments: map[string]any{}}); err != nil || textOf(t, res) != "hello grace (state upstream-state-1)" {
				t.Fatalf("ask_name from a session client: %v %+v", err, res)
			}
		})
	}
}
