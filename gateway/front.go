package gateway

import (
	"mime"
	"net"
	"net/http"
	"net/url"
	"strings"

	"github.com/mcpstream/mcpstream/schema"
)

// front runs a transport's handler behind what every request on every
// transport passes first, in order: the metrics (Config.Metrics) count and
// time it; a browser page's request gets CORS (cors.go), and a preflight
// is answered there; a request from an Origin the DNS-rebinding check does
// not allow is answered 403; and Config.Auth authenticates it
// (authenticate.go). Nothing has read the body yet. What the handler
// writes must be taken by the client within its deadline (armWrite).
func (g *Gateway) front(w http.ResponseWriter, r *http.Request, serve func(http.ResponseWriter, *http.Request)) {
	if g.metrics != nil {
		mw := g.metrics.begin(w, r)
		defer g.metrics.end(mw)
		w = mw
	}
	if r.Header.Get("Origin") != "" {
		g.cors.HandlerFunc(w, r)
		if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
			return // a preflight, answered
		}
	}
	if !g.originAllowed(r.Header.Get("Origin")) {
		writeError(w, http.StatusForbidden, nil, schema.Errorf(schema.CodeInvalidRequest, "origin not allowed"))
		return
	}
	// What the handler leaves buffered is flushed after it returns: a
	// client that does not read has writeTimeout to take it (a hijacked
	// event stream sets a deadline on each of its writes).
	defer g.armWrite(w, 0)
	r, ok := g.authenticate(w, r)
	if !ok {
		return
	}
	serve(w, r)
}

// originAllowed guards against DNS rebinding: no Origin (non-browser
// clients), a loopback Origin, or one configured.
func (g *Gateway) originAllowed(origin string) bool {
	if origin == "" {
		return true
	}
	for _, o := range g.cfg.AllowedOrigins {
		if o == "*" || strings.EqualFold(o, origin) {
			return true
		}
	}
	u, err := url.Parse(origin)
	if err != nil {
		return false
	}
	host := u.Hostname()
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// accepts reports which response types the Accept header allows. A missing
// Accept allows both.
func accepts(r *http.Request) (jsonOK, sseOK bool) {
	vals := r.Header.Values("Accept")
	if len(vals) == 0 {
		return true, true
	}
	for _, v := range vals {
		for v != "" {
			var part string
			part, v, _ = strings.Cut(v, ",")
			switch mediaType(strings.TrimSpace(part)) {
			case "application/json", "application/*":
				jsonOK = true
			case "text/event-stream", "text/*":
				sseOK = true
			case "*/*":
				jsonOK, sseOK = true, true
			}
		}
	}
	return jsonOK, sseOK
}

// mediaType returns the media type of a Content-Type or Accept value,
// lower-cased and without parameters, or "" when it is malformed. The
// common exact values skip the parser, which allocates.
func mediaType(v string) string {
	switch v {
	case "application/json", "text/event-stream":
		return v
	}
	mt, _, err := mime.ParseMediaType(v)
	if err != nil {
		return ""
	}
	return mt
}

// requireJSON answers 415 and returns false unless r's body is JSON.
func requireJSON(w http.ResponseWriter, r *http.Request) bool {
	if mediaType(r.Header.Get("Content-Type")) != "application/json" {
		writeError(w, http.StatusUnsupportedMediaType, nil, schema.Errorf(schema.CodeInvalidRequest, "Content-Type must be application/json"))
		return false
	}
	return true
}

// isBatch reports whether body is a JSON-RPC batch: a valid JSON array.
func isBatch(body []byte) bool {
	for i, c := range body {
		switch c {
		case ' ', '\t', '\r', '\n':
			continue
		case '[':
			return schema.ValidJSON(body[i:])
		}
		return false
	}
	return false
}
