package upstream

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/mcpstream/mcpstream/schema"
	"github.com/mcpstream/mcpstream/workers"
)

// nameMap maps the names the group registered to the upstream's.
type nameMap struct {
	tools   map[string]toolInfo
	prompts map[string]string
}

// toolInfo is what forwarding a tool's calls needs.
type toolInfo struct {
	upstream string
	// idempotent: readOnlyHint or idempotentHint (schema.Idempotent); a
	// call lost with its connection is sent again.
	idempotent bool
	// tasks: the tool declares task support; a call may become a task.
	tasks bool
	// headers: the tool's input schema marks arguments with
	// x-mcp-header, which the 2026-07-28 revision mirrors into HTTP
	// headers; the bridge does not write them, so over HTTP a stateless
	// client's call of the tool takes a session connection.
	headers bool
}

// Bounds of what one sync reads: pages per list, and items in all.
const (
	maxPages = 100
	maxItems = 10000
)

// sync lists the upstream's tools, prompts, resources and templates on
// k (each list its capabilities declare, every page), names them, and
// sets them as the group's raw definitions; what another group has is
// left out and logged.
func (h *Host) sync(ctx context.Context, k *conn, reg jetstream.KeyValue) error {
	caps := k.result.Capabilities
	var tools []schema.Tool
	var prompts []schema.Prompt
	var resources []schema.Resource
	var templates []schema.ResourceTemplate
	if caps.Tools != nil {
		if err := listAll(ctx, k, "tools/list", "tools", &tools); err != nil {
			return err
		}
	}
	if caps.Prompts != nil {
		if err := listAll(ctx, k, "prompts/list", "prompts", &prompts); err != nil {
			return err
		}
	}
	if caps.Resources != nil {
		if err := listAll(ctx, k, "resources/list", "resources", &resources); err != nil {
			return err
		}
		if err := listAll(ctx, k, "resources/templates/list", "resourceTemplates", &templates); err != nil {
			return err
		}
	}
	taken, err := takenNames(ctx, reg, h.g.Name())
	if err != nil {
		return err
	}
	n := &nameMap{tools: map[string]toolInfo{}, prompts: map[string]string{}}
	d := workers.RawDefinitions{Handler: h.handle}
	var refused []refusal
	for _, t := range tools {
		if !h.naming.wanted(t.Name) {
			continue
		}
		name, holder, ok := h.naming.name(t.Name, taken["tool"])
		if !ok {
			refused = append(refused, refusal{"tool", name, holder})
			continue
		}
		if _, dup := n.tools[name]; dup || len(name) > maxNameLength {
			refused = append(refused, refusal{"tool", name, "(a repeated or overlong name)"})
			continue
		}
		n.tools[name] = toolInfo{upstream: t.Name, idempotent: schema.Idempotent(schema.MethodToolsCall, &t), tasks: t.TaskSupport() != "",
			headers: bytes.Contains(t.InputSchema, []byte("x-mcp-header"))}
		t.Name = name
		if len(t.InputSchema) == 0 {
			t.InputSchema = json.RawMessage(`{"type":"object"}`)
		}
		d.Tools = append(d.Tools, t)
	}
	for _, p := range prompts {
		if !h.naming.wanted(p.Name) {
			continue
		}
		name, holder, ok := h.naming.name(p.Name, taken["prompt"])
		if _, dup := n.prompts[name]; !ok || dup {
			refused = append(refused, refusal{"prompt", name, holder})
			continue
		}
		n.prompts[name] = p.Name
		p.Name = name
		d.Prompts = append(d.Prompts, p)
	}
	// Resources and templates keep their URIs: a URI is an address
	// clients hold, and resources/read routes by it.
	for _, r := range resources {
		if g := taken["resource"][r.URI]; g != "" || slices.ContainsFunc(d.Resources, func(o schema.Resource) bool { return o.URI == r.URI }) {
			refused = append(refused, refusal{"resource", r.URI, g})
			continue
		}
		d.Resources = append(d.Resources, r)
	}
	for _, t := range templates {
		if g := taken["template"][t.URITemplate]; g != "" || slices.ContainsFunc(d.Templates, func(o schema.ResourceTemplate) bool { return o.URITemplate == t.URITemplate }) {
			refused = append(refused, refusal{"template", t.URITemplate, g})
			continue
		}
		d.Templates = append(d.Templates, t)
	}
	// The names first: a call that comes as soon as the registry has the
	// new name finds it.
	h.names.Store(n)
	if err := h.g.SetRaw(d); err != nil {
		return err
	}
	for _, r := range refused {
		h.log.Error("not registered: "+r.String()+"; names are unique across groups (choose --upstream-prefix always or conditional, or filter it out with --upstream-exclude)",
			"kind", r.Kind, "name", r.Name, "servedBy", r.Group)
	}
	h.mu.Lock()
	h.refused = refused
	h.mu.Unlock()
	h.log.Info("upstream definitions registered", "tools", len(d.Tools), "prompts", len(d.Prompts),
		"resources", len(d.Resources), "templates", len(d.Templates), "refused", len(refused))
	return nil
}

// listAll reads every page of a list method into out (a pointer to a
// slice), following nextCursor, within maxPages and maxItems.
func listAll[T any](ctx context.Context, k *conn, method, member string, out *[]T) error {
	var cursor string
	for range maxPages {
		params, _ := json.Marshal(struct {
			Cursor string          `json:"cursor,omitempty"`
			Meta   json.RawMessage `json:"_meta,omitempty"`
		}{cursor, k.meta})
		res, err := k.roundTrip(ctx, method, params, nil)
		if err != nil {
			return fmt.Errorf("%s: %w", method, err)
		}
		var page map[string]json.RawMessage
		if err := json.Unmarshal(res, &page); err != nil {
			return fmt.Errorf("%s: decoding the result: %w", method, err)
		}
		var items []T
		if raw := page[member]; len(raw) > 0 {
			if err := json.Unmarshal(raw, &items); err != nil {
				return fmt.Errorf("%s: decoding %s: %w", method, member, err)
			}
		}
		*out = append(*out, items...)
		if len(*out) > maxItems {
			return fmt.Errorf("%s: more than %d items", method, maxItems)
		}
		cursor = ""
		_ = json.Unmarshal(page["nextCursor"], &cursor)
		if cursor == "" {
			return nil
		}
	}
	return fmt.Errorf("%s: more than %d pages", method, maxPages)
}
