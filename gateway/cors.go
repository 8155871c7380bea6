package gateway

import (
	"bytes"
	"net/http"
	"strings"

	"github.com/rs/cors"

	"github.com/mcpstream/mcpstream/schema"
)

// Cross-origin requests. A page in a browser (an MCP client in a web app,
// the MCP Inspector) reaches the gateway only if CORS lets it: a preflight
// before any POST or DELETE carrying the protocol's headers, and response
// headers that let the page read what it got. The origins CORS admits are
// exactly those the DNS-rebinding check admits (loopback ones, and
// Config.AllowedOrigins), so a page on any other origin is still refused
// 403 by that check. Preflights are answered before authentication (the
// gateway's front): browsers never send credentials with them.

// exposedHeaders are the response headers a page may read: the session id
// it must send back, the negotiated revision, a refusal's challenge and
// its retry delay.
var exposedHeaders = []string{schema.HeaderSessionID, schema.HeaderProtocolVersion, "WWW-Authenticate", "Retry-After"}

// newCORS is the CORS policy of a gateway whose origin check is allowed.
// Request headers are allowed whatever their name: the 2026-07-28
// revision's Mcp-Param-* headers are named by each tool's schema.
func newCORS(allowed func(origin string) bool) *cors.Cors {
	return cors.New(cors.Options{
		AllowOriginFunc: allowed,
		AllowedMethods:  []string{http.MethodGet, http.MethodPost, http.MethodDelete},
		AllowedHeaders:  []string{"*"},
		ExposedHeaders:  exposedHeaders,
		MaxAge:          3600,
	})
}

// corsHeaders are the headers the CORS policy may set on an actual request's
// response, in the order they go into a hijacked stream's head.
var corsHeaders = []string{"Access-Control-Allow-Origin", "Access-Control-Expose-Headers", "Vary"}

// withResponseHeaders returns first, a hijacked stream's raw response head
// and first events, with the CORS headers already set on h written into
// the head: a hijacked connection bypasses the ResponseWriter's headers.
func withResponseHeaders(first []byte, h http.Header) []byte {
	if h.Get("Access-Control-Allow-Origin") == "" {
		return first
	}
	end := bytes.Index(first, []byte("\r\n\r\n"))
	if end < 0 {
		return first
	}
	var b bytes.Buffer
	b.Grow(len(first) + 256)
	b.Write(first[:end+2])
	for _, k := range corsHeaders {
		for _, v := range h.Values(k) {
			if strings.ContainsAny(v, "\r\n") { // net/http would drop it too
				continue
			}
			b.WriteString(k)
			b.WriteString(": ")
			b.WriteString(v)
			b.WriteString("\r\n")
		}
	}
	b.Write(first[end+2:])
	return b.Bytes()
}
