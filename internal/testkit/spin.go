package testkit

import (
	"runtime"
	"sync"
	"time"
)

// Spin starts n goroutines that each work (spin) for slice at a time and
// then yield, so that they keep the cores busy and wait for one another
// to run again, each wait counted in Go's scheduling latencies; the stop it
// returns ends them and waits for them to end (a second call does nothing).
func Spin(n int, slice time.Duration) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			for {
				select {
				case <-done:
					return
				default:
				}
				for until := time.Now().Add(slice); time.Now().Before(until); {
				}
				runtime.Gosched()
			}
		})
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			close(done)
			wg.Wait()
		})
	}
}
