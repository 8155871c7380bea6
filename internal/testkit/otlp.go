package testkit

import (
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	collmetricpb "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	colltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	_ "google.golang.org/grpc/encoding/gzip" // OTEL_EXPORTER_OTLP_COMPRESSION=gzip over gRPC
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// OTLP is an OpenTelemetry collector in miniature for end-to-end tests: it
// receives traces and metrics over OTLP/HTTP (protobuf, gzip or not) and
// OTLP/gRPC on 127.0.0.1, and keeps what arrives, decoded into [Span] and
// [Metric], for the test to wait on and assert. It exports nothing on.
//
// Point a process at it with [OTLP.Env] (its environment) or, in the test's
// own process, with [OTLP.HTTPEndpoint] or [OTLP.GRPCEndpoint].
type OTLP struct {
	t        testing.TB
	httpURL  string
	grpcAddr string

	mu       sync.Mutex
	spans    []Span
	metrics  []Metric
	exports  int           // requests accepted, traces and metrics, both transports
	rejected []string      // requests refused, with why
	changed  chan struct{} // closed, and replaced, on every request
}

// StartOTLP starts a receiver on two free ports of 127.0.0.1, one for
// OTLP/HTTP and one for OTLP/gRPC, both stopped when the test ends. A
// provider or process that exports to it must be shut down before that:
// register its shutdown with t.Cleanup after StartOTLP (cleanups run last
// registered first), or stop the process within the test.
func StartOTLP(t testing.TB) *OTLP {
	t.Helper()
	o := &OTLP{t: t, changed: make(chan struct{})}

	mux := http.NewServeMux()
	mux.HandleFunc("/v1/traces", func(w http.ResponseWriter, r *http.Request) {
		req := new(colltracepb.ExportTraceServiceRequest)
		if o.serveHTTP(w, r, req, &colltracepb.ExportTraceServiceResponse{}) {
			o.addSpans(req)
		}
	})
	mux.HandleFunc("/v1/metrics", func(w http.ResponseWriter, r *http.Request) {
		req := new(collmetricpb.ExportMetricsServiceRequest)
		if o.serveHTTP(w, r, req, &collmetricpb.ExportMetricsServiceResponse{}) {
			o.addMetrics(req)
		}
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		o.reject(w, r, http.StatusNotFound, "no OTLP signal at this path (want /v1/traces or /v1/metrics)")
	})
	hs := httptest.NewServer(mux) // 127.0.0.1, a free port
	o.httpURL = hs.URL
	t.Cleanup(hs.Close)

	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	o.grpcAddr = lis.Addr().String()
	gs := grpc.NewServer()
	colltracepb.RegisterTraceServiceServer(gs, traceService{o: o})
	collmetricpb.RegisterMetricsServiceServer(gs, metricsService{o: o})
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = gs.Serve(lis) // returns when stopped
	}()
	t.Cleanup(func() {
		gs.Stop()
		<-served
	})
	return o
}

// HTTPEndpoint is the base URL of the OTLP/HTTP receiver,
// http://127.0.0.1:PORT, as OTEL_EXPORTER_OTLP_ENDPOINT takes it with
// OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf: the exporters append
// /v1/traces and /v1/metrics. (The per-signal variables,
// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT and the like, and the exporters'
// WithEndpointURL want the full URL, this plus /v1/traces.)
func (o *OTLP) HTTPEndpoint() string { return o.httpURL }

// GRPCEndpoint is the address of the OTLP/gRPC receiver as a URL,
// http://127.0.0.1:PORT, as OTEL_EXPORTER_OTLP_ENDPOINT takes it with
// OTEL_EXPORTER_OTLP_PROTOCOL=grpc: the http scheme makes the exporter
// connect without TLS.
func (o *OTLP) GRPCEndpoint() string { return "http://" + o.grpcAddr }

// Env is the environment, as NAME=value entries to append to an
// exec.Cmd's Env (later entries win), that points a process's OTLP
// exporters at this receiver over protocol, "http/protobuf" or "grpc":
// traces and metrics exporters set to otlp, the endpoint and protocol, and
// short export delays (OTEL_BSP_SCHEDULE_DELAY 50 ms instead of the SDK's
// 5 s, OTEL_METRIC_EXPORT_INTERVAL 100 ms instead of 60 s) so that a test
// sees a running process's spans and metrics without waiting for it to
// exit. It fails the test for another protocol.
func (o *OTLP) Env(protocol string) []string {
	o.t.Helper()
	var endpoint string
	switch protocol {
	case "http/protobuf":
		endpoint = o.HTTPEndpoint()
	case "grpc":
		endpoint = o.GRPCEndpoint()
	default:
		o.t.Fatalf("testkit: OTLP protocol %q: want http/protobuf or grpc", protocol)
	}
	return []string{
		"OTEL_TRACES_EXPORTER=otlp",
		"OTEL_METRICS_EXPORTER=otlp",
		"OTEL_EXPORTER_OTLP_ENDPOINT=" + endpoint,
		"OTEL_EXPORTER_OTLP_PROTOCOL=" + protocol,
		"OTEL_BSP_SCHEDULE_DELAY=50",
		"OTEL_METRIC_EXPORT_INTERVAL=100",
	}
}

// Spans returns the spans received so far, in the order they arrived.
// They share their maps with the receiver: read them, don't change them.
func (o *OTLP) Spans() []Span {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]Span(nil), o.spans...)
}

// Trace returns the spans received so far of the trace whose id is traceID
// (32 hex digits, as trace.TraceID's String gives it).
func (o *OTLP) Trace(traceID string) []Span {
	var out []Span
	for _, s := range o.Spans() {
		if s.TraceID == traceID {
			out = append(out, s)
		}
	}
	return out
}

// Metrics returns the metrics received so far, one per metric per export,
// in the order they arrived. With cumulative temporality, the SDK's
// default, every export repeats each metric with its running totals: the
// last one of a name is the current one.
func (o *OTLP) Metrics() []Metric {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]Metric(nil), o.metrics...)
}

// Await blocks until the spans received so far satisfy cond and returns
// them. It calls cond once at first and then once after each request that
// arrives, never in between; after timeout it fails the test with what was
// received, as a tree, and what was refused. Call it from the test's
// goroutine.
func (o *OTLP) Await(timeout time.Duration, cond func([]Span) bool) []Span {
	o.t.Helper()
	var got []Span
	if o.wait(timeout, func() bool { got = o.Spans(); return cond(got) }) {
		return got
	}
	o.t.Fatalf("testkit: waited %s for the spans to satisfy the condition; %s", timeout, o.dump())
	return got
}

// AwaitMetrics is [OTLP.Await] for the metrics received so far.
func (o *OTLP) AwaitMetrics(timeout time.Duration, cond func([]Metric) bool) []Metric {
	o.t.Helper()
	var got []Metric
	if o.wait(timeout, func() bool { got = o.Metrics(); return cond(got) }) {
		return got
	}
	names := map[string]bool{}
	for _, m := range got {
		names[m.Name] = true
	}
	o.t.Fatalf("testkit: waited %s for the metrics to satisfy the condition; metric names received: %v; %s",
		timeout, sortedKeys(names), o.dump())
	return got
}

// wait calls ok at first and after every request until it holds (true) or
// timeout passes (false).
func (o *OTLP) wait(timeout time.Duration, ok func() bool) bool {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		o.mu.Lock()
		changed := o.changed // taken before ok looks, so nothing is missed
		o.mu.Unlock()
		if ok() {
			return true
		}
		select {
		case <-changed:
		case <-timer.C:
			return false
		}
	}
}

// dump says what the receiver got, for a failure message.
func (o *OTLP) dump() string {
	o.mu.Lock()
	n, rejected := o.exports, append([]string(nil), o.rejected...)
	o.mu.Unlock()
	spans := o.Spans()
	var b strings.Builder
	fmt.Fprintf(&b, "the receiver (HTTP %s, gRPC %s) accepted %d export request(s) with %d span(s)",
		o.HTTPEndpoint(), o.GRPCEndpoint(), n, len(spans))
	if len(rejected) > 0 {
		fmt.Fprintf(&b, " and refused %d:\n  %s", len(rejected), strings.Join(rejected, "\n  "))
	}
	if len(spans) > 0 {
		b.WriteString("\nspans:\n" + strings.TrimSuffix(Format(spans), "\n"))
	}
	return b.String()
}

// notify wakes the waiters; call with o.mu held.
func (o *OTLP) notify() {
	close(o.changed)
	o.changed = make(chan struct{})
}

func (o *OTLP) addSpans(req *colltracepb.ExportTraceServiceRequest) {
	spans := decodeSpans(req)
	o.mu.Lock()
	defer o.mu.Unlock()
	o.spans = append(o.spans, spans...)
	o.exports++
	o.notify()
}

func (o *OTLP) addMetrics(req *collmetricpb.ExportMetricsServiceRequest) {
	metrics := decodeMetrics(req)
	o.mu.Lock()
	defer o.mu.Unlock()
	o.metrics = append(o.metrics, metrics...)
	o.exports++
	o.notify()
}

// serveHTTP reads an OTLP/HTTP protobuf request into req and answers resp,
// reporting whether it did; otherwise it has answered with the error.
func (o *OTLP) serveHTTP(w http.ResponseWriter, r *http.Request, req, resp proto.Message) bool {
	if r.Method != http.MethodPost {
		o.reject(w, r, http.StatusMethodNotAllowed, "OTLP/HTTP takes POST")
		return false
	}
	if ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); ct != "application/x-protobuf" {
		o.reject(w, r, http.StatusUnsupportedMediaType, fmt.Sprintf("content type %q: this receiver takes application/x-protobuf", ct))
		return false
	}
	body := io.Reader(http.MaxBytesReader(w, r.Body, 64<<20))
	switch enc := r.Header.Get("Content-Encoding"); enc {
	case "", "identity":
	case "gzip":
		zr, err := gzip.NewReader(body)
		if err != nil {
			o.reject(w, r, http.StatusBadRequest, "gzip: "+err.Error())
			return false
		}
		body = zr
	default:
		o.reject(w, r, http.StatusUnsupportedMediaType, fmt.Sprintf("content encoding %q: want gzip or none", enc))
		return false
	}
	data, err := io.ReadAll(body)
	if err != nil {
		o.reject(w, r, http.StatusBadRequest, "reading the body: "+err.Error())
		return false
	}
	if err := proto.Unmarshal(data, req); err != nil {
		o.reject(w, r, http.StatusBadRequest, "decoding the body: "+err.Error())
		return false
	}
	out, err := proto.Marshal(resp)
	if err != nil {
		o.reject(w, r, http.StatusInternalServerError, err.Error())
		return false
	}
	w.Header().Set("Content-Type", "application/x-protobuf")
	_, _ = w.Write(out)
	return true
}

// reject answers an OTLP/HTTP request with code and, as the protocol has
// it, a google.rpc.Status saying why, and keeps why for the failure dump.
func (o *OTLP) reject(w http.ResponseWriter, r *http.Request, code int, why string) {
	o.mu.Lock()
	o.rejected = append(o.rejected, fmt.Sprintf("%s %s: %d %s", r.Method, r.URL.Path, code, why))
	o.notify()
	o.mu.Unlock()
	body, _ := proto.Marshal(status.New(codes.InvalidArgument, why).Proto())
	w.Header().Set("Content-Type", "application/x-protobuf")
	w.WriteHeader(code)
	_, _ = w.Write(body)
}

type traceService struct {
	colltracepb.UnimplementedTraceServiceServer
	o *OTLP
}

func (s traceService) Export(_ context.Context, req *colltracepb.ExportTraceServiceRequest) (*colltracepb.ExportTraceServiceResponse, error) {
	s.o.addSpans(req)
	return &colltracepb.ExportTraceServiceResponse{}, nil
}

type metricsService struct {
	collmetricpb.UnimplementedMetricsServiceServer
	o *OTLP
}

func (s metricsService) Export(_ context.Context, req *collmetricpb.ExportMetricsServiceRequest) (*collmetricpb.ExportMetricsServiceResponse, error) {
	s.o.addMetrics(req)
	return &collmetricpb.ExportMetricsServiceResponse{}, nil
}
