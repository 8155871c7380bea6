package itest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/mcpstream/mcpstream/gateway"
	"github.com/mcpstream/mcpstream/internal/testkit"
	"github.com/mcpstream/mcpstream/workers"
)

// BenchmarkToolsCall measures the whole path of a tools/call in one
// process: HTTP on loopback -> gateway -> JetStream (file storage) ->
// demo worker -> reply -> HTTP response, with one session per parallel
// client (run with -cpu to vary the clients' goroutines):
//
//   - metrics=off: no metrics, no telemetry (what `dev` runs with no flag
//     and no OTEL_* variable);
//   - metrics=on: the gateway's and the worker's Prometheus metrics on a
//     registry;
//   - traces=discard: every call traced (always-on sampling) by the
//     OpenTelemetry SDK's batch span processor, whose exporter drops the
//     spans: the cost of making them;
//   - traces=otlp: the same, exported over OTLP/HTTP (protobuf) to a
//     receiver in the same process, which decodes them: the cost of
//     making and sending them, plus the receiver's.
func BenchmarkToolsCall(b *testing.B) {
	b.Run("metrics=off", func(b *testing.B) { benchToolsCall(b, gateway.Config{}) })
	b.Run("metrics=on", func(b *testing.B) { benchToolsCall(b, gateway.Config{Metrics: prometheus.NewRegistry()}) })
	b.Run("traces=discard", func(b *testing.B) {
		benchToolsCall(b, gateway.Config{TracerProvider: benchTracer(b, discardSpans{})})
	})
	b.Run("traces=otlp", func(b *testing.B) {
		o := testkit.StartOTLP(b)
		exp, err := otlptracehttp.New(context.Background(), otlptracehttp.WithEndpointURL(o.HTTPEndpoint()+"/v1/traces"))
		if err != nil {
			b.Fatal(err)
		}
		benchToolsCall(b, gateway.Config{TracerProvider: benchTracer(b, exp)})
	})
}

// BenchmarkToolsCallRecorded is BenchmarkToolsCall's metrics=off (no
// metrics, no telemetry) with the demo group's results recorded
// (workers.Options.RecordResults: each answer also published, without
// waiting, to the group's record stream on file storage) and without:
// what recording costs a call, the NATS server's storing of the records
// included, since it shares the machine. Compare the two with
// benchstat -col /record.
func BenchmarkToolsCallRecorded(b *testing.B) {
	b.Run("record=off", func(b *testing.B) { benchCalls(b, newStack(b, gateway.Config{})) })
	b.Run("record=on", func(b *testing.B) {
		benchCalls(b, newStackWith(b, gateway.Config{}, workers.Options{RecordResults: true}))
	})
}

// benchTracer is a tracer provider sampling every span, batched to exp as
// the processes' are (the SDK's default batch settings), shut down at the
// end of the benchmark.
func benchTracer(b *testing.B, exp sdktrace.SpanExporter) *sdktrace.TracerProvider {
	tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.AlwaysSample()), sdktrace.WithBatcher(exp))
	b.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	return tp
}

// discardSpans is a span exporter that drops what it is given.
type discardSpans struct{}

func (discardSpans) ExportSpans(context.Context, []sdktrace.ReadOnlySpan) error { return nil }
func (discardSpans) Shutdown(context.Context) error                             { return nil }

func benchToolsCall(b *testing.B, cfg gateway.Config) { benchCalls(b, newStack(b, cfg)) }

// benchCalls makes echo calls on s from 32 parallel clients, one session
// each, and checks each answer. Besides the wall time it reports the
// process's CPU time a call (cpu-ns/op: client, gateway, NATS server and
// worker together), which other processes on the machine disturb less.
func benchCalls(b *testing.B, s *stack) {
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1024}}
	var id atomic.Int64
	b.SetParallelism(32)
	b.ReportAllocs()
	b.ResetTimer()
	if cpu0, ok := processCPU(); ok {
		defer func() {
			cpu, _ := processCPU()
			b.ReportMetric(float64(cpu-cpu0)/float64(b.N), "cpu-ns/op")
		}()
	}
	b.RunParallel(func(pb *testing.PB) {
		sid := initSession(b, s.url)
		for pb.Next() {
			body := fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":"echo","arguments":{"text":"hello"}}}`, id.Add(1))
			if !benchPost(b, hc, s.url, sid, body, `"text":"hello"`) {
				return
			}
		}
	})
}

// benchPost posts body on session sid and reports whether the answer is
// 200 and holds want; otherwise it marks b failed.
func benchPost(b testing.TB, hc *http.Client, url, sid, body, want string) bool {
	req, _ := http.NewRequest(http.MethodPost, url, bytes.NewBufferString(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Mcp-Session-Id", sid)
	resp, err := hc.Do(req)
	if err != nil {
		b.Error(err)
		return false
	}
	out, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !bytes.Contains(out, []byte(want)) {
		b.Errorf("status %d: %s", resp.StatusCode, out)
		return false
	}
	return true
}
