package workers

import (
	"context"
	"testing"
	"time"
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

// BenchmarkHandlerContext compares a handler's two contexts made the way
// process makes them (a cause under a root without an end, then the
// deadline; the slot told how to end them) with the way it made them
// before: the deadline under the base every pool goroutine shares, which
// each call registered with and left, then the cause.
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
	b.Run("parent=root", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			var s slot
			for pb.Next() {
				ctx, cancelCause := context.WithCancelCause(root)
				ctx, cancel := context.WithDeadline(ctx, time.Now().Add(time.Minute))
				s.mu.Lock() // hold
				s.cancel = cancelCause
				s.mu.Unlock()
				_ = ctx.Done()
				s.mu.Lock() // release
				s.cancel = nil
				s.mu.Unlock()
				cancel()
				cancelCause(nil)
			}
		})
	})
}
