package replay

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
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
	// Results adds each request's recorded result or error and the
	// handler's duration, for groups that record them (workers'
	// RecordResults). A request whose group records nothing, or whose
	// record has gone, has neither.
	Results bool
	// ResultWait is how long, with Follow, a request just read waits for
	// its result to be recorded (default until its deadline, at most a
	// minute). Requests of the range do not wait.
	ResultWait time.Duration
}

// Read reads the recorded requests o selects (see [streams.Replay]) and
// passes each, decoded into a [Line], to emit, in the order the streams
// stored them. A request whose envelope cannot be decoded is passed to
// skipped, if set, with the reason, and not to emit.
//
// It returns what [streams.Replay] returns; with o.Results, also the error
// of looking a result up other than its absence.
func Read(ctx context.Context, js jetstream.JetStream, o Options, emit func(*Line) error, skipped func(*streams.Recorded)) error {
	ro := o.ReplayOptions
	ro.Match = o.match
	results := resultLookup{js: js, wait: o.ResultWait}
	return streams.Replay(ctx, js, ro, func(rec *streams.Recorded) error {
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
		if o.Results {
			if err := results.attach(ctx, l, rec.Envelope, rec.Live); err != nil {
				return err
			}
		}
		return emit(l)
	})
}

// match applies the filters the server cannot.
func (o *Options) match(rec *streams.Recorded) bool {
	env := rec.Envelope
	if env == nil {
		return o.Tool == "" && o.Method == "" && o.Principal == "" && o.TraceID == ""
	}
	return !(o.SkipRerun && SentByRerun(env)) &&
		(o.Tool == "" || env.Name == o.Tool) &&
		(o.Method == "" || env.Method == o.Method) &&
		(o.Principal == "" || env.Principal == o.Principal) &&
		(o.TraceID == "" || TraceID(env.TraceParent) == o.TraceID)
}

// resultLookup finds requests' recorded results.
type resultLookup struct {
	js   jetstream.JetStream
	wait time.Duration
	// groups holds each group's records, nil for a group that records
	// none (not asked again).
	groups map[string]*streams.Records
}

// attach sets l's result or error and duration from the group's record of
// env, if there is one. live, a request read as it was stored, waits for
// its result to be recorded.
func (r *resultLookup) attach(ctx context.Context, l *Line, env *schema.Envelope, live bool) error {
	recs, ok := r.groups[l.Group]
	if !ok {
		var err error
		if recs, err = streams.OpenRecords(ctx, r.js, l.Group); err != nil && !errors.Is(err, streams.ErrNoRecordStream) {
			return err
		}
		if r.groups == nil {
			r.groups = map[string]*streams.Records{}
		}
		r.groups[l.Group] = recs
	}
	if recs == nil {
		return nil
	}
	wait := time.Duration(0)
	if live {
		wait = r.wait
		if wait <= 0 {
			wait = min(time.Until(env.DeadlineTime()), time.Minute)
		}
	}
	until := time.Now().Add(wait)
	for backoff := 10 * time.Millisecond; ; backoff = min(2*backoff, 500*time.Millisecond) {
		rep, _, err := recs.Lookup(ctx, l.Key)
		switch {
		case err == nil:
			return l.setAnswer(rep)
		case !errors.Is(err, streams.ErrNotRecorded):
			return err
		}
		if time.Now().Add(backoff).After(until) {
			return nil
		}
		t := time.NewTimer(backoff)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		}
	}
}

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
