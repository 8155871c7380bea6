package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// setupParallel bounds the sessions initializing at once.
const setupParallel = 64

// maxRecorders bounds the recorders (histograms) calling sessions share.
const maxRecorders = 32

// runner is the state of one Run.
type runner struct {
	cfg      Config
	hc       *http.Client
	params   []byte // tools/call params: {"name":...,"arguments":...}
	header   http.Header
	sessions []*session

	// The measured window; calls sent (closed loop) or due (open loop)
	// before measureStart are warm-up.
	start, measureStart, measureEnd time.Time

	sent        atomic.Int64 // calls sent, warm-up included (progress)
	succeeded   atomic.Int64 // successful calls, warm-up included (progress)
	outstanding atomic.Int64 // open loop calls in flight
}

// Run drives load at cfg.URL as cfg describes and returns what it measured.
//
// It first initializes cfg.Sessions calling sessions and cfg.IdleStreams
// stream-holding sessions (sessions that fail to initialize are counted in
// Result.SetupErrors and left out; none ready is an error), then runs
// cfg.Warmup plus cfg.Duration of calls, waits for calls in flight (each at
// most cfg.Timeout), and closes the idle streams. If ctx ends early, Run
// stops at once and returns what it measured so far together with ctx's
// error.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	params, err := json.Marshal(struct {
		Name      string          `json:"name"`
		Arguments json.RawMessage `json:"arguments"`
	}{cfg.Tool, cfg.Args})
	if err != nil {
		return nil, fmt.Errorf("bench: encoding tools/call params: %w", err)
	}
	conns := cfg.Sessions + cfg.IdleStreams
	if cfg.Rate > 0 {
		conns = cfg.Conns + cfg.IdleStreams
	}
	r := &runner{cfg: cfg, hc: newHTTPClient(conns, cfg.SourceIPs), params: params, header: canonicalHeader(cfg.Header)}
	defer r.hc.CloseIdleConnections()

	res := &Result{Config: cfg}
	// Calling sessions share recorders: a histogram is ~140 KB, too much to
	// keep one per session when there are thousands.
	recs := make([]*recorder, min(cfg.Sessions, maxRecorders))
	for i := range recs {
		recs[i] = newRecorder()
	}
	idle := newIdleStreams(ctx)
	defer idle.close()
	if err := r.setup(ctx, recs, idle, res); err != nil {
		return nil, err
	}

	r.start = time.Now()
	r.measureStart = r.start.Add(cfg.Warmup)
	r.measureEnd = r.measureStart.Add(cfg.Duration)
	stopProgress := r.progress(cfg.Progress)
	if cfg.Started != nil {
		cfg.Started()
	}
	// The driver's and the server's CPU time when measurement started.
	var cpuAtStart, serverAtStart atomic.Int64
	cpuAtStart.Store(-1)
	serverAtStart.Store(-1)
	cpuTimer := time.AfterFunc(cfg.Warmup, func() {
		cpuAtStart.Store(int64(processCPU()))
		if cfg.ServerPID > 0 {
			serverAtStart.Store(int64(pidCPU(cfg.ServerPID)))
		}
	})
	if cfg.Rate > 0 {
		r.openLoop(ctx)
	} else {
		r.closedLoop(ctx)
	}
	end := time.Now()
	cpuTimer.Stop()
	if c0, c1 := cpuAtStart.Load(), processCPU(); c0 >= 0 && c1 >= 0 {
		res.DriverCPU = c1 - time.Duration(c0)
	}
	if cfg.ServerPID > 0 {
		if s0, s1 := serverAtStart.Load(), pidCPU(cfg.ServerPID); s0 >= 0 && s1 >= 0 {
			res.ServerCPU = s1 - time.Duration(s0)
		}
	}
	stopProgress()
	res.IdleDropped = idle.close()
	res.fill(merge(recs), r.measureStart, end)
	return res, ctx.Err()
}

// setup initializes cfg.Sessions calling sessions into r.sessions (session
// i records into recs[i mod len(recs)]) and opens cfg.IdleStreams idle
// streams, setupParallel sessions at a time. Failures are counted in
// res.SetupErrors; it is an error only when no calling session is ready or
// ctx ended.
func (r *runner) setup(ctx context.Context, recs []*recorder, idle *idleStreams, res *Result) error {
	cfg := r.cfg
	var mu sync.Mutex
	var firstErr error
	failed := func(what string, err error) {
		mu.Lock()
		defer mu.Unlock()
		if res.SetupErrors == nil {
			res.SetupErrors = map[string]int{}
		}
		res.SetupErrors[what+"-"+errKind(err)]++
		if firstErr == nil {
			firstErr = err
		}
	}
	ready := make([]*session, cfg.Sessions)
	sem := make(chan struct{}, setupParallel)
	var wg sync.WaitGroup
	for i := range cfg.Sessions + cfg.IdleStreams {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			s := &session{hc: r.hc, url: cfg.URL, header: r.header}
			ictx, cancel := context.WithTimeout(ctx, cfg.Timeout)
			defer cancel()
			if err := s.initializeRetrying(ictx); err != nil {
				failed("init", err)
				return
			}
			if i < cfg.Sessions {
				s.rec = recs[i%len(recs)]
				ready[i] = s
				return
			}
			if err := idle.open(s, cfg.Timeout); err != nil {
				failed("stream", err)
			}
		}()
	}
	wg.Wait()
	for _, s := range ready {
		if s != nil {
			r.sessions = append(r.sessions, s)
		}
	}
	res.SessionsReady = len(r.sessions)
	res.IdleEstablished = idle.established()
	if err := ctx.Err(); err != nil {
		return err
	}
	if len(r.sessions) == 0 {
		return fmt.Errorf("bench: no session could initialize at %s: %w", cfg.URL, firstErr)
	}
	return nil
}

// call runs one tools/call on s, bounded by the configured timeout, and
// returns its error kind ("" for success).
func (r *runner) call(ctx context.Context, s *session) string {
	r.sent.Add(1)
	cctx, cancel := context.WithTimeout(ctx, r.cfg.Timeout)
	err := s.call(cctx, r.params)
	cancel()
	if err == nil {
		r.succeeded.Add(1)
	}
	return errKind(err)
}

// closedLoop runs one goroutine per session, each making one call at a
// time until the measured window ends. Latency is measured from the send.
func (r *runner) closedLoop(ctx context.Context) {
	var wg sync.WaitGroup
	for _, s := range r.sessions {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				t0 := time.Now()
				if !t0.Before(r.measureEnd) {
					return
				}
				kind := r.call(ctx, s)
				if !t0.Before(r.measureStart) {
					s.rec.record(time.Since(t0), kind)
				}
			}
		}()
	}
	wg.Wait()
}

// openLoop sends calls at the configured rate, round-robin over the
// sessions, whatever the server's latency: a call is due at
// start + i/rate and its latency is measured from then, so time spent
// queued (in the driver or the server) is not hidden; the part spent in
// the driver, from due to send, is recorded apart. cfg.Conns senders
// each make one call at a time; a due call waits for a free sender, and
// beyond MaxOutstanding calls due but unfinished an arrival is counted as
// "driver-overflow" and not sent. It returns when every call sent has
// finished.
func (r *runner) openLoop(ctx context.Context) {
	interval := float64(time.Second) / r.cfg.Rate
	limit := int64(r.cfg.MaxOutstanding)
	n := int64(len(r.sessions))
	type arrival struct {
		s   *session
		due time.Time
	}
	due := make(chan arrival, r.cfg.MaxOutstanding)
	var wg sync.WaitGroup
	for range r.cfg.Conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for a := range due {
				lag := time.Since(a.due)
				kind := r.call(ctx, a.s)
				r.outstanding.Add(-1)
				if !a.due.Before(r.measureStart) {
					a.s.rec.recordOpen(time.Since(a.due), lag, kind)
				}
			}
		}()
	}
	defer wg.Wait()
	defer close(due)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for i := int64(0); ; i++ {
		at := r.start.Add(time.Duration(float64(i) * interval))
		if !at.Before(r.measureEnd) {
			return
		}
		if d := time.Until(at); d > 0 {
			timer.Reset(d)
			select {
			case <-timer.C:
			case <-ctx.Done():
				return
			}
		} else if ctx.Err() != nil {
			return
		}
		s := r.sessions[i%n]
		if r.outstanding.Add(1) > limit {
			r.outstanding.Add(-1)
			if !at.Before(r.measureStart) {
				s.rec.record(0, KindDriverOverflow)
			}
			continue
		}
		due <- arrival{s, at}
	}
}
