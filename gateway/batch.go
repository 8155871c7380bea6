package gateway

import (
	"context"
	"net/http"
	"sync"
	"time"

	"github.com/mcpstream/mcpstream/schema"
)

// postBatch serves a JSON-RPC batch, which only revision 2025-03-26
// allows: every message goes to dispatch (runBatch), the requests
// BatchConcurrency at a time (an initialize may not be one of them), and
// the responses come back as one JSON array in the order of the requests
// (or as one SSE event holding it, for a client that accepts only event
// streams). The array is written as it grows: a response goes out once
// those before it have, and until then it keeps its request's slot, so
// that one POST holds at most BatchConcurrency answers in memory however
// large they are. A batch of only notifications and responses gets 202; a
// batch of more than MaxBatch messages is refused whole (batchTooLarge),
// and a draining gateway refuses the whole batch with 503, for the client
// to send it elsewhere.
func (g *Gateway) postBatch(w http.ResponseWriter, r *http.Request, body []byte, sseOnly bool) {
	if !sessionVersionOK(w, r, nil) {
		return
	}
	sess, ok := g.requireSession(w, r, nil)
	if !ok {
		return
	}
	if !schema.AllowsBatches(sess.revision()) {
		writeError(w, http.StatusBadRequest, nil, schema.Errorf(schema.CodeInvalidRequest,
			"%v (revision %s; only %s allows them)", schema.ErrBatch, sess.revision(), schema.Revision20250326))
		return
	}
	parts, rpcErr := schema.SplitBatch(body)
	if rpcErr != nil {
		writeError(w, http.StatusBadRequest, nil, rpcErr)
		return
	}
	if g.batchTooLarge(w, len(parts)) {
		return
	}
	// Counted as a whole, before the check: a draining gateway either
	// refuses the batch or serves every request of it (admitted) and
	// waits until its answer is written.
	g.calls.add()
	defer g.calls.done()
	if g.draining() {
		writeError(w, http.StatusServiceUnavailable, nil, g.overloaded(refusedDraining))
		return
	}
	responses := make([][]byte, len(parts)) // nil where nothing is answered
	xs := make([]*exchange, 0, len(parts))
	at := make([]int, 0, len(parts)) // the part of each of xs
	for i, part := range parts {
		msg, rpcErr := schema.DecodeMessage(part)
		switch {
		case rpcErr != nil:
			responses[i] = schema.AppendError(nil, nil, rpcErr)
			continue
		case msg.Kind() == schema.KindRequest && msg.Method == schema.MethodInitialize:
			responses[i] = schema.AppendError(nil, msg.ID, schema.Errorf(schema.CodeInvalidRequest, "initialize must not be part of a batch"))
			continue
		}
		xs = append(xs, &exchange{msg: msg, raw: part, sess: sess, r: r, out: &batchReplier{g: g, id: msg.ID, slot: &responses[i]}, admitted: true})
		at = append(at, i)
	}
	out := &batchWriter{g: g, w: w, sseOnly: sseOnly}
	next := 0 // the first part not written yet
	g.runBatch(r.Context(), xs, 0, func(i int) {
		for ; next <= at[i]; next++ {
			out.add(responses[next])
			responses[next] = nil
		}
	})
	for ; next < len(responses); next++ {
		out.add(responses[next])
	}
	out.end()
}

// batchWriter writes the response to a batch as its answers come: the
// status and headers with the first, then each answer into the array (or
// into the one SSE event that holds it), each write under a deadline of
// its own.
type batchWriter struct {
	g       *Gateway
	w       http.ResponseWriter
	sseOnly bool
	// n counts the answers written.
	n int
}

// add writes answer b, if there is one.
func (o *batchWriter) add(b []byte) {
	if b == nil {
		return
	}
	sep := ","
	if o.n == 0 {
		sep = "["
		if o.sseOnly {
			setSSEHeaders(o.w.Header())
			sep = sseEvent + sep
		} else {
			setJSONContentType(o.w.Header())
		}
		o.w.WriteHeader(http.StatusOK)
	}
	o.n++
	o.g.armWrite(o.w, len(sep)+len(b))
	_, _ = o.w.Write([]byte(sep))
	_, _ = o.w.Write(b)
}

// end closes the array; a batch that had nothing to answer gets 202.
func (o *batchWriter) end() {
	if o.n == 0 {
		o.w.WriteHeader(http.StatusAccepted)
		return
	}
	end := "]"
	if o.sseOnly {
		end = "]\n\n"
	}
	o.g.armWrite(o.w, len(end))
	_, _ = o.w.Write([]byte(end))
}

// batchTooLarge refuses a batch of more than MaxBatch messages, on either
// transport, before any of it runs: HTTP 400 with -32600 (id null), as for
// the other batches that are not valid requests as a whole. Not 413: the
// body is within MaxBody, which owns that status; it is the number of
// messages that is refused, and the client may send them in smaller
// batches.
func (g *Gateway) batchTooLarge(w http.ResponseWriter, n int) bool {
	if n <= g.cfg.MaxBatch {
		return false
	}
	writeError(w, http.StatusBadRequest, nil, schema.Errorf(schema.CodeInvalidRequest,
		"a batch of %d messages; this server serves at most %d in one batch: send them in smaller batches", n, g.cfg.MaxBatch))
	return true
}

// runBatch dispatches the messages of one batch, on either transport, and
// returns when every one is done: a notification or response at once, in
// its place, and the requests in goroutines of their own, at most
// BatchConcurrency at once (the next waits for a slot, and the messages
// after it with it), so that one POST holds a bounded number of
// goroutines and calls. A positive timeout bounds each request. A lone
// message is served in the caller's goroutine.
//
// With written non-nil, runBatch calls it for each message in the order
// of xs, once that message is done, and a request keeps its slot until
// written has returned for it: answers wait in their slots to be written
// in order, and no more of them than BatchConcurrency.
func (g *Gateway) runBatch(ctx context.Context, xs []*exchange, timeout time.Duration, written func(i int)) {
	serve := func(x *exchange) {
		ctx := ctx
		if timeout > 0 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, timeout)
			defer cancel()
		}
		g.dispatch(ctx, x)
	}
	if len(xs) == 1 {
		serve(xs[0])
		if written != nil {
			written(0)
		}
		return
	}
	slots := make(chan struct{}, g.cfg.BatchConcurrency)
	var wg sync.WaitGroup
	var done []chan struct{} // closed as each message is done, for written
	if written != nil {
		done = make([]chan struct{}, len(xs))
		for i := range done {
			done[i] = make(chan struct{})
		}
		wg.Go(func() {
			for i, x := range xs {
				<-done[i]
				written(i)
				if x.msg.Kind() == schema.KindRequest {
					<-slots
				}
			}
		})
	}
	finished := func(i int) {
		if done != nil {
			close(done[i])
		}
	}
	for i, x := range xs {
		if x.msg.Kind() != schema.KindRequest {
			g.dispatch(ctx, x)
			finished(i)
			continue
		}
		slots <- struct{}{}
		wg.Go(func() {
			serve(x)
			if done == nil {
				<-slots
			}
			finished(i)
		})
	}
	wg.Wait()
}

// batchReplier answers one message of a batch into its slot of the
// batch's response. A call in a batch has no event stream: a worker's
// notifications are dropped, and its requests to the client refused.
type batchReplier struct {
	g    *Gateway
	id   schema.ID
	slot *[]byte
}

func (b *batchReplier) result(body resultBody) {
	if *b.slot = schema.AppendResultFunc(nil, b.id, body.appendTo); *b.slot == nil {
		b.fail(0, errMalformedResult)
	}
}

func (b *batchReplier) fail(_ int, e *schema.Error) { *b.slot = schema.AppendError(nil, b.id, e) }

func (b *batchReplier) note(rep *schema.Reply) {
	if rep.Kind == schema.ReplyRequest {
		b.g.refuseClientRequest(rep, schema.Errorf(schema.CodeInternalError,
			"%s: a call in a JSON-RPC batch has no event stream to send it on", rep.Method))
	}
}

func (b *batchReplier) accepted() {}
