package gateway

import (
	"encoding/json"
	"net/http"

	"github.com/mcpstream/mcpstream/schema"
)

// A subscriptions/listen request (2026-07-28) opens an event stream on its
// own POST: the first event acknowledges the filter the server honours,
// then come the change notifications the client opted into, each tagged
// with the subscription's id (the request's JSON-RPC id). When the gateway
// drains it answers the request, ending the subscription gracefully. The
// stream is a hijacked connection, like a session's GET stream.

// listenFilter is what a listen stream asked for.
type listenFilter struct {
	id                        schema.ID
	tools, prompts, resources bool
	uris                      map[string]struct{}
}

// change is a notification the open streams may want.
type change struct {
	method string
	uri    string // of a notifications/resources/updated
}

// tell sends c, the event of sequence seq in the events stream, to every
// open stream that wants it.
func (g *Gateway) tell(c change, seq uint64) {
	var ev []byte // a session stream's event
	params := c.params()
	g.eventStreams.each(func(es *eventStream) {
		switch f := es.listen; {
		case f == nil && c.method == schema.NotificationResourceUpdated && !es.sess.subscribed(c.uri):
		case f == nil:
			if ev == nil {
				ev = sessionEvent(c.method, params, seq)
			}
			_ = es.writeSeq(seq, ev)
		case f.wants(c):
			_ = es.writeSeq(seq, f.event(c.method, params))
		}
	})
}

func (f *listenFilter) wants(c change) bool {
	switch c.method {
	case schema.NotificationToolListChanged:
		return f.tools
	case schema.NotificationPromptListChanged:
		return f.prompts
	case schema.NotificationResourceListChanged:
		return f.resources
	case schema.NotificationResourceUpdated:
		_, ok := f.uris[c.uri]
		return ok
	}
	return false
}

// event formats a notification for this subscription: params (a JSON
// object or nil) with the subscription id in _meta.
func (f *listenFilter) event(method string, params []byte) []byte {
	b := append([]byte("event: message\ndata: "), `{"jsonrpc":"2.0","method":`...)
	m, _ := json.Marshal(method)
	b = append(append(b, m...), `,"params":{"_meta":{"`+schema.MetaSubscriptionID+`":`...)
	b = append(append(b, f.id...), '}')
	if len(params) > 2 { // the members of params, after _meta
		b = append(append(b, ','), params[1:len(params)-1]...)
	}
	return append(b, "}}\n\n"...)
}

// end closes the stream; a listen stream is first answered, which ends its
// subscription gracefully.
func (s *eventStream) end() {
	if f := s.listen; f != nil {
		b := append([]byte("event: message\ndata: "), schema.AppendResult(nil, f.id,
			[]byte(`{"resultType":"complete","_meta":{"`+schema.MetaSubscriptionID+`":`+string(f.id)+`}}`))...)
		_ = s.write(append(b, "\n\n"...))
	}
	s.close()
}

// Bounds of a listen request.
const maxListenURIs = 256

// listen serves subscriptions/listen: the stream takes over the request's
// connection.
func (g *Gateway) listen(x *exchange) {
	msg := x.msg
	var p struct {
		Notifications struct {
			ToolsListChanged      bool     `json:"toolsListChanged,omitempty"`
			PromptsListChanged    bool     `json:"promptsListChanged,omitempty"`
			ResourcesListChanged  bool     `json:"resourcesListChanged,omitempty"`
			ResourceSubscriptions []string `json:"resourceSubscriptions,omitempty"`
		} `json:"notifications"`
	}
	if err := json.Unmarshal(msg.Params, &p); err != nil {
		x.out.fail(http.StatusBadRequest, schema.Errorf(schema.CodeInvalidParams, "subscriptions/listen params: %v", err))
		return
	}
	n := p.Notifications
	if len(n.ResourceSubscriptions) > maxListenURIs {
		x.out.fail(http.StatusBadRequest, schema.Errorf(schema.CodeInvalidParams, "at most %d resource subscriptions per stream", maxListenURIs))
		return
	}
	if _, sseOK := accepts(x.r); !sseOK || x.w == nil {
		x.out.fail(http.StatusNotAcceptable, schema.Errorf(schema.CodeInvalidRequest, "subscriptions/listen answers with an event stream: Accept must allow text/event-stream"))
		return
	}
	if g.streamsFull() {
		x.out.fail(http.StatusServiceUnavailable, g.overloaded(refusedStreamLimit))
		return
	}
	f := &listenFilter{id: msg.ID, tools: n.ToolsListChanged, prompts: n.PromptsListChanged, resources: n.ResourcesListChanged,
		uris: make(map[string]struct{}, len(n.ResourceSubscriptions))}
	for _, u := range n.ResourceSubscriptions {
		if u == "" || len(u) > maxURILength {
			x.out.fail(http.StatusBadRequest, schema.Errorf(schema.CodeInvalidParams, "resource subscription URIs must be 1 to %d bytes", maxURILength))
			return
		}
		f.uris[u] = struct{}{}
	}
	honoured, _ := json.Marshal(map[string]any{"notifications": n})
	first := append(sseHead, f.event(schema.NotificationSubscriptionsAck, honoured)...)
	es := &eventStream{sess: &session{}, listen: f}
	if !g.hijack(x.w, x.r, es, first, func() {}, func() {}) {
		x.out.fail(http.StatusHTTPVersionNotSupported, schema.Errorf(schema.CodeInvalidRequest, "subscriptions/listen needs an HTTP/1.1 connection"))
	}
}
