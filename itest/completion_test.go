package itest

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// TestCompletion: the official client asks for suggestions for a prompt
// argument and a template variable; the request travels through JetStream
// to the group that registered the prompt or template, whose completer
// answers. Unknown references and malformed params are -32602.
func TestCompletion(t *testing.T) {
	dev, endpoint, _ := startDev(t, false, "--examples", "conformance")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cs := connectOfficial(t, ctx, endpoint, "itest-completion", nil)
	defer cs.Close()
	if cs.InitializeResult().Capabilities.Completions == nil {
		t.Fatal("the completions capability is not announced")
	}
	complete := func(ref *mcp.CompleteReference, arg, value string) ([]string, error) {
		res, err := cs.Complete(ctx, &mcp.CompleteParams{Ref: ref, Argument: mcp.CompleteParamsArgument{Name: arg, Value: value}})
		if err != nil {
			return nil, err
		}
		return res.Completion.Values, nil
	}
	prompt := &mcp.CompleteReference{Type: "ref/prompt", Name: "test_prompt_with_arguments"}
	for _, tc := range []struct {
		ref        *mcp.CompleteReference
		arg, value string
		want       string
	}{
		{prompt, "arg1", "par", "[paris park party]"},
		{prompt, "arg1", "TEST", "[test testing]"},
		{prompt, "arg2", "", "[alpha beta gamma]"},
		{prompt, "arg1", "zzz", "[]"},
		{prompt, "no-such-argument", "", "[]"},
		{&mcp.CompleteReference{Type: "ref/resource", URI: "test://template/{id}/data"}, "id", "12", "[123 124]"},
	} {
		got, err := complete(tc.ref, tc.arg, tc.value)
		if err != nil || fmt.Sprint(got) != tc.want {
			t.Errorf("complete %s %s=%q: %v, %v; want %s", tc.ref.Type, tc.arg, tc.value, got, err, tc.want)
		}
	}
	if _, err := complete(&mcp.CompleteReference{Type: "ref/prompt", Name: "no_such_prompt"}, "a", ""); err == nil || !strings.Contains(err.Error(), "unknown ref/prompt no_such_prompt") {
		t.Errorf("unknown prompt: %v", err)
	}
	if _, err := complete(&mcp.CompleteReference{Type: "ref/resource", URI: "test://static-text"}, "a", ""); err == nil {
		t.Error("a resource that is not a template was completed")
	}
	sid := initSession(t, endpoint)
	for _, params := range []string{`{}`, `{"ref":{"type":"ref/prompt"},"argument":{"name":"a"}}`, `{"ref":{"type":"ref/tool","name":"x"},"argument":{"name":"a"}}`,
		`{"ref":{"type":"ref/prompt","name":"test_prompt_with_arguments"},"argument":{}}`} {
		r := post(t, endpoint, `{"jsonrpc":"2.0","id":9,"method":"completion/complete","params":`+params+`}`, "Mcp-Session-Id", sid)
		if !strings.Contains(string(r.body), `"code":-32602`) {
			t.Errorf("params %s: %s, want -32602", params, r.body)
		}
	}
	dev.stop()
}
