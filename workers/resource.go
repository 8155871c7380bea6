package workers

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"

	"github.com/nats-io/nats.go"

	"github.com/mcpstream/mcpstream/schema"
	"github.com/mcpstream/mcpstream/streams"
)

// ResourceHandler reads a resource. uri is the URI asked for; vars holds
// the values a template matched (nil for a plain resource). Return a
// *schema.Error for a protocol error.
type ResourceHandler func(ctx context.Context, call *Call, uri string, vars map[string]string) ([]schema.ResourceContents, error)

type resourceEntry struct {
	def    schema.Resource
	handle ResourceHandler
	// forward, set for a raw resource (Group.SetRaw), reads it instead of
	// handle.
	forward RawHandler
}

type templateEntry struct {
	def      schema.ResourceTemplate
	handle   ResourceHandler
	complete Completer // nil: no suggestions
	// forward, set for a raw template (Group.SetRaw), reads and completes
	// it instead of handle and complete.
	forward RawHandler
}

// AddResource adds a resource with a fixed URI to g. It panics when the URI
// is empty or already taken.
func AddResource(g *Group, r schema.Resource, h ResourceHandler) {
	if r.URI == "" {
		panic("workers.AddResource: resource URI is required")
	}
	register(g, g.resources, "resource", r.URI, &resourceEntry{def: r, handle: h})
}

// AddResourceTemplate adds a resource template to g: resources/read of any
// URI it matches (see schema.MatchTemplate) runs h. It panics when the
// template is empty or already taken.
func AddResourceTemplate(g *Group, t schema.ResourceTemplate, h ResourceHandler) {
	if t.URITemplate == "" {
		panic("workers.AddResourceTemplate: URI template is required")
	}
	defer g.touch()
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, old := range g.templates {
		if old.def.URITemplate == t.URITemplate {
			panic(fmt.Sprintf("workers: template %q added twice to group %q", t.URITemplate, g.name))
		}
	}
	g.templates = append(g.templates, &templateEntry{def: t, handle: h})
}

// read serves resources/read of uri: a resource with that URI, else the
// first template that matches it. It returns a -32002 error for neither.
func (g *Group) read(ctx context.Context, call *Call, uri string) ([]schema.ResourceContents, error) {
	g.mu.Lock()
	res := g.resources[uri]
	templates := g.templates
	g.mu.Unlock()
	if res != nil {
		return res.handle(ctx, call, uri, nil)
	}
	for _, t := range templates {
		if vars, ok := schema.MatchTemplate(t.def.URITemplate, uri); ok {
			return t.handle(ctx, call, uri, vars)
		}
	}
	return nil, &schema.Error{Code: schema.CodeResourceNotFound, Message: "Resource not found",
		Data: json.RawMessage(fmt.Sprintf(`{"uri":%q}`, uri))}
}

// versioned stamps a registry record with a version: a hash of its content.
func versioned(v any, setVersion func(string)) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	sum := sha256.Sum256(b)
	setVersion(hex.EncodeToString(sum[:8]))
	return nil
}

// ResourceUpdated tells every gateway that the resource at uri changed: the
// announcement goes into the events stream, from which each gateway sends
// notifications/resources/updated to the subscribed sessions whose stream it
// holds (and a session resuming its stream gets it too). Use it from code
// that changes a resource outside a handler; a handler can call
// [Call.ResourceUpdated]. It returns an error only when the announcement
// cannot be published.
func ResourceUpdated(nc *nats.Conn, uri string) error {
	if err := nc.Publish(streams.ResourceEventSubject(uri), []byte(uri)); err != nil {
		return fmt.Errorf("announcing an update of %s: %w", uri, err)
	}
	return nil
}
