package replay

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/mcpstream/mcpstream/schema"
	"github.com/mcpstream/mcpstream/streams"
)

// Options select and shape what [Read] passes on. The zero value reads
// every recorded request up to now, without results.
type Options struct {
	// Range and the filters the server applies: group, session (its
	// partition), stream, start sequence, since, until, follow, limit.
	streams.ReplayOptions
	// Tool, Method, Principal and TraceID, when set, keep only requests
	// with that tool (or prompt, or resource URI), method, principal or
	// trace id. They are applied as the requests stream past.
	Tool, Method, Principal, TraceID string
	// SkipRerun leaves out the requests a re-run sent ([SentByRerun]),
	// as the filters do: a re-run against the deployment it reads, with
	// Follow, would otherwise read its own calls and send them again, for
	// ever.
	SkipRerun bool
	// SkipCopies leaves out the copies of a request stored a second time
	// (Attempt above 1: a gateway's publish again past the stream's
	// duplicate window, or a draining worker's on the request's last
	// delivery), whose first copy comes earlier: a re-run sends each
	// request once.
	SkipCopies bool
	// Results adds each request's recorded result or error and the
	// handler's duration, for groups that record them (workers'
	// RecordResults). A request whose group records nothing, or whose
	// record has gone, has neither.
	Results bool
	// ResultWait is how long, with Follow, a request just read waits for
	// its result to be recorded (default until its deadline, at most a
	// minute), holding back no other (see [Read]). Requests of the range
	// do not wait, nor do tasks' requests (their outcome is not
	// recorded).
	ResultWait time.Duration
}

// Read reads the recorded requests o selects (see [streams.Replay]) and
// passes each, decoded into a [Line], to emit, in the order the streams
// stored them. A request whose envelope cannot be decoded is passed to
// skipped, if set, with the reason, and not to emit.
//
// With o.Results and o.Follow, a request read live is passed on once its
// answer is recorded, with it, or once its wait (o.ResultWait) ends
// without one, and holds back no other: live lines come in the order they
// were answered. A request whose answer is never recorded (a task's, whose
// outcome goes to the task bucket) is passed on at once. Requests still
// waiting when the read fails or is interrupted are passed on then,
// without an answer; when it ends otherwise (o.Until, o.Limit), their
// waits are awaited. emit
// is never called by two goroutines at once, nor again once it has
// returned an error.
//
// It returns what [streams.Replay] returns; with o.Results, also the error
// of looking a result up other than its absence; the first error emit
// returns.
func Read(ctx context.Context, js jetstream.JetStream, o Options, emit func(*Line) error, skipped func(*streams.Recorded)) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ro := o.ReplayOptions
	ro.Match = o.match
	out := &emitter{emit: emit, cancel: cancel}
	results := resultLookup{js: js, wait: o.ResultWait}
	var waiting sync.WaitGroup
	err := streams.Replay(ctx, js, ro, func(rec *streams.Recorded) error {
		if rec.Err != nil {
			if skipped != nil {
				skipped(rec)
			}
			return nil
		}
		l, err := NewLine(rec)
		if err != nil {
			if skipped != nil {
				skipped(&streams.Recorded{Stream: rec.Stream, Seq: rec.Seq, Time: rec.Time, Group: rec.Group, Err: err})
			}
			return nil
		}
		if !o.Results {
			return out.pass(l)
		}
		recs, err := results.records(ctx, l.Group)
		if err != nil {
			return err
		}
		if recs == nil { // the group records nothing
			return out.pass(l)
		}
		found, err := results.attach(ctx, recs, l, 0)
		if err != nil {
			return err
		}
		if found || !rec.Live || rec.Envelope.TaskID != "" {
			return out.pass(l)
		}
		wait := results.waitFor(rec.Envelope)
		if err := results.slots.acquire(ctx); err != nil {
			return err
		}
		waiting.Go(func() {
			defer results.slots.release()
			if _, err := results.attach(ctx, recs, l, wait); err != nil && ctx.Err() == nil {
				out.fail(err)
				return
			}
			_ = out.pass(l) // the read is ending when it fails
		})
		return out.err()
	})
	if err != nil {
		cancel() // the requests waiting are passed on now
	}
	waiting.Wait()
	if ferr := out.err(); ferr != nil {
		return ferr
	}
	return err
}

// emitter passes lines on to emit, one at a time, until emit or a
// request's lookup fails; then it ends the read.
type emitter struct {
	emit   func(*Line) error
	cancel context.CancelFunc

	mu     sync.Mutex
	failed error
}

// pass passes l on, unless a line failed before; it returns the first
// failure.
func (e *emitter) pass(l *Line) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.failed != nil {
		return e.failed
	}
	if err := e.emit(l); err != nil {
		e.failed = err
		e.cancel()
	}
	return e.failed
}

// fail ends the read with err, unless it failed already.
func (e *emitter) fail(err error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.failed == nil {
		e.failed = err
		e.cancel()
	}
}

// err is the first failure, or nil.
func (e *emitter) err() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.failed
}

// match applies the filters the server cannot.
func (o *Options) match(rec *streams.Recorded) bool {
	env := rec.Envelope
	if env == nil {
		return o.Tool == "" && o.Method == "" && o.Principal == "" && o.TraceID == ""
	}
	return !(o.SkipRerun && SentByRerun(env)) && !(o.SkipCopies && env.Attempt > 1) &&
		(o.Tool == "" || env.Name == o.Tool) &&
		(o.Method == "" || env.Method == o.Method) &&
		(o.Principal == "" || env.Principal == o.Principal) &&
		(o.TraceID == "" || TraceID(env.TraceParent) == o.TraceID)
}

// maxWaiting bounds the live requests waiting for their answer at once;
// more hold the read back until one ends its wait.
const maxWaiting = 4096

// resultLookup finds requests' recorded results.
type resultLookup struct {
	js   jetstream.JetStream
	wait time.Duration
	// groups holds each group's records, nil for a group that records
	// none (not asked again). Only Read's callback uses it.
	groups map[string]*streams.Records
	// slots bound the requests waiting (maxWaiting).
	slots slots
}

// records opens group's records, or returns nil when it records none.
func (r *resultLookup) records(ctx context.Context, group string) (*streams.Records, error) {
	recs, ok := r.groups[group]
	if ok {
		return recs, nil
	}
	recs, err := streams.OpenRecords(ctx, r.js, group)
	if err != nil && !errors.Is(err, streams.ErrNoRecordStream) {
		return nil, err
	}
	if r.groups == nil {
		r.groups = map[string]*streams.Records{}
	}
	r.groups[group] = recs
	return recs, nil
}

// waitFor is how long a live request waits for its answer: r.wait, or
// until its deadline (the worker records nothing after it), at most a
// minute.
func (r *resultLookup) waitFor(env *schema.Envelope) time.Duration {
	if r.wait > 0 {
		return r.wait
	}
	return min(time.Until(env.DeadlineTime()), time.Minute)
}

// attach sets l's result or error and duration from recs' record of its
// request, looking again for up to wait while there is none. It reports
// whether a record was found.
func (r *resultLookup) attach(ctx context.Context, recs *streams.Records, l *Line, wait time.Duration) (bool, error) {
	until := time.Now().Add(wait)
	for backoff := 10 * time.Millisecond; ; backoff = min(2*backoff, 500*time.Millisecond) {
		rep, _, err := recs.Lookup(ctx, l.Key)
		switch {
		case err == nil:
			return true, l.setAnswer(rep)
		case !errors.Is(err, streams.ErrNotRecorded):
			return false, err
		}
		if time.Now().Add(backoff).After(until) {
			return false, nil
		}
		t := time.NewTimer(backoff)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return false, ctx.Err()
		}
	}
}

// slots is a counting semaphore of maxWaiting, made on first use.
type slots struct {
	once sync.Once
	ch   chan struct{}
}

// acquire takes a slot, waiting for one, or returns ctx's error.
func (s *slots) acquire(ctx context.Context) error {
	s.once.Do(func() { s.ch = make(chan struct{}, maxWaiting) })
	select {
	case s.ch <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// release gives a slot back.
func (s *slots) release() { <-s.ch }

// setAnswer sets l's result or error, and duration, from a recorded reply.
func (l *Line) setAnswer(rep *schema.Reply) error {
	if rep.RunNs > 0 {
		l.Duration = time.Duration(rep.RunNs).String()
	}
	if rep.Error != nil {
		l.Error = rep.Error
		return nil
	}
	res, err := schema.MsgpackToJSON(nil, rep.Result)
	if err != nil {
		return fmt.Errorf("decoding the recorded result of %s: %w", l.Key, err)
	}
	l.Result = json.RawMessage(res)
	return nil
}
