package workers

import (
	"context"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mcpstream/mcpstream/schema"
)

// TestRenewDue: a running handler is acknowledged in progress (and its
// claim renewed) at every tick, though ticks come a little more or less
// than the interval apart; a handler that started within half an interval
// of a tick waits for the next one.
func TestRenewDue(t *testing.T) {
	const every = 250 * time.Millisecond
	start := time.Unix(1_000_000, 0)
	since := start
	tick := start
	for i, jitter := range []time.Duration{-3, 2, -1, 0, -50 * time.Microsecond, 7, -2} {
		tick = tick.Add(every + jitter)
		if !renewDue(tick, since, every) {
			t.Fatalf("tick %d, %s after the last renewal: not renewed", i, tick.Sub(since))
		}
		since = tick
	}
	if renewDue(start.Add(every/2-time.Nanosecond), start, every) {
		t.Error("renewed less than half an interval after the handler started")
	}
	if !renewDue(start.Add(every/2), start, every) {
		t.Error("not renewed half an interval after the handler started")
	}
}

// BenchmarkHandlerContext compares a handler's context made the way
// process makes it (a handlerContext: its deadline under its slot's
// context, which lasts from handler to handler, made only once watched;
// the slot holding the request's cancel key) with the ways it made it
// before: its deadline under its slot's context, made for every handler
// (parent=slot, 1f8235a); a cause of its own under a root without an
// end, then the deadline, the cause registered by the request's cancel
// key in a map every pool goroutine shares (parent=root, before
// 1f8235a); before that, the deadline under the base every pool
// goroutine shares, which each call registered with and left, then the
// cause.
func BenchmarkHandlerContext(b *testing.B) {
	base, abort := context.WithCancelCause(context.WithoutCancel(context.Background()))
	defer abort(nil)
	root := context.WithoutCancel(base)
	b.Run("parent=base", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				ctx, cancel := context.WithDeadline(base, time.Now().Add(time.Minute))
				ctx, cancelCause := context.WithCancelCause(ctx)
				_ = ctx.Done()
				cancelCause(nil)
				cancel()
			}
		})
	})
	var running struct {
		sync.Mutex
		m map[cancelID]context.CancelCauseFunc
	}
	running.m = map[cancelID]context.CancelCauseFunc{}
	var n atomic.Int64
	b.Run("parent=root", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			var s slot
			for pb.Next() {
				key := cancelID{"session", strconv.FormatInt(n.Add(1), 10)}
				ctx, cancelCause := context.WithCancelCause(root)
				ctx, cancel := context.WithDeadline(ctx, time.Now().Add(time.Minute))
				running.Lock()
				running.m[key] = cancelCause
				running.Unlock()
				s.mu.Lock() // hold
				s.end = cancelCause
				s.mu.Unlock()
				_ = ctx.Done()
				s.mu.Lock() // release
				s.end = nil
				s.mu.Unlock()
				running.Lock()
				delete(running.m, key)
				running.Unlock()
				cancel()
				cancelCause(nil)
			}
		})
	})
	b.Run("parent=slot", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			var s slot
			env := &schema.Envelope{Key: "k"}
			for pb.Next() {
				key := cancelID{"session", strconv.FormatInt(n.Add(1), 10)}
				ctx, cancel := context.WithDeadline(s.context(root), time.Now().Add(time.Minute))
				s.hold(nil, env, time.Time{}, false, key, true)
				_ = ctx.Done()
				s.release()
				cancel()
			}
		})
	})
	// As process makes it now: a handlerContext, whose WithDeadline is
	// made only for a handler that watches it.
	for _, watched := range []bool{false, true} {
		b.Run("parent=slot/handlerContext/watched="+strconv.FormatBool(watched), func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				var s slot
				env := &schema.Envelope{Key: "k"}
				for pb.Next() {
					key := cancelID{"session", strconv.FormatInt(n.Add(1), 10)}
					ctx := newHandlerContext(s.context(root), time.Now().Add(time.Minute))
					s.hold(nil, env, time.Time{}, false, key, true)
					if watched {
						_ = ctx.Done()
					}
					_ = ctx.Err()
					s.release()
					ctx.end()
				}
			})
		})
	}
}
