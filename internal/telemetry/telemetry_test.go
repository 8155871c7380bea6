package telemetry

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"

	"github.com/mcpstream/mcpstream/internal/testkit"
)

// TestSignalsFollowTheEnvironment: nothing is on unless the environment
// asks; an exporter named none turns a signal off even with an endpoint;
// an unknown exporter name is an error.
func TestSignalsFollowTheEnvironment(t *testing.T) {
	ctx := context.Background()
	for _, k := range []string{"OTEL_TRACES_EXPORTER", "OTEL_METRICS_EXPORTER", "OTEL_EXPORTER_OTLP_ENDPOINT",
		"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT"} {
		t.Setenv(k, "")
	}
	p, err := New(ctx, "svc", "1", nil)
	if err != nil || p.Tracer != nil || p.Meter != nil || p.Propagator == nil {
		t.Fatalf("no environment: %+v, %v; want no providers and a propagator", p, err)
	}

	t.Setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://127.0.0.1:1/v1/traces")
	p, err = New(ctx, "svc", "1", nil)
	if err != nil || p.Tracer == nil || p.Meter != nil {
		t.Fatalf("a traces endpoint: %+v, %v; want a tracer provider only", p, err)
	}
	_ = p.Shutdown(ctx)

	t.Setenv("OTEL_TRACES_EXPORTER", "none")
	if p, err = New(ctx, "svc", "1", nil); err != nil || p.Tracer != nil {
		t.Fatalf("OTEL_TRACES_EXPORTER=none: %+v, %v; want no tracer provider", p, err)
	}
	t.Setenv("OTEL_TRACES_EXPORTER", "carrier-pigeon")
	if _, err = New(ctx, "svc", "1", nil); err == nil || !strings.Contains(err.Error(), "traces exporter") {
		t.Fatalf("an unknown exporter: %v, want an error", err)
	}
}

// TestPrometheusServesTheMetrics: with a registry, the OpenTelemetry
// metrics are gathered from it beside the Prometheus ones.
func TestPrometheusServesTheMetrics(t *testing.T) {
	ctx := context.Background()
	t.Setenv("OTEL_METRICS_EXPORTER", "")
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "")
	t.Setenv("OTEL_SERVICE_NAME", "from-env")
	reg := prometheus.NewRegistry()
	p, err := New(ctx, "svc", "1", reg)
	if err != nil || p.Meter == nil {
		t.Fatalf("%+v, %v; want a meter provider", p, err)
	}
	defer p.Shutdown(ctx)
	h, err := p.Meter.Meter("test").Float64Histogram("mcp.server.operation.duration")
	if err != nil {
		t.Fatal(err)
	}
	h.Record(ctx, 0.25)
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var found, service bool
	for _, f := range families {
		if f.GetName() == "mcp_server_operation_duration" || strings.HasPrefix(f.GetName(), "mcp_server_operation_duration") {
			found = true
		}
		if f.GetName() == "target_info" {
			for _, l := range f.GetMetric()[0].GetLabel() {
				if l.GetName() == "service_name" && l.GetValue() == "from-env" {
					service = true
				}
			}
		}
	}
	if !found || !service {
		t.Fatalf("gathered %d families; histogram found %v, service.name from OTEL_SERVICE_NAME %v", len(families), found, service)
	}
}

// TestTracesFollowTheEnvironment: the exporter's endpoint and protocol,
// the batch span processor's delay, the sampler (a parent-based one
// here) and the resource all come from OTEL_* variables. With
// parentbased_traceidratio at 0, a root span is dropped and the child of
// a sampled remote parent (a client's traceparent) is exported; the spans
// arrive at the OTLP receiver without a flush (OTEL_BSP_SCHEDULE_DELAY),
// named by OTEL_SERVICE_NAME, with OTEL_RESOURCE_ATTRIBUTES.
func TestTracesFollowTheEnvironment(t *testing.T) {
	o := testkit.StartOTLP(t)
	for _, kv := range o.Env("http/protobuf") {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	t.Setenv("OTEL_METRICS_EXPORTER", "none")
	t.Setenv("OTEL_TRACES_SAMPLER", "parentbased_traceidratio")
	t.Setenv("OTEL_TRACES_SAMPLER_ARG", "0")
	t.Setenv("OTEL_SERVICE_NAME", "checkout-gateway")
	t.Setenv("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment.name=staging")
	ctx := context.Background()
	p, err := New(ctx, "mcpstream-gateway", "1", nil)
	if err != nil || p.Tracer == nil {
		t.Fatalf("%+v, %v; want a tracer provider", p, err)
	}
	defer p.Shutdown(ctx)
	tracer := p.Tracer.Tracer("test")
	_, root := tracer.Start(ctx, "root")
	root.End()
	remote := trace.NewSpanContext(trace.SpanContextConfig{TraceID: trace.TraceID{1}, SpanID: trace.SpanID{2},
		TraceFlags: trace.FlagsSampled, Remote: true})
	_, child := tracer.Start(trace.ContextWithRemoteSpanContext(ctx, remote), "child")
	child.End()
	spans := o.Await(10*time.Second, func(s []testkit.Span) bool { return len(testkit.ByName(s, "child")) == 1 })
	if n := len(testkit.ByName(spans, "root")); n != 0 {
		t.Errorf("%d root spans exported with a ratio of 0", n)
	}
	c := testkit.ByName(spans, "child")[0]
	if c.Service() != "checkout-gateway" || c.Resource["deployment.environment.name"] != "staging" {
		t.Errorf("resource %v: want service.name and deployment.environment.name from the environment", c.Resource)
	}
}
