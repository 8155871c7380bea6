package workers

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

type ctxKey struct{}

// handlerCtxCase is one way a handler's context ends, done to both the
// handlerContext and the context.WithDeadline (or WithCancel) it stands
// for, under parents of their own.
type handlerCtxCase struct {
	name string
	// deadline from now; zero for none
	deadline time.Duration
	// watch asks for Done first (which makes the handlerContext's)
	watch bool
	// endParent ends the slot's context with this cause; end ends the
	// handler's context
	endParent error
	end       bool
}

func (c handlerCtxCase) pair(t *testing.T) (got, want context.Context) {
	t.Helper()
	mk := func() (context.Context, context.CancelCauseFunc) {
		return context.WithCancelCause(context.WithValue(context.Background(), ctxKey{}, "v"))
	}
	gp, gend := mk()
	wp, wend := mk()
	t.Cleanup(func() { gend(nil); wend(nil) })
	var dl time.Time
	if c.deadline != 0 {
		dl = time.Now().Add(c.deadline)
	}
	h := newHandlerContext(gp, dl)
	var cancel context.CancelFunc
	if dl.IsZero() {
		want, cancel = context.WithCancel(wp)
	} else {
		want, cancel = context.WithDeadline(wp, dl)
	}
	t.Cleanup(cancel)
	if c.watch {
		_ = h.Done()
		_ = want.Done()
	}
	if c.endParent != nil {
		gend(c.endParent)
		wend(c.endParent)
	}
	if c.end {
		h.end()
		cancel()
	}
	return h, want
}

// TestHandlerContextAsWithDeadline: a handler's context answers Err,
// context.Cause, Deadline and Value as the context.WithDeadline it stands
// for does, whether or not anything watched it first, and its Done
// channel closes when that one's does; a context made under it ends with
// it.
func TestHandlerContextAsWithDeadline(t *testing.T) {
	cause := errors.New("the client cancelled")
	var cases []handlerCtxCase
	for _, watch := range []bool{false, true} {
		for _, dl := range []time.Duration{0, time.Hour, -time.Second} {
			cases = append(cases,
				handlerCtxCase{name: "running", deadline: dl, watch: watch},
				handlerCtxCase{name: "ended", deadline: dl, watch: watch, end: true},
			)
			if dl < 0 && !watch {
				// Both ended before anything asked: the handler's
				// context tells of its slot's end (see handlerContext).
				continue
			}
			cases = append(cases,
				handlerCtxCase{name: "slot ended", deadline: dl, watch: watch, endParent: cause},
				handlerCtxCase{name: "slot ended, then ended", deadline: dl, watch: watch, endParent: cause, end: true},
			)
		}
	}
	for _, c := range cases {
		t.Run(c.name+"/deadline="+c.deadline.String()+map[bool]string{true: "/watched", false: ""}[c.watch], func(t *testing.T) {
			got, want := c.pair(t)
			gd, gok := got.Deadline()
			wd, wok := want.Deadline()
			if gok != wok || !gd.Equal(wd) {
				t.Errorf("Deadline() = %v, %v; want %v, %v", gd, gok, wd, wok)
			}
			if g, w := got.Err(), want.Err(); !errors.Is(g, w) || (g == nil) != (w == nil) {
				t.Errorf("Err() = %v, want %v", g, w)
			}
			if g, w := context.Cause(got), context.Cause(want); !errors.Is(g, w) || (g == nil) != (w == nil) {
				t.Errorf("Cause = %v, want %v", g, w)
			}
			if g := got.Value(ctxKey{}); g != "v" {
				t.Errorf("Value = %v, want the parent's", g)
			}
			// A context made under it ends with it, not before.
			child, stop := context.WithCancel(got)
			defer stop()
			select {
			case <-want.Done():
				<-got.Done()
				<-child.Done()
				if g, w := child.Err(), want.Err(); !errors.Is(g, w) {
					t.Errorf("child's Err() = %v, want %v", g, w)
				}
			default:
				select {
				case <-got.Done():
					t.Fatal("Done closed while the context it stands for runs")
				case <-child.Done():
					t.Fatal("a child ended while its parent runs")
				default:
				}
			}
		})
	}
}

// TestHandlerContextDeadlinePasses: a watched handler's context ends at its
// deadline with context.DeadlineExceeded, and so does one nothing watched,
// as soon as it is asked; a context made under it after it ended is ended.
func TestHandlerContextDeadlinePasses(t *testing.T) {
	parent, end := context.WithCancelCause(context.Background())
	defer end(nil)
	// Far enough ahead that the first Err below comes before it, on a
	// loaded machine under -race too.
	deadline := time.Now().Add(250 * time.Millisecond)
	watched := newHandlerContext(parent, deadline)
	unwatched := newHandlerContext(parent, deadline)
	defer watched.end()
	defer unwatched.end()
	if unwatched.Err() != nil {
		t.Fatal("ended before its deadline")
	}
	select {
	case <-watched.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("not ended 10s after its deadline")
	}
	if err := watched.Err(); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("watched: Err() = %v, want %v", err, context.DeadlineExceeded)
	}
	// The deadline has passed (watched ended): the unwatched one ends
	// when asked, though no timer ended it.
	if err := unwatched.Err(); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("unwatched: Err() = %v, want %v", err, context.DeadlineExceeded)
	}
	if err := context.Cause(unwatched); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("unwatched: Cause = %v, want %v", err, context.DeadlineExceeded)
	}
	child, stop := context.WithCancel(unwatched)
	defer stop()
	select {
	case <-child.Done():
	default:
		t.Error("a context made under an ended one runs")
	}
}

// TestHandlerContextConcurrent: Done, Err, Value and end from several
// goroutines at once (run with -race) agree: once end returns, every
// Done channel asked for is closed.
func TestHandlerContextConcurrent(t *testing.T) {
	for range 200 {
		h := newHandlerContext(context.Background(), time.Now().Add(time.Hour))
		var wg sync.WaitGroup
		dones := make(chan (<-chan struct{}), 4)
		for range 4 {
			wg.Go(func() {
				_ = h.Err()
				_ = h.Value(ctxKey{})
				dones <- h.Done()
			})
		}
		h.end()
		wg.Wait()
		close(dones)
		for d := range dones {
			select {
			case <-d:
			default:
				t.Fatal("a Done channel still open after end")
			}
		}
		if !errors.Is(h.Err(), context.Canceled) {
			t.Fatalf("Err() = %v after end, want %v", h.Err(), context.Canceled)
		}
	}
}
