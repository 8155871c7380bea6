package workers

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/mcpstream/mcpstream/schema"
)

// Completer suggests values for argument of a prompt or a resource
// template (completion/complete), given the partial value typed so far and
// the arguments already resolved. The result is cut to
// schema.MaxCompletionValues values (HasMore set) if longer. Return a
// *schema.Error for a protocol error.
type Completer func(ctx context.Context, call *Call, argument, value string, resolved map[string]string) (*schema.Completion, error)

// CompletePrompt sets the completer of the arguments of prompt, which must
// already be in g; it panics otherwise. Without one, completion/complete
// for the prompt answers no suggestions.
func CompletePrompt(g *Group, prompt string, c Completer) {
	g.mu.Lock()
	defer g.mu.Unlock()
	p := g.prompts[prompt]
	if p == nil {
		panic(fmt.Sprintf("workers.CompletePrompt: no prompt %q in group %q", prompt, g.name))
	}
	p.complete = c
}

// CompleteTemplate sets the completer of the variables of the resource
// template uriTemplate, which must already be in g; it panics otherwise.
func CompleteTemplate(g *Group, uriTemplate string, c Completer) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, t := range g.templates {
		if t.def.URITemplate == uriTemplate {
			t.complete = c
			return
		}
	}
	panic(fmt.Sprintf("workers.CompleteTemplate: no template %q in group %q", uriTemplate, g.name))
}

// Suggest is a Completer over fixed candidates per argument: the ones that
// start with the value typed, case-insensitively, in the order given.
func Suggest(candidates map[string][]string) Completer {
	return func(_ context.Context, _ *Call, argument, value string, _ map[string]string) (*schema.Completion, error) {
		var out []string
		for _, c := range candidates[argument] {
			if len(c) >= len(value) && strings.EqualFold(c[:len(value)], value) {
				out = append(out, c)
			}
		}
		return &schema.Completion{Values: out, Total: len(out)}, nil
	}
}

// complete serves completion/complete: params is the request's params as
// JSON. A reference to a prompt or template this group does not have is
// -32602; one without a completer has no suggestions.
func (g *Group) complete(ctx context.Context, call *Call, params []byte) (*schema.CompleteResult, error) {
	p, rpcErr := schema.ParseCompleteParams(params)
	if rpcErr != nil {
		return nil, rpcErr
	}
	var c Completer
	found := false
	g.mu.Lock()
	if p.Ref.Type == schema.RefPrompt {
		if e := g.prompts[p.Ref.Name]; e != nil {
			c, found = e.complete, true
		}
	} else if i := slices.IndexFunc(g.templates, func(t *templateEntry) bool { return t.def.URITemplate == p.Ref.URI }); i >= 0 {
		c, found = g.templates[i].complete, true
	}
	g.mu.Unlock()
	if !found {
		return nil, schema.Errorf(schema.CodeInvalidParams, "completion/complete: unknown %s", p.Ref)
	}
	res := &schema.CompleteResult{Completion: schema.Completion{Values: []string{}}}
	if c == nil {
		return res, nil
	}
	var resolved map[string]string
	if p.Context != nil {
		resolved = p.Context.Arguments
	}
	got, err := c(ctx, call, p.Argument.Name, p.Argument.Value, resolved)
	if err != nil || got == nil {
		return res, err
	}
	res.Completion = *got
	if res.Completion.Values == nil {
		res.Completion.Values = []string{}
	}
	if len(res.Completion.Values) > schema.MaxCompletionValues {
		res.Completion.Values, res.Completion.HasMore = res.Completion.Values[:schema.MaxCompletionValues], true
	}
	return res, nil
}
