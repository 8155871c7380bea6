package schedwait

import (
	"runtime"
	"sync"
	"testing"
	"time"
)

// TestWatchSeesSaturation: goroutines that want more CPU than there is
// wait for it, and the window's 99th percentile and its waits beyond 200
// us show it.
func TestWatchSeesSaturation(t *testing.T) {
	var w Watch
	w.Next()
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
	win := w.Next()
	close(stop)
	wg.Wait()
	n, p99, over := win.Total(), win.Quantile(0.99), win.Over(100*time.Microsecond)
	if n < 100 || p99 < 200*time.Microsecond || over < n/2 {
		t.Fatalf("saturated CPU: %d waits, p99 %s, %d of them from 100 us; want at least 100 waits, p99 >= 200us and most from 100 us", n, p99, over)
	}
	if empty := (Window{}); empty.Total() != 0 || empty.Quantile(0.99) != 0 || empty.Over(0) != 0 {
		t.Fatalf("an empty window: %d waits, p99 %s", empty.Total(), empty.Quantile(0.99))
	}
}
