package itest

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/types"
	"go.opentelemetry.io/otel/trace"

	"github.com/mcpstream/mcpstream/internal/testkit"
)

// composeEnv returns the environment of service s of docker-compose.yml as
// NAME=value entries, with the addresses that only exist on the compose
// network replaced by the test's: the NATS URLs, the listen addresses (an
// ephemeral loopback port each, as the replicas share the machine) and
// the OTLP endpoint; the other variables are the file's. It fails the test
// for an address variable the file does not set.
func composeEnv(t *testing.T, s types.ServiceConfig, natsURLs, otlp string) []string {
	t.Helper()
	replace := map[string]string{
		"MCPSTREAM_NATS":              natsURLs,
		"MCPSTREAM_ADDR":              "127.0.0.1:0",
		"MCPSTREAM_METRICS_ADDR":      "127.0.0.1:0",
		"OTEL_EXPORTER_OTLP_ENDPOINT": otlp,
	}
	var env []string
	for k, v := range s.Environment {
		if v == nil {
			t.Fatalf("%s: %s has no value", s.Name, k)
		}
		if r, ok := replace[k]; ok {
			env = append(env, k+"="+r)
			continue
		}
		env = append(env, k+"="+*v)
	}
	if _, ok := s.Environment["MCPSTREAM_NATS"]; !ok {
		t.Fatalf("%s: no MCPSTREAM_NATS", s.Name)
	}
	sort.Strings(env)
	// Spans leave within 50 ms instead of the SDK's 5 s.
	return append(env, "OTEL_BSP_SCHEDULE_DELAY=50")
}

// TestComposeTopology starts the topology of docker-compose.yml as
// processes: a three-node nats-server cluster, then provision, the
// gateway's and the worker's replicas (as many as the file's deploy
// replicas), each with the command and the environment the file gives it
// (the MCPSTREAM_* configuration and the OTEL_* variables; only addresses
// replaced). A call through each gateway is answered, and its trace,
// exported over the file's OTLP protocol, reaches the test's OTLP
// receiver whole: client, gateway, publish, the worker's wait and
// process, the handler.
func TestComposeTopology(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a three-node cluster of nats-server processes")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	abs, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	details, err := loader.LoadConfigFiles(ctx, []string{filepath.Join(abs, "docker-compose.yml")}, abs)
	if err != nil {
		t.Fatal(err)
	}
	details.Environment = types.Mapping{}
	p, err := loader.LoadWithContext(ctx, *details, func(o *loader.Options) { o.SetProjectName("mcpstream", true) })
	if err != nil {
		t.Fatal(err)
	}
	o := testkit.StartOTLP(t)
	tracer := clientTracer(t, o)
	cluster := startNATSCluster(t)

	run := func(name string, i int) *proc {
		s, ok := p.Services[name]
		if !ok {
			t.Fatalf("docker-compose.yml has no service %s", name)
		}
		if got := s.Environment["OTEL_EXPORTER_OTLP_PROTOCOL"]; got == nil || *got != "http/protobuf" {
			t.Fatalf("%s: OTEL_EXPORTER_OTLP_PROTOCOL %v, want http/protobuf (the receiver's HTTP endpoint is given)", name, got)
		}
		return startEnv(t, fmt.Sprintf("%s-%d", name, i), composeEnv(t, s, cluster.URLs(), o.HTTPEndpoint()), s.Command...)
	}
	replicas := func(name string) int {
		if d := p.Services[name].Deploy; d != nil && d.Replicas != nil {
			return *d.Replicas
		}
		return 1
	}

	// provision runs to completion first, as the file's
	// service_completed_successfully condition has it.
	prov := p.Services["provision"]
	pe := composeEnv(t, prov, cluster.URLs(), "")
	provision := startEnv(t, "provision", slices.DeleteFunc(pe, func(e string) bool { return strings.HasPrefix(e, "OTEL_") }), prov.Command...)
	if code := provision.wait(time.Minute); code != 0 {
		t.Fatalf("provision exited %d", code)
	}
	for i := range replicas("worker") {
		run("worker", i).waitLine(workerRE, 30*time.Second)
	}
	var endpoints []string
	for i := range replicas("gateway") {
		endpoints = append(endpoints, run("gateway", i).waitLine(endpointRE, 30*time.Second)[1])
	}
	if len(endpoints) < 2 {
		t.Fatalf("%d gateways in docker-compose.yml, want 2 or more", len(endpoints))
	}

	for i, endpoint := range endpoints {
		sid := initSession(t, endpoint)
		cctx, span := tracer.Start(ctx, clientSpan, trace.WithSpanKind(trace.SpanKindClient))
		r := post(t, endpoint, fmt.Sprintf(`{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"add","arguments":{"a":%d,"b":1}}}`, i),
			"Mcp-Session-Id", sid, "traceparent", traceparent(cctx))
		span.End()
		if r.status != http.StatusOK || !strings.Contains(string(r.body), fmt.Sprintf(`"sum":%d`, i+1)) {
			t.Fatalf("gateway %d: add: %d %s", i, r.status, r.body)
		}
		checkCallTrace(t, o, span.SpanContext(), "add", "2025-11-25", "mcpstream-gateway", 1)
	}
}
