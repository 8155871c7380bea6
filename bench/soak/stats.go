package main

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

	"github.com/mcpstream/mcpstream/bench"
)

// Outcome classes of a call.
const (
	classOK       = "ok"
	classRefused  = "refused"  // an explicit overload answer: 503, 429, -32000
	classFailed   = "failed"   // an answer that is an error (HTTP status, JSON-RPC error, tool error, bad response)
	classLost     = "lost"     // no answer: timeout, connection dropped by the server, canceled by nobody
	classCut      = "cut"      // this driver closed the connection mid-call on purpose (an abrupt client)
	classOverflow = "overflow" // due while its session's queue in the driver was full: never sent
)

// kindCut is the error kind of a call this driver cut short on purpose.
const kindCut = "cut"

// kindNoSession is the error kind of a call that was due but whose client
// never got a session open before the run ended.
const kindNoSession = "no-session"

// classOf sorts an error kind (see bench.ErrorKind; "" is success) into
// an outcome class.
func classOf(kind string) string {
	switch {
	case kind == "":
		return classOK
	case kind == kindCut:
		return classCut
	case kind == bench.KindDriverOverflow:
		return classOverflow
	case bench.IsRefusal(kind):
		return classRefused
	case kind == bench.KindTimeout, kind == bench.KindTransport, kind == bench.KindCanceled, kind == kindNoSession:
		return classLost
	default:
		return classFailed
	}
}

// callKind is the error kind of a call's error; a call that ctx (the run)
// did not end but its own cut did is kindCut.
func callKind(run, call context.Context, err error) string {
	if err != nil && run.Err() == nil && errors.Is(call.Err(), context.Canceled) && errors.Is(err, context.Canceled) {
		return kindCut
	}
	return bench.ErrorKind(err)
}

// window counts what happened in one interval (or the whole run).
type window struct {
	hist    *hdrhistogram.Histogram // latencies of successful calls, µs
	classes map[string]int64        // calls by outcome class
	kinds   map[string]int64        // failed, refused and lost calls by error kind
	// Sessions opened, deleted (DELETE answered), abandoned (left without
	// DELETE by an abrupt client), and failures of initialize, DELETE and
	// GET streams by error kind.
	opened, deleted, abandoned int64
	streams                    int64 // GET streams opened
	streamsEnded               int64 // GET streams the server ended while held
	setupErrors                map[string]int64
}

func newWindow() *window {
	return &window{hist: hdrhistogram.New(1, int64(60*time.Second/time.Microsecond), 3),
		classes: map[string]int64{}, kinds: map[string]int64{}, setupErrors: map[string]int64{}}
}

// p99 is the 99th percentile latency of the successful calls (0 without).
func (w *window) p99() time.Duration { return w.quantile(99) }

func (w *window) quantile(q float64) time.Duration {
	if w.hist.TotalCount() == 0 {
		return 0
	}
	return time.Duration(w.hist.ValueAtQuantile(q)) * time.Microsecond
}

// stats counts the driver's calls and sessions into the current interval
// and the whole run.
type stats struct {
	mu         sync.Mutex
	cur, total *window
}

func newStats() *stats { return &stats{cur: newWindow(), total: newWindow()} }

// call counts a call that was due at due and ended with kind.
func (s *stats) call(due time.Time, kind string) {
	class := classOf(kind)
	us := max(1, min(int64(time.Since(due)/time.Microsecond), int64(60*time.Second/time.Microsecond)))
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, w := range []*window{s.cur, s.total} {
		w.classes[class]++
		if class == classOK {
			_ = w.hist.RecordValue(us)
		} else if class != classCut {
			w.kinds[kind]++
		}
	}
}

// session counts a session event: "opened", "deleted", "abandoned",
// "stream", "stream-ended", or a setup failure (what-kind, e.g.
// "init-http-503").
func (s *stats) session(event string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, w := range []*window{s.cur, s.total} {
		switch event {
		case "opened":
			w.opened++
		case "deleted":
			w.deleted++
		case "abandoned":
			w.abandoned++
		case "stream":
			w.streams++
		case "stream-ended":
			w.streamsEnded++
		default:
			w.setupErrors[event]++
		}
	}
}

// interval returns the current interval's counts and starts a new one.
func (s *stats) interval() *window {
	s.mu.Lock()
	defer s.mu.Unlock()
	w := s.cur
	s.cur = newWindow()
	return w
}

// whole returns the counts of the whole run; the caller must not use s
// any more.
func (s *stats) whole() *window {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.total
}
