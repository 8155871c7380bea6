package main

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// What the entry gateway's handler measured, from its own /metrics: the
// time from a request's arrival in the handler to its answer written,
// without the time the request waited in the kernel and for the
// gateway's goroutine to run, and without the driver's. Beside the
// driver's latencies it says how much of a refusal's tail is the
// gateway's handler.

// histogram is a Prometheus histogram's buckets: upper bounds in seconds,
// ascending, +Inf last, and their cumulative counts.
type histogram struct {
	bounds []float64
	counts []uint64
}

// handlerTimes are the entry gateway's histograms of refusals
// (mcpstream_gateway_refusal_duration_seconds) and of the tools/call
// requests it served (mcpstream_gateway_request_duration_seconds).
type handlerTimes struct{ refusals, calls histogram }

// scrapeHandlerTimes reads the gateway's histograms from its /metrics at
// url. It returns an error when the endpoint does not answer 200 or the
// refusal histogram is missing.
func scrapeHandlerTimes(ctx context.Context, url string) (handlerTimes, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return handlerTimes{}, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return handlerTimes{}, fmt.Errorf("scraping %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return handlerTimes{}, fmt.Errorf("scraping %s: %s", url, resp.Status)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		return handlerTimes{}, fmt.Errorf("parsing %s: %w", url, err)
	}
	var h handlerTimes
	refusals := fams["mcpstream_gateway_refusal_duration_seconds"].GetMetric()
	if len(refusals) != 1 {
		return handlerTimes{}, fmt.Errorf("%s: %d series of mcpstream_gateway_refusal_duration_seconds, want 1", url, len(refusals))
	}
	h.refusals = histogramOf(refusals[0].GetHistogram())
	for _, m := range fams["mcpstream_gateway_request_duration_seconds"].GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == "method" && l.GetValue() == "tools/call" {
				h.calls = histogramOf(m.GetHistogram())
			}
		}
	}
	return h, nil
}

// histogramOf copies a parsed histogram's buckets, +Inf added.
func histogramOf(p *dto.Histogram) histogram {
	var h histogram
	for _, b := range p.GetBucket() {
		h.bounds = append(h.bounds, b.GetUpperBound())
		h.counts = append(h.counts, b.GetCumulativeCount())
	}
	if n := len(h.bounds); n == 0 || !math.IsInf(h.bounds[n-1], 1) {
		h.bounds = append(h.bounds, math.Inf(1))
		h.counts = append(h.counts, p.GetSampleCount())
	}
	return h
}

// since is what h counted after before: the same buckets, the counts
// less before's (h itself when before has no buckets or other ones).
func (h histogram) since(before histogram) histogram {
	if len(before.counts) != len(h.counts) {
		return h
	}
	out := histogram{bounds: h.bounds, counts: make([]uint64, len(h.counts))}
	for i, c := range h.counts {
		out.counts[i] = c - min(c, before.counts[i])
	}
	return out
}

// total is the number of observations.
func (h histogram) total() uint64 {
	if len(h.counts) == 0 {
		return 0
	}
	return h.counts[len(h.counts)-1]
}

// quantileBucket is the bucket holding the q-th quantile (0 < q < 1):
// all a histogram can say is that the quantile is above lo and at most
// hi (hi is math.MaxInt64 for the +Inf bucket). ok is false without
// observations.
func (h histogram) quantileBucket(q float64) (lo, hi time.Duration, ok bool) {
	n := h.total()
	if n == 0 {
		return 0, 0, false
	}
	seconds := func(s float64) time.Duration {
		if math.IsInf(s, 1) {
			return time.Duration(math.MaxInt64)
		}
		return time.Duration(s * float64(time.Second))
	}
	rank := uint64(math.Ceil(q * float64(n)))
	for i, c := range h.counts {
		if c >= rank {
			if i > 0 {
				lo = seconds(h.bounds[i-1])
			}
			return lo, seconds(h.bounds[i]), true
		}
	}
	return seconds(h.bounds[len(h.bounds)-1]), time.Duration(math.MaxInt64), true
}

// describe says what h holds at q: "p99 in 0.41-0.82 ms, of 45000".
func (h histogram) describe(q float64) string {
	lo, hi, ok := h.quantileBucket(q)
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	switch {
	case !ok:
		return "none"
	case hi == time.Duration(math.MaxInt64):
		return fmt.Sprintf("p%g beyond %.2f ms, of %d", 100*q, ms(lo), h.total())
	}
	return fmt.Sprintf("p%g in %.2f-%.2f ms, of %d", 100*q, ms(lo), ms(hi), h.total())
}
