package logging

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// Repeats keeps a log readable when one failure hits every request in
// flight at once: while a stream elects a leader (seconds), each publish
// to it fails and is tried again, and a process serving thousands of
// calls a second would write a warning for each. Of one kind of failure,
// Warn logs the first at warn level, and then at most one line every
// Every, which says with the attribute RepeatsKey how many it stands for;
// the others go to debug level. Kinds are meant to be few and fixed (a
// stream's name, "session"): each is kept for the process's life. The zero
// value is ready to use.
type Repeats struct {
	// Every is how often one kind of failure is logged at warn level
	// (default 1s).
	Every time.Duration

	mu    sync.Mutex
	kinds map[string]*repeated
	now   func() time.Time // time.Now unless a test sets it
}

// RepeatsKey names the attribute of a warning that counts the failures of
// its kind sent to debug level since the kind's previous warning.
const RepeatsKey = "repeats"

// repeated is what Repeats keeps of one kind.
type repeated struct {
	last time.Time // when its last warning was logged
	held int64     // failures sent to debug level since
}

// Warn logs msg with args on log at warn level, with RepeatsKey added,
// unless a failure of kind was logged at warn level within Every; then at
// debug level, and counted.
func (r *Repeats) Warn(ctx context.Context, log *slog.Logger, kind, msg string, args ...any) {
	every := r.Every
	if every <= 0 {
		every = time.Second
	}
	r.mu.Lock()
	now := time.Now()
	if r.now != nil {
		now = r.now()
	}
	if r.kinds == nil {
		r.kinds = map[string]*repeated{}
	}
	k := r.kinds[kind]
	if k == nil {
		k = &repeated{}
		r.kinds[kind] = k
	}
	held := int64(-1)
	if k.last.IsZero() || now.Sub(k.last) >= every {
		held, k.last, k.held = k.held, now, 0
	} else {
		k.held++
	}
	r.mu.Unlock()
	if held < 0 {
		log.DebugContext(ctx, msg, args...)
		return
	}
	log.WarnContext(ctx, msg, append(args, RepeatsKey, held)...)
}
