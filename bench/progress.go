package bench

import (
	"fmt"
	"io"
	"time"

	"github.com/schollz/progressbar/v3"
)

// progressEvery is how often the progress bar is redrawn.
const progressEvery = 200 * time.Millisecond

// progress draws a bar on w showing the elapsed and total time of the run
// and the calls made so far, until the returned function is called. A nil w
// draws nothing.
func (r *runner) progress(w io.Writer) (stop func()) {
	if w == nil {
		return func() {}
	}
	total := r.cfg.Warmup + r.cfg.Duration
	bar := progressbar.NewOptions64(total.Milliseconds(),
		progressbar.OptionSetWriter(w),
		progressbar.OptionSetWidth(30),
		progressbar.OptionSetPredictTime(false),
		progressbar.OptionSetElapsedTime(false),
		progressbar.OptionThrottle(progressEvery/2),
		progressbar.OptionSetRenderBlankState(true),
		progressbar.OptionSetDescription(r.describe(0, total)),
	)
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(progressEvery)
		defer t.Stop()
		for {
			select {
			case <-done:
				_ = bar.Set64(total.Milliseconds())
				bar.Describe(r.describe(min(time.Since(r.start), total), total))
				_ = bar.Finish()
				fmt.Fprintln(w)
				return
			case <-t.C:
				el := min(time.Since(r.start), total)
				bar.Describe(r.describe(el, total))
				_ = bar.Set64(el.Milliseconds())
			}
		}
	}()
	return func() {
		close(done)
		<-finished
	}
}

// describe is the bar's text: phase, elapsed/total and calls.
func (r *runner) describe(elapsed, total time.Duration) string {
	phase := "measuring"
	if elapsed < r.cfg.Warmup {
		phase = "warm-up  "
	}
	return fmt.Sprintf("%s %5.1fs/%s  calls %-9d ok %-9d", phase,
		elapsed.Seconds(), total, r.sent.Load(), r.succeeded.Load())
}
