package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"sync/atomic"
)

// rpcHandler is the trivial JSON-RPC handler of the HTTP floor: it reads
// a request's id and method (encoding/json, as a real server must), and
// answers initialize (with a session id), a notification (202) and any
// other request with a canned result of an echo call's size and shape,
// as application/json. It keeps nothing but a counter of sessions. With
// call, a tools/call answers once call returns (500 if it fails): the
// joined part's round trip through JetStream.
func rpcHandler(call func(context.Context) error) http.Handler {
	var sessions atomic.Int64
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			http.Error(w, "POST only", http.StatusMethodNotAllowed)
			return
		}
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		var req struct {
			ID     json.RawMessage `json:"id"`
			Method string          `json:"method"`
		}
		if err := json.Unmarshal(body, &req); err != nil {
			http.Error(w, "parse error", http.StatusBadRequest)
			return
		}
		if req.ID == nil {
			w.WriteHeader(http.StatusAccepted)
			return
		}
		if call != nil && req.Method == "tools/call" {
			if err := call(r.Context()); err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
		}
		result := `{"content":[{"type":"text","text":"hello"}]}`
		if req.Method == "initialize" {
			w.Header().Set("Mcp-Session-Id", "s"+strconv.FormatInt(sessions.Add(1), 10))
			result = `{"protocolVersion":"2025-11-25","capabilities":{"tools":{}},"serverInfo":{"name":"floor","version":"1"}}`
		}
		w.Header().Set("Content-Type", "application/json")
		out := make([]byte, 0, 128)
		out = append(out, `{"jsonrpc":"2.0","id":`...)
		out = append(out, req.ID...)
		out = append(out, `,"result":`...)
		out = append(out, result...)
		out = append(out, '}')
		_, _ = w.Write(out)
	})
}
