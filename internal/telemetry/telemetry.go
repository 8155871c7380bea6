// Package telemetry builds the OpenTelemetry providers of an mcpstream
// process (dev, gateway, worker) from the standard OTEL_* environment
// variables, and nothing else: the contrib package autoexport picks the
// exporters (OTEL_TRACES_EXPORTER, OTEL_METRICS_EXPORTER: otlp, console,
// none) and the OTLP exporters read their endpoint, protocol
// (http/protobuf or grpc), headers and timeouts (OTEL_EXPORTER_OTLP_* and
// the per-signal variants); the SDK reads the sampler
// (OTEL_TRACES_SAMPLER, OTEL_TRACES_SAMPLER_ARG, parent-based ones
// included), the batch span processor's settings (OTEL_BSP_*), and the
// resource (OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES).
//
// A signal is on only when the environment asks for it: its exporter
// variable names one other than none, or an OTLP endpoint is set for it.
// With nothing set, New returns no tracer provider and, unless a
// Prometheus registry is given, no meter provider: the gateway and the
// workers then make no span and record no OpenTelemetry metric. With a
// registry (the --metrics-addr endpoint), the OpenTelemetry metrics are
// also served there, beside the Prometheus ones: one endpoint, not two.
package telemetry

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/contrib/exporters/autoexport"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.41.0"
	"go.opentelemetry.io/otel/trace"
)

// Providers are a process's OpenTelemetry providers.
type Providers struct {
	// Tracer is nil when no traces exporter is configured.
	Tracer trace.TracerProvider
	// Meter is nil when neither a metrics exporter nor a Prometheus
	// registry is configured.
	Meter metric.MeterProvider
	// Propagator is W3C trace context and baggage.
	Propagator propagation.TextMapPropagator

	shutdown []func(context.Context) error
}

// New builds the providers for a process whose service.name is service
// unless OTEL_SERVICE_NAME (or OTEL_RESOURCE_ATTRIBUTES) says otherwise;
// prom, if set, also serves the OpenTelemetry metrics. It returns an error
// when an exporter the environment names cannot be built (an unknown
// name, a malformed endpoint).
func New(ctx context.Context, service, version string, prom prometheus.Registerer) (*Providers, error) {
	p := &Providers{Propagator: propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})}
	tracesOn, metricsOn := signalOn("TRACES"), signalOn("METRICS")
	if !tracesOn && !metricsOn && prom == nil {
		return p, nil
	}
	res, err := resource.New(ctx,
		resource.WithAttributes(semconv.ServiceName(service), semconv.ServiceVersion(version)),
		resource.WithFromEnv(), resource.WithTelemetrySDK(), resource.WithProcessPID(), resource.WithHost())
	if err != nil && !errors.Is(err, resource.ErrPartialResource) {
		return nil, fmt.Errorf("telemetry: resource: %w", err)
	}
	if tracesOn {
		exp, err := autoexport.NewSpanExporter(ctx)
		if err != nil {
			return nil, fmt.Errorf("telemetry: traces exporter: %w", err)
		}
		tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
		p.Tracer = tp
		p.shutdown = append(p.shutdown, tp.Shutdown)
	}
	var readers []sdkmetric.Option
	if metricsOn {
		r, err := autoexport.NewMetricReader(ctx)
		if err != nil {
			_ = p.Shutdown(ctx)
			return nil, fmt.Errorf("telemetry: metrics exporter: %w", err)
		}
		readers = append(readers, sdkmetric.WithReader(r))
	}
	if prom != nil {
		r, err := otelprom.New(otelprom.WithRegisterer(prom), otelprom.WithoutScopeInfo())
		if err != nil {
			_ = p.Shutdown(ctx)
			return nil, fmt.Errorf("telemetry: Prometheus bridge: %w", err)
		}
		readers = append(readers, sdkmetric.WithReader(r))
	}
	if len(readers) > 0 {
		mp := sdkmetric.NewMeterProvider(append(readers, sdkmetric.WithResource(res))...)
		p.Meter = mp
		p.shutdown = append(p.shutdown, mp.Shutdown)
	}
	return p, nil
}

// signalOn reports whether the environment asks for signal ("TRACES" or
// "METRICS"): its exporter variable names one other than none, or an
// OTLP endpoint is set for it.
func signalOn(signal string) bool {
	if v, ok := os.LookupEnv("OTEL_" + signal + "_EXPORTER"); ok && v != "" {
		return v != "none"
	}
	return os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || os.Getenv("OTEL_EXPORTER_OTLP_"+signal+"_ENDPOINT") != ""
}

// Shutdown flushes what the exporters hold (spans ended, metrics
// recorded) and stops them, within ctx. It returns the first error.
func (p *Providers) Shutdown(ctx context.Context) error {
	var first error
	for _, f := range p.shutdown {
		if err := f(ctx); err != nil && first == nil {
			first = err
		}
	}
	p.shutdown = nil
	return first
}
