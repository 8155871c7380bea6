package main

import (
	"context"
	"io"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mcpstream/mcpstream/bench"
)

// loadConfig is the soak's load: an open loop of calls at rate, spread
// over clients that each hold one session at a time and replace it after
// a random, bounded number of calls.
type loadConfig struct {
	params      []byte        // tools/call params
	rate        float64       // calls/s
	clients     int           // sessions open at any time
	maxCalls    int           // a session makes 1..maxCalls calls (uniform)
	parallel    int           // calls one session has in flight at most
	queue       int           // calls due on one client that may wait in the driver
	streamShare float64       // share of sessions that also hold their GET event stream
	streamHold  time.Duration // a held stream stays open up to this long (uniform), or until its session ends
	abruptShare float64       // share of sessions whose client leaves abruptly
	cutWithin   time.Duration // an abrupt client closes its last call's connection within this time of sending it
	timeout     time.Duration // bounds a call, an initialize, a DELETE
	seed        uint64
}

// driver runs a loadConfig against one endpoint.
type driver struct {
	cfg   loadConfig
	url   string
	stats *stats
	// streamsOpen is the GET streams held now.
	streamsOpen atomic.Int64
}

func newDriver(url string, cfg loadConfig) *driver {
	return &driver{cfg: cfg, url: url, stats: newStats()}
}

// run drives the load until the time until (or until ctx ends), then
// waits for every call due to finish, every session to end and every
// stream to close. Call i of the open loop is due at start + i/rate and
// goes to client i mod clients; its latency runs from when it was due.
func (d *driver) run(ctx context.Context, start, until time.Time) {
	queues := make([]chan time.Time, d.cfg.clients)
	over := make(chan struct{})
	var wg sync.WaitGroup
	for i := range queues {
		queues[i] = make(chan time.Time, d.cfg.queue)
		rng := rand.New(rand.NewPCG(d.cfg.seed, uint64(i)))
		wg.Go(func() { d.runClient(ctx, rng, queues[i], over) })
	}
	defer wg.Wait()
	defer func() {
		close(over)
		for _, q := range queues {
			close(q)
		}
	}()
	interval := float64(time.Second) / d.cfg.rate
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for i := int64(0); ; i++ {
		due := start.Add(time.Duration(float64(i) * interval))
		if !due.Before(until) {
			return
		}
		if wait := time.Until(due); wait > 0 {
			timer.Reset(wait)
			select {
			case <-timer.C:
			case <-ctx.Done():
				return
			}
		} else if ctx.Err() != nil {
			return
		}
		select {
		case queues[i%int64(len(queues))] <- due:
		default:
			d.stats.call(due, bench.KindDriverOverflow)
		}
	}
}

// runClient is one client: it opens a session, makes its calls as they
// fall due (at most parallel at once), ends it, and opens the next, until
// its queue is closed and drained. over is closed when no more calls fall
// due. Each session has connections of its own (up to parallel), opened
// as it needs them and closed when it ends, as a client's that comes and
// goes.
func (d *driver) runClient(ctx context.Context, rng *rand.Rand, due <-chan time.Time, over <-chan struct{}) {
	for {
		s := d.open(ctx, over)
		if s == nil { // the run is over before a session opened
			for t := range due {
				d.stats.call(t, kindNoSession)
			}
			return
		}
		if !d.session(ctx, rng, s, due) {
			return
		}
	}
}

// open initializes a session on new connections, retrying with backoff
// while calls wait. It returns nil once ctx has ended or the open loop is
// over.
func (d *driver) open(ctx context.Context, over <-chan struct{}) *session {
	backoff := 50 * time.Millisecond
	for {
		c := bench.NewClient(d.url, d.cfg.parallel)
		ictx, cancel := context.WithTimeout(ctx, d.cfg.timeout)
		s, err := c.Open(ictx)
		cancel()
		if err == nil {
			d.stats.session("opened")
			return &session{Session: s, client: c}
		}
		c.CloseIdleConnections()
		d.stats.session("init-" + bench.ErrorKind(err))
		select {
		case <-ctx.Done():
			return nil
		case <-over:
			return nil
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, time.Second)
	}
}

// session is a client's session with its connections.
type session struct {
	*bench.Session
	client *bench.Client
}

// session makes one session's calls and ends it: with DELETE, or, for an
// abrupt client, by closing its last call's connection mid-call and
// leaving without one. It reports whether the client goes on (false once
// its queue is closed and drained).
func (d *driver) session(ctx context.Context, rng *rand.Rand, s *session, due <-chan time.Time) bool {
	defer s.client.CloseIdleConnections() // the client goes
	calls := 1 + rng.IntN(d.cfg.maxCalls)
	abrupt := rng.Float64() < d.cfg.abruptShare
	var stream *heldStream
	if rng.Float64() < d.cfg.streamShare {
		stream = d.holdStream(ctx, s.Session, time.Duration(rng.Int64N(int64(d.cfg.streamHold)+1)))
	}
	sem := make(chan struct{}, d.cfg.parallel)
	var wg sync.WaitGroup
	more := true
	for i := 0; i < calls; i++ {
		t, ok := <-due
		if !ok {
			more = false
			break
		}
		sem <- struct{}{}
		cut := time.Duration(-1)
		if abrupt && i == calls-1 {
			cut = time.Duration(rng.Int64N(int64(d.cfg.cutWithin) + 1))
		}
		wg.Go(func() {
			defer func() { <-sem }()
			d.call(ctx, s.Session, t, cut)
		})
	}
	wg.Wait()
	stream.close()
	if abrupt && more {
		d.stats.session("abandoned")
		return true
	}
	dctx, cancel := context.WithTimeout(ctx, d.cfg.timeout)
	defer cancel()
	if err := s.Delete(dctx); err != nil {
		d.stats.session("delete-" + bench.ErrorKind(err))
	} else {
		d.stats.session("deleted")
	}
	return more
}

// call makes one call due at t; with cut >= 0 its connection is closed cut
// after it is sent, unless answered first.
func (d *driver) call(ctx context.Context, s *bench.Session, t time.Time, cut time.Duration) {
	cctx, cancel := context.WithTimeout(ctx, d.cfg.timeout)
	defer cancel()
	if cut >= 0 {
		stop := time.AfterFunc(cut, cancel)
		defer stop.Stop()
	}
	err := s.Call(cctx, d.cfg.params)
	d.stats.call(t, callKind(ctx, cctx, err))
}

// heldStream is a session's GET event stream, read and discarded until
// closed.
type heldStream struct {
	cancel context.CancelFunc
	held   *time.Timer // ends the stream once held long enough
	done   chan struct{}
}

// holdStream opens s's GET stream and holds it for hold after it opened.
// A stream that cannot be opened is counted and nil returned.
func (d *driver) holdStream(ctx context.Context, s *bench.Session, hold time.Duration) *heldStream {
	sctx, cancel := context.WithCancel(ctx)
	late := time.AfterFunc(d.cfg.timeout, cancel) // no answer in time
	body, err := s.OpenStream(sctx)
	if !late.Stop() && err == nil {
		_ = body.Close()
		err = context.DeadlineExceeded
	}
	if err != nil {
		cancel()
		if ctx.Err() == nil {
			d.stats.session("stream-" + bench.ErrorKind(err))
		}
		return nil
	}
	d.stats.session("stream")
	d.streamsOpen.Add(1)
	held := time.AfterFunc(hold, cancel)
	h := &heldStream{cancel: cancel, held: held, done: make(chan struct{})}
	go func() {
		defer close(h.done)
		defer d.streamsOpen.Add(-1)
		_, _ = io.Copy(io.Discard, body)
		_ = body.Close()
		if held.Stop() && ctx.Err() == nil && sctx.Err() == nil {
			d.stats.session("stream-ended") // the server ended it
		}
	}()
	return h
}

// close ends the stream and waits until it is closed; nil does nothing.
func (h *heldStream) close() {
	if h == nil {
		return
	}
	h.held.Stop()
	h.cancel()
	<-h.done
}
