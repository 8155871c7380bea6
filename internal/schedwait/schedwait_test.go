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
	time.Sleep(300 * time.Millisecond) // the window measured, not a synchronisation
	win := w.Next()
	stop()
	n, p99, over := win.Total(), win.Quantile(0.99), win.Over(100*time.Microsecond)
	if n < 100 || p99 < 200*time.Microsecond || over < n/2 {
		t.Fatalf("saturated CPU: %d waits, p99 %s, %d of them from 100 us; want at least 100 waits, p99 >= 200us and most from 100 us", n, p99, over)
	}
	if empty := (Window{}); empty.Total() != 0 || empty.Quantile(0.99) != 0 || empty.Over(0) != 0 {
		t.Fatalf("an empty window: %d waits, p99 %s", empty.Total(), empty.Quantile(0.99))
	}
}
