package proc

import (
	"os"
	"runtime"
	"testing"
)

func TestParseRSS(t *testing.T) {
	got, err := parseRSS("Name:\tx\nVmPeak:\t  9000 kB\nVmRSS:\t    1234 kB\nThreads:\t3\n")
	if err != nil || got != 1234<<10 {
		t.Errorf("parseRSS = %d, %v; want %d", got, err, 1234<<10)
	}
	for _, bad := range []string{"", "VmRSS:\tlots kB\n"} {
		if _, err := parseRSS(bad); err == nil {
			t.Errorf("parseRSS(%q): no error", bad)
		}
	}
	if runtime.GOOS != "linux" {
		return
	}
	if rss, err := RSS(os.Getpid()); err != nil || rss <= 0 {
		t.Errorf("RSS of this process: %d, %v", rss, err)
	}
	if n, err := OpenFiles(os.Getpid()); err != nil || n < 3 {
		t.Errorf("OpenFiles of this process: %d, %v", n, err)
	}
}
