package workers

import (
	"context"
	"encoding/json"

	"github.com/mcpstream/mcpstream/schema"
)

// PromptHandler renders a prompt from its arguments. Return a *schema.Error
// for a protocol error; any other error becomes an internal error.
type PromptHandler func(ctx context.Context, call *Call, args map[string]string) (*schema.PromptResult, error)

type promptEntry struct {
	def      schema.Prompt
	handle   PromptHandler
	complete Completer // nil: no suggestions
	// forward, set for a raw prompt (Group.SetRaw), serves it and its
	// completions instead of handle and complete.
	forward RawHandler
}

// AddPrompt adds a prompt to g. Its required arguments are checked before
// the handler runs (a missing one is answered -32602). AddPrompt panics
// when the name is empty or already taken.
func AddPrompt(g *Group, p schema.Prompt, h PromptHandler) {
	if p.Name == "" {
		panic("workers.AddPrompt: prompt name is required")
	}
	register(g, g.prompts, "prompt", p.Name, &promptEntry{def: p, handle: h})
}

func (g *Group) prompt(name string) *promptEntry {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.prompts[name]
}

// get runs the prompt on arguments given as JSON (an object of strings).
func (p *promptEntry) get(ctx context.Context, call *Call, argsJSON []byte) (*schema.PromptResult, error) {
	args := map[string]string{}
	if len(argsJSON) > 0 {
		if err := json.Unmarshal(argsJSON, &args); err != nil {
			return nil, schema.Errorf(schema.CodeInvalidParams, "prompt arguments must be an object of strings: %v", err)
		}
	}
	for _, a := range p.def.Arguments {
		if _, ok := args[a.Name]; a.Required && !ok {
			return nil, schema.Errorf(schema.CodeInvalidParams, "prompt %s: missing required argument %q", p.def.Name, a.Name)
		}
	}
	return p.handle(ctx, call, args)
}
