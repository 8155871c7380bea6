package schedwait

import (
	"runtime"
	"testing"
	"time"

	"github.com/mcpstream/mcpstream/internal/testkit"
)

// TestWatchSeesSaturation: goroutines that want more CPU than there is
// wait for it, and the window's 99th percentile and its waits from 100 us
// show it.
func TestWatchSeesSaturation(t *testing.T) {
	var w Watch
	w.Next()
	// Four times as many spinners as Ps, each yielding now and then so
	// that every wait is counted.
	stop := testkit.Spin(4*runtime.GOMAXPROCS(0), 200*time.Microsecond)
	// The windows measured, not a synchronisation: 300 ms of them, longer
	// (up to 5 s) until they hold 100 waits, which a machine busy with
	// other processes gives this one's goroutines fewer chances to make.
	var win Window
	for began := time.Now(); ; {
		time.Sleep(100 * time.Millisecond)
		next := w.Next()
		if win.Counts == nil {
			win = Window{Counts: make([]uint64, len(next.Counts)), Buckets: next.Buckets}
		}
		for i, c := range next.Counts {
			win.Counts[i] += c
		}
		if took := time.Since(began); took >= 5*time.Second || (took >= 300*time.Millisecond && win.Total() >= 100) {
			break
		}
	}
	stop()
	n, p99, over := win.Total(), win.Quantile(0.99), win.Over(100*time.Microsecond)
	if n < 100 || p99 < 200*time.Microsecond || over < n/2 {
		t.Fatalf("saturated CPU: %d waits, p99 %s, %d of them from 100 us; want at least 100 waits, p99 >= 200us and most from 100 us", n, p99, over)
	}
	if empty := (Window{}); empty.Total() != 0 || empty.Quantile(0.99) != 0 || empty.Over(0) != 0 {
		t.Fatalf("an empty window: %d waits, p99 %s", empty.Total(), empty.Quantile(0.99))
	}
}
