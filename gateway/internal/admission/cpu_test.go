package admission

import (
	"runtime"
	"sync"
	"testing"
	"time"
)

// TestSchedWatchSeesSaturation: goroutines that want more CPU than there
// is wait for it, and the watch's 99th percentile shows the wait.
func TestSchedWatchSeesSaturation(t *testing.T) {
	w := newSchedWatch()
	w.quantile(0.99)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	// Four times as many spinners as Ps, each yielding now and then so
	// that every wait is counted.
	for range 4 * runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				spinUntil := time.Now().Add(200 * time.Microsecond)
				for time.Now().Before(spinUntil) {
				}
				runtime.Gosched()
			}
		}()
	}
	time.Sleep(300 * time.Millisecond) // the window measured, not a synchronisation
	p99, n := w.quantile(0.99)
	close(stop)
	wg.Wait()
	if n < 100 || p99 < 200*time.Microsecond {
		t.Fatalf("saturated CPU: %d waits, p99 %s; want at least 100 waits and p99 >= 200us", n, p99)
	}
}
