package gateway

import (
	"net/http"
	"strings"
	"sync"

	"github.com/mcpstream/mcpstream/schema"
)

// postBatch serves a JSON-RPC batch, which only revision 2025-03-26
// allows: the requests run at once (tools/call on the workers), the
// notifications are handled, and the responses come back as one JSON array
// in the order of the requests (or as one SSE event holding it, for a
// client that accepts only event streams). A batch of only notifications
// and responses gets 202.
func (g *Gateway) postBatch(w http.ResponseWriter, r *http.Request, body []byte, sseOnly bool) {
	sess, ok := g.requireSession(w, r, nil)
	if !ok {
		return
	}
	if !schema.AllowsBatches(sess.Revision) {
		writeError(w, http.StatusBadRequest, nil, schema.Errorf(schema.CodeInvalidRequest,
			"%v (revision %s; only %s allows them)", schema.ErrBatch, sess.Revision, schema.Revision20250326))
		return
	}
	parts, err := schema.SplitBatch(body)
	if err != nil {
		writeError(w, http.StatusBadRequest, nil, err)
		return
	}
	if g.refuseDraining(w, nil) {
		return
	}
	responses := make([][]byte, len(parts)) // nil where nothing is answered
	var wg sync.WaitGroup
	for i, part := range parts {
		msg, err := schema.DecodeMessage(part)
		if err != nil {
			responses[i] = schema.AppendError(nil, nil, err)
			continue
		}
		switch {
		case msg.Kind() != schema.KindRequest:
			g.notified(sess, msg, part)
		case msg.Method == schema.MethodInitialize:
			responses[i] = schema.AppendError(nil, msg.ID, schema.Errorf(schema.CodeInvalidRequest, "initialize must not be part of a batch"))
		case routedToWorkers(msg.Method):
			wg.Go(func() {
				result, rpcErr, _ := g.callTool(r.Context(), sess, msg, nil)
				responses[i] = workerResponse(msg.ID, result, rpcErr)
			})
		default:
			wg.Go(func() {
				result, rpcErr := g.answer(r.Context(), sess, msg)
				if rpcErr != nil {
					responses[i] = schema.AppendError(nil, msg.ID, rpcErr)
				} else {
					responses[i] = schema.AppendResult(nil, msg.ID, result)
				}
			})
		}
	}
	wg.Wait()
	var out []string
	for _, b := range responses {
		if b != nil {
			out = append(out, string(b))
		}
	}
	if len(out) == 0 {
		w.WriteHeader(http.StatusAccepted)
		return
	}
	array := "[" + strings.Join(out, ",") + "]"
	if sseOnly {
		w.Header().Set("Content-Type", "text/event-stream")
		w.Header().Set("Cache-Control", "no-cache")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write([]byte("event: message\ndata: " + array + "\n\n"))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write([]byte(array))
}
