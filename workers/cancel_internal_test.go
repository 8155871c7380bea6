package workers

import (
	"strconv"
	"testing"
)

// TestCancelledIsBounded: a replica remembers the latest cancelMemory
// cancellations and forgets the oldest; one repeated is remembered once.
func TestCancelledIsBounded(t *testing.T) {
	var c cancelled
	for i := range cancelMemory + 10 {
		c.add(strconv.Itoa(i), "reason "+strconv.Itoa(i))
		c.add(strconv.Itoa(i), "again")
	}
	if n := len(c.reasons); n != cancelMemory {
		t.Fatalf("%d cancellations remembered, want %d", n, cancelMemory)
	}
	for _, i := range []int{0, 9} {
		if _, ok := c.reason(strconv.Itoa(i)); ok {
			t.Errorf("cancellation %d remembered past the bound", i)
		}
	}
	for _, i := range []int{10, cancelMemory + 9} {
		if got, ok := c.reason(strconv.Itoa(i)); !ok || got != "reason "+strconv.Itoa(i) {
			t.Errorf("cancellation %d: %q, %v", i, got, ok)
		}
	}
}
