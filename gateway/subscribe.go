package gateway

import (
	"context"
	"encoding/json"
	"maps"
	"slices"

	"github.com/mcpstream/mcpstream/schema"
)

// Resource subscriptions are kept in the session's record, so every gateway
// knows them: the gateway holding the session's GET stream may not be the
// one that took the subscribe. Workers announce changed resources in the
// events stream (streams.ResourceEventSubject); each gateway sends
// notifications/resources/updated on the event streams it holds for
// sessions subscribed to the URI.

// Bounds of a session's subscriptions.
const (
	maxSubscriptions = 256
	maxURILength     = 2048
)

// subscribe answers resources/subscribe (on) and resources/unsubscribe.
// Subscribing to a URI no group serves yet is allowed: it may appear.
func (g *Gateway) subscribe(ctx context.Context, sess *session, params []byte, on bool) *schema.Error {
	var p struct {
		URI string `json:"uri"`
	}
	if len(params) == 0 || json.Unmarshal(params, &p) != nil || p.URI == "" {
		return schema.Errorf(schema.CodeInvalidParams, "resources/subscribe and resources/unsubscribe need params with a uri")
	}
	if len(p.URI) > maxURILength {
		return schema.Errorf(schema.CodeInvalidParams, "uri longer than %d bytes", maxURILength)
	}
	return g.sessions.update(ctx, sess, func(rec *sessionRecord) *schema.Error {
		i := slices.Index(rec.Subscriptions, p.URI)
		switch {
		case on && i >= 0, !on && i < 0:
			return nil
		case on && len(rec.Subscriptions) >= maxSubscriptions:
			return schema.Errorf(schema.CodeInvalidParams, "a session may subscribe to at most %d resources", maxSubscriptions)
		case on:
			rec.Subscriptions = append(slices.Clip(rec.Subscriptions), p.URI)
		default:
			rec.Subscriptions = slices.Delete(slices.Clone(rec.Subscriptions), i, i+1)
		}
		return nil
	})
}

// subscriptions are the URIs the session is subscribed to.
func (s *session) subscriptions() []string {
	subs := s.subs.Load()
	if subs == nil {
		return nil
	}
	return slices.Collect(maps.Keys(*subs))
}

// subscribed reports whether the session is subscribed to uri.
func (s *session) subscribed(uri string) bool {
	subs := s.subs.Load()
	if subs == nil {
		return false
	}
	_, ok := (*subs)[uri]
	return ok
}
