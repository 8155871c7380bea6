package gateway

import (
	"encoding/json"
	"net/http"
	"sync"

	"github.com/mcpstream/mcpstream/schema"
)

var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

// respond answers a request with its result (JSON text) or error: HTTP 200
// with one JSON object, or, for a client that accepts only event streams,
// one SSE event.
func respond(w http.ResponseWriter, id schema.ID, result []byte, rpcErr *schema.Error, sse bool) {
	respondWith(w, id, rpcErr, sse, func(b []byte) ([]byte, error) { return append(b, result...), nil })
}

// workerResponse is the JSON-RPC response to a request a worker answered:
// its result (msgpack) as JSON, or rpcErr, or an internal error when the
// result does not expand.
func workerResponse(id schema.ID, result []byte, rpcErr *schema.Error) []byte {
	if rpcErr == nil {
		if b := schema.AppendResultFunc(nil, id, func(dst []byte) ([]byte, error) { return schema.MsgpackToJSON(dst, result) }); b != nil {
			return b
		}
		rpcErr = schema.Errorf(schema.CodeInternalError, "malformed result from worker")
	}
	return schema.AppendError(nil, id, rpcErr)
}

// initializeParams decodes initialize's params; they must name a revision.
func initializeParams(params []byte) (schema.InitializeParams, *schema.Error) {
	var p schema.InitializeParams
	if len(params) == 0 || json.Unmarshal(params, &p) != nil || p.ProtocolVersion == "" {
		return p, schema.Errorf(schema.CodeInvalidParams, "initialize needs params with protocolVersion")
	}
	return p, nil
}

func respondWith(w http.ResponseWriter, id schema.ID, rpcErr *schema.Error, sse bool, result func([]byte) ([]byte, error)) {
	bp := bufPool.Get().(*[]byte)
	b := (*bp)[:0]
	if sse {
		b = append(b, "event: message\ndata: "...)
	}
	start := len(b)
	if rpcErr != nil {
		b = schema.AppendError(b, id, rpcErr)
		noteRPCError(w)
	} else {
		b = schema.AppendResultFunc(b, id, result)
		if b == nil {
			b = schema.AppendError((*bp)[:start], id, schema.Errorf(schema.CodeInternalError, "malformed result from worker"))
			noteRPCError(w)
		}
	}
	h := w.Header()
	if sse {
		b = append(b, "\n\n"...)
		h.Set("Content-Type", "text/event-stream")
		h.Set("Cache-Control", "no-cache")
	} else {
		h.Set("Content-Type", "application/json")
	}
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
	if cap(b) <= 64<<10 {
		*bp = b
		bufPool.Put(bp)
	}
}

// writeError answers with an HTTP error status and a JSON-RPC error body
// (id null when the request's id is unknown).
func writeError(w http.ResponseWriter, status int, id schema.ID, e *schema.Error) {
	writeErrorBody(w, status, schema.AppendError(make([]byte, 0, 128), id, e))
}

// writeErrorBody answers with status and b, an encoded JSON-RPC error.
func writeErrorBody(w http.ResponseWriter, status int, b []byte) {
	noteRPCError(w)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
