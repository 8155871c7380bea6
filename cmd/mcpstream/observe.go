package main

import (
	"context"
	"fmt"
	"io"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mcpstream/mcpstream/gateway"
	"github.com/mcpstream/mcpstream/internal/telemetry"
)

// observability is a process's metrics endpoint (--metrics-addr) and its
// OpenTelemetry providers (the OTEL_* environment).
type observability struct {
	// reg is the Prometheus registry the metrics endpoint serves (nil
	// without --metrics-addr).
	reg prometheus.Registerer
	// tel are the OpenTelemetry providers; their fields are nil for a
	// signal the environment does not ask for.
	tel  *telemetry.Providers
	stop func()
	// ready, once set, answers /readyz on the metrics endpoint.
	ready atomic.Pointer[func() error]
	// alive, once set, answers /healthz on the metrics endpoint.
	alive atomic.Pointer[func() error]
}

// observe starts the metrics endpoint on metricsAddr (none without it) and
// builds the OpenTelemetry providers of a process named service. It
// returns an error when the endpoint cannot listen or the environment
// names an exporter that cannot be built.
func observe(ctx context.Context, service, metricsAddr string, stdout io.Writer) (*observability, error) {
	o := &observability{}
	reg, stop, err := serveMetrics(metricsAddr, stdout, o.readiness, o.liveness)
	if err != nil {
		return nil, err
	}
	o.reg, o.stop = reg, stop
	if o.tel, err = telemetry.New(ctx, service, gateway.Version, reg); err != nil {
		stop()
		return nil, err
	}
	return o, nil
}

// readiness is the metrics endpoint's /readyz check: ready once the
// process set one that says so.
func (o *observability) readiness() error {
	if f := o.ready.Load(); f != nil {
		return (*f)()
	}
	return fmt.Errorf("starting")
}

// liveness is the metrics endpoint's /healthz check: alive unless the
// process set one that says otherwise.
func (o *observability) liveness() error {
	if f := o.alive.Load(); f != nil {
		return (*f)()
	}
	return nil
}

// close flushes the telemetry (up to 5s: the spans of the last requests
// reach the collector) and closes the metrics endpoint.
func (o *observability) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = o.tel.Shutdown(ctx)
	o.stop()
}
