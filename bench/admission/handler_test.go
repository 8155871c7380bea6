package main

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// TestHandlerTimes: the gateway's histograms are read from a real
// Prometheus endpoint, the run's share is what was observed between two
// scrapes, and its p99 is the upper bound of the bucket that holds it.
func TestHandlerTimes(t *testing.T) {
	reg := prometheus.NewRegistry()
	buckets := prometheus.ExponentialBucketsRange(0.0001, 60, 20) // the gateway's
	refusals := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "mcpstream_gateway_refusal_duration_seconds", Help: "h", Buckets: buckets})
	calls := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "mcpstream_gateway_request_duration_seconds", Help: "h", Buckets: buckets}, []string{"method"})
	reg.MustRegister(refusals, calls)
	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	defer srv.Close()
	ctx := context.Background()

	// Before the run: slow refusals that the run's figures must not hold.
	for range 100 {
		refusals.Observe(2)
	}
	calls.WithLabelValues("initialize").Observe(3)
	before, err := scrapeHandlerTimes(ctx, srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, ok := before.calls.quantileBucket(0.99); ok {
		t.Errorf("tools/call: observations before any call")
	}
	// The run: 985 refusals at 0.3 ms, 15 at 5 ms; calls at 30 ms.
	for i := range 1000 {
		if i < 985 {
			refusals.Observe(0.0003)
		} else {
			refusals.Observe(0.005)
		}
		calls.WithLabelValues("tools/call").Observe(0.03)
	}
	after, err := scrapeHandlerTimes(ctx, srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	run := after.refusals.since(before.refusals)
	if run.total() != 1000 {
		t.Fatalf("%d refusals in the run, want 1000", run.total())
	}
	bucket := func(v float64) (lo, hi time.Duration) { // the bucket holding v
		for i, b := range buckets {
			if v <= b {
				if i > 0 {
					lo = time.Duration(buckets[i-1] * float64(time.Second))
				}
				return lo, time.Duration(b * float64(time.Second))
			}
		}
		t.Fatalf("%v beyond the buckets", v)
		return 0, 0
	}
	for _, c := range []struct {
		what string
		h    histogram
		q, v float64
	}{
		{"refusals' p99: the 5 ms bucket", run, 0.99, 0.005},
		{"refusals' p98: the 0.3 ms bucket", run, 0.98, 0.0003},
		{"tools/call's p99: the 30 ms bucket", after.calls.since(before.calls), 0.99, 0.03},
	} {
		lo, hi, ok := c.h.quantileBucket(c.q)
		if wlo, whi := bucket(c.v); !ok || lo != wlo || hi != whi {
			t.Errorf("%s: %s-%s (%v), want %s-%s", c.what, lo, hi, ok, wlo, whi)
		}
	}
	if got := run.describe(0.99); !strings.HasPrefix(got, "p99 in ") || !strings.HasSuffix(got, " ms, of 1000") {
		t.Errorf("describe: %q", got)
	}
	empty := httptest.NewServer(promhttp.HandlerFor(prometheus.NewRegistry(), promhttp.HandlerOpts{}))
	defer empty.Close()
	if _, err := scrapeHandlerTimes(ctx, empty.URL); err == nil {
		t.Errorf("an endpoint without the histograms: no error")
	}
}
