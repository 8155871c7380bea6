package bench

import (
	"context"
	"errors"
	"io"
	"sync"
	"sync/atomic"
	"time"
)

// idleStreams holds sessions' GET event streams open until closed: they
// stand for clients that are connected but quiet.
type idleStreams struct {
	ctx     context.Context // ends every stream
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	opened  atomic.Int64
	dropped atomic.Int64
	once    sync.Once
}

// newIdleStreams returns an empty set of streams that ends with ctx at the
// latest.
func newIdleStreams(ctx context.Context) *idleStreams {
	sctx, cancel := context.WithCancel(ctx)
	return &idleStreams{ctx: sctx, cancel: cancel}
}

// open opens s's GET event stream, which must answer within timeout, and
// reads (and discards) whatever the server sends on it until close.
func (is *idleStreams) open(s *session, timeout time.Duration) error {
	ctx, cancel := context.WithCancel(is.ctx)
	late := time.AfterFunc(timeout, cancel)
	resp, err := s.openStream(ctx)
	if !late.Stop() && err == nil {
		_ = resp.Body.Close()
		err = &callError{KindTimeout, errors.New("GET stream: no response headers within the timeout")}
	}
	if err != nil {
		cancel()
		return err
	}
	is.opened.Add(1)
	is.wg.Add(1)
	go func() {
		defer is.wg.Done()
		defer cancel()
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		if is.ctx.Err() == nil {
			is.dropped.Add(1) // the server ended it while the run went on
		}
	}()
	return nil
}

// established is the number of streams opened.
func (is *idleStreams) established() int { return int(is.opened.Load()) }

// close ends every stream, waits until they are closed and returns how many
// the server had ended before.
func (is *idleStreams) close() int {
	is.once.Do(func() {
		is.cancel()
		is.wg.Wait()
	})
	return int(is.dropped.Load())
}
