package workers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/mcpstream/mcpstream/schema"
	"github.com/mcpstream/mcpstream/streams"
)

// RawRequest is a request served by a [RawHandler], as the client sent
// it, in JSON.
type RawRequest struct {
	// Method is tools/call, prompts/get, resources/read or
	// completion/complete.
	Method string
	// Name is the tool's or prompt's name as registered, the URI read
	// (resources/read), or the name of the prompt or the URI template
	// whose argument is completed (completion/complete).
	Name string
	// Params is, for tools/call and prompts/get, the arguments (an
	// object; nil when the client sent none); nil for resources/read; the
	// whole params of completion/complete.
	Params json.RawMessage
	// InputResponses and RequestState are what a client of the stateless
	// revision (Call.Revision 2026-07-28) sent with the retry of a
	// tools/call, prompts/get or resources/read answered input_required:
	// its answers (a JSON object; nil for none) and the requestState it
	// echoes ("" for none), as it sent them. A handler that forwards the
	// request to a server speaking that revision passes them on, and the
	// server's own input_required result back as it is. The runtime checks
	// a raw request's requestState only when the handler asks the client
	// itself ([Call.Ask], [Call.Request]): one it did not sign is then
	// refused (-32602).
	InputResponses json.RawMessage
	RequestState   string
}

// rawRequest is the RawRequest of env, whose params are args (JSON) and
// whose target is name.
func rawRequest(env *schema.Envelope, name string, args []byte) RawRequest {
	req := RawRequest{Method: env.Method, Name: name, Params: args, RequestState: env.RequestState}
	if len(env.InputResponses) > 0 {
		if js, err := schema.MsgpackToJSON(nil, env.InputResponses); err == nil {
			req.InputResponses = js
		}
	}
	return req
}

// rawTarget reports whether env's target is a raw definition (see
// [Group.SetRaw]).
func (g *Group) rawTarget(env *schema.Envelope) bool {
	switch env.Method {
	case schema.MethodToolsCall:
		t := g.tool(env.Name)
		return t != nil && t.forward != nil
	case schema.MethodPromptsGet:
		p := g.prompt(env.Name)
		return p != nil && p.forward != nil
	case schema.MethodResourcesRead:
		return g.rawReader(env.Name) != nil
	}
	return false
}

// RawHandler serves the requests of raw definitions (see [Group.SetRaw])
// on JSON: its result, a JSON object, is sent to the client as it is,
// unknown members kept. Return a *schema.Error for a protocol error; any
// other error is answered as an internal error naming the request.
type RawHandler func(ctx context.Context, call *Call, req RawRequest) (json.RawMessage, error)

// RawDefinitions are definitions given as they are published, served by
// one handler: what a group that forwards to another MCP server (package
// workers/upstream) registers. Tools keep their input and output schemas,
// annotations and execution as given: arguments are not validated here
// (the handler's server does it), a tool's readOnlyHint or idempotentHint
// makes its calls run again on redelivery instead of their results being
// stored (schema.Idempotent), and a tool whose execution declares task
// support may be called as a task ([Call.Detach] from the handler).
type RawDefinitions struct {
	Tools     []schema.Tool
	Prompts   []schema.Prompt
	Resources []schema.Resource
	Templates []schema.ResourceTemplate
	// Handler serves them all.
	Handler RawHandler
}

// SetRaw replaces g's raw definitions with d: what d has that g had not
// is added, what changed is replaced, and raw definitions d no longer has
// are removed, their registry entries deleted (when the entry is still
// this group's). A running group registers the change at once, as it does
// additions; the gateways tell their clients that the lists changed. The
// typed entries (AddTool and the others) are left alone.
//
// A raw definition is registered only where no other group's entry is: a
// name (a URI for resources and templates) that another group registered
// is refused, with an error logged naming both groups, never taken over.
//
// SetRaw returns an error, and changes nothing, when d has no handler, an
// empty or repeated name, or a name one of g's typed entries has.
func (g *Group) SetRaw(d RawDefinitions) error {
	if d.Handler == nil {
		return fmt.Errorf("group %s: raw definitions without a handler", g.name)
	}
	if err := checkRaw(d); err != nil {
		return fmt.Errorf("group %s: %w", g.name, err)
	}
	defer g.touch()
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, t := range d.Tools {
		if e := g.tools[t.Name]; e != nil && e.forward == nil {
			return fmt.Errorf("group %s: raw tool %q: a typed tool has the name", g.name, t.Name)
		}
	}
	for _, p := range d.Prompts {
		if e := g.prompts[p.Name]; e != nil && e.forward == nil {
			return fmt.Errorf("group %s: raw prompt %q: a typed prompt has the name", g.name, p.Name)
		}
	}
	for _, r := range d.Resources {
		if e := g.resources[r.URI]; e != nil && e.forward == nil {
			return fmt.Errorf("group %s: raw resource %q: a typed resource has the URI", g.name, r.URI)
		}
	}
	for _, t := range d.Templates {
		if slices.ContainsFunc(g.templates, func(e *templateEntry) bool { return e.forward == nil && e.def.URITemplate == t.URITemplate }) {
			return fmt.Errorf("group %s: raw template %q: a typed template has it", g.name, t.URITemplate)
		}
	}
	h := d.Handler
	keep := map[string]bool{}
	for _, t := range d.Tools {
		keep[streams.ToolKey(t.Name)] = true
		g.tools[t.Name] = &toolEntry{def: t, forward: h, idempotent: schema.Idempotent(schema.MethodToolsCall, &t),
			taskSupport: t.TaskSupport()}
	}
	for _, p := range d.Prompts {
		keep[streams.PromptKey(p.Name)] = true
		g.prompts[p.Name] = &promptEntry{def: p, forward: h}
	}
	for _, r := range d.Resources {
		keep[streams.ResourceKey(r.URI)] = true
		g.resources[r.URI] = &resourceEntry{def: r, forward: h}
	}
	templates := g.templates[:0:0]
	for _, t := range g.templates {
		if t.forward == nil {
			templates = append(templates, t)
		} else if !slices.ContainsFunc(d.Templates, func(n schema.ResourceTemplate) bool { return n.URITemplate == t.def.URITemplate }) {
			g.removed = append(g.removed, streams.TemplateKey(t.def.URITemplate))
		}
	}
	for _, t := range d.Templates {
		templates = append(templates, &templateEntry{def: t, forward: h})
	}
	g.templates = templates
	for name, e := range g.tools {
		if k := streams.ToolKey(name); e.forward != nil && !keep[k] {
			delete(g.tools, name)
			g.removed = append(g.removed, k)
		}
	}
	for name, e := range g.prompts {
		if k := streams.PromptKey(name); e.forward != nil && !keep[k] {
			delete(g.prompts, name)
			g.removed = append(g.removed, k)
		}
	}
	for uri, e := range g.resources {
		if k := streams.ResourceKey(uri); e.forward != nil && !keep[k] {
			delete(g.resources, uri)
			g.removed = append(g.removed, k)
		}
	}
	return nil
}

// checkRaw refuses empty and repeated names in d.
func checkRaw(d RawDefinitions) error {
	seen := map[string]bool{}
	check := func(kind, name string) error {
		if name == "" {
			return fmt.Errorf("raw %s without a name", kind)
		}
		if seen[kind+"\x00"+name] {
			return fmt.Errorf("raw %s %q given twice", kind, name)
		}
		seen[kind+"\x00"+name] = true
		return nil
	}
	var errs []error
	for _, t := range d.Tools {
		errs = append(errs, check("tool", t.Name))
	}
	for _, p := range d.Prompts {
		errs = append(errs, check("prompt", p.Name))
	}
	for _, r := range d.Resources {
		errs = append(errs, check("resource", r.URI))
	}
	for _, t := range d.Templates {
		errs = append(errs, check("template", t.URITemplate))
	}
	return errors.Join(errs...)
}

// takeRemoved returns, and forgets, the registry keys of the raw
// definitions SetRaw removed.
func (g *Group) takeRemoved() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := g.removed
	g.removed = nil
	return out
}

// rawReader is the raw handler reading uri: a raw resource with that URI,
// else the first template that matches it, if raw; nil otherwise.
func (g *Group) rawReader(uri string) RawHandler {
	g.mu.Lock()
	defer g.mu.Unlock()
	if res := g.resources[uri]; res != nil {
		return res.forward
	}
	for _, t := range g.templates {
		if _, ok := schema.MatchTemplate(t.def.URITemplate, uri); ok {
			return t.forward
		}
	}
	return nil
}

// rawCompleter is the raw handler of the prompt or template a
// completion/complete's params name, if raw; nil otherwise (also for
// params that do not parse: the typed path answers those).
func (g *Group) rawCompleter(params []byte) (RawHandler, string) {
	p, rpcErr := schema.ParseCompleteParams(params)
	if rpcErr != nil {
		return nil, ""
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if p.Ref.Type == schema.RefPrompt {
		if e := g.prompts[p.Ref.Name]; e != nil {
			return e.forward, p.Ref.Name
		}
		return nil, ""
	}
	for _, t := range g.templates {
		if t.def.URITemplate == p.Ref.URI {
			return t.forward, p.Ref.URI
		}
	}
	return nil, ""
}

// runRaw runs h on req and compacts its JSON result for the reply.
func runRaw(ctx context.Context, call *Call, h RawHandler, req RawRequest) ([]byte, error) {
	res, err := h(ctx, call, req)
	if err != nil {
		return nil, err
	}
	if len(res) == 0 {
		res = json.RawMessage("{}")
	}
	out, err := schema.JSONToMsgpack(nil, res)
	if err != nil {
		return nil, schema.Errorf(schema.CodeInternalError, "%s %s: the result is not JSON: %v", req.Method, req.Name, err)
	}
	return out, nil
}
