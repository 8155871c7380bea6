package testkit_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/contrib/exporters/autoexport"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	colltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/mcpstream/mcpstream/internal/testkit"
)

// TestOTLPHTTPRejects: the HTTP receiver answers an empty but valid
// request with an encoded response, and refuses, with a google.rpc.Status,
// a malformed body, a body that claims gzip but is not, another content
// type, another method and another path; none of them adds a span.
func TestOTLPHTTPRejects(t *testing.T) {
	o := testkit.StartOTLP(t)
	valid, err := proto.Marshal(&colltracepb.ExportTraceServiceRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var gzipped bytes.Buffer
	zw := gzip.NewWriter(&gzipped)
	zw.Write([]byte("\x0a\x05ab")) // field 1, 5 bytes long, but 2 follow
	zw.Close()
	cases := []struct {
		name, method, path, contentType, encoding string
		body                                      []byte
		want                                      int
	}{
		{"valid", "POST", "/v1/traces", "application/x-protobuf", "", valid, 200},
		{"malformed", "POST", "/v1/traces", "application/x-protobuf", "", []byte("\x0a\x05ab"), 400},
		{"malformed gzip", "POST", "/v1/traces", "application/x-protobuf", "gzip", gzipped.Bytes(), 400},
		{"not gzip", "POST", "/v1/traces", "application/x-protobuf", "gzip", valid, 400},
		{"malformed metrics", "POST", "/v1/metrics", "application/x-protobuf", "", []byte("\x0a\x05ab"), 400},
		{"json", "POST", "/v1/traces", "application/json", "", []byte("{}"), 415},
		{"get", "GET", "/v1/traces", "", "", nil, 405},
		{"other path", "POST", "/v1/trace", "application/x-protobuf", "", valid, 404},
	}
	for _, c := range cases {
		req, err := http.NewRequest(c.method, o.HTTPEndpoint()+c.path, bytes.NewReader(c.body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", c.contentType)
		if c.encoding != "" {
			req.Header.Set("Content-Encoding", c.encoding)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != c.want || resp.Header.Get("Content-Type") != "application/x-protobuf" {
			t.Errorf("%s: %d %s, want %d application/x-protobuf", c.name, resp.StatusCode, resp.Header.Get("Content-Type"), c.want)
			continue
		}
		if c.want == 200 {
			if err := proto.Unmarshal(body, &colltracepb.ExportTraceServiceResponse{}); err != nil {
				t.Errorf("%s: the response does not decode: %v", c.name, err)
			}
			continue
		}
		var st spb.Status
		if err := proto.Unmarshal(body, &st); err != nil || st.GetMessage() == "" {
			t.Errorf("%s: the error body is no google.rpc.Status with a message (%v): %q", c.name, err, body)
		}
	}
	if n := len(o.Spans()); n != 0 {
		t.Errorf("%d spans after requests with none, want 0", n)
	}
}

// TestOTLPFromEnvironment configures the exporters as the mcpstream
// processes do, from OTEL_* variables only (autoexport), with Env's
// entries: spans and metrics arrive over either protocol, without a flush
// (Env's short export delays; the SDK's defaults, 5 s and 60 s, are past
// the waits), with the service name of OTEL_SERVICE_NAME.
func TestOTLPFromEnvironment(t *testing.T) {
	for _, protocol := range []string{"http/protobuf", "grpc"} {
		t.Run(strings.ReplaceAll(protocol, "/", "_"), func(t *testing.T) {
			o := testkit.StartOTLP(t)
			for _, kv := range o.Env(protocol) {
				k, v, _ := strings.Cut(kv, "=")
				t.Setenv(k, v)
			}
			t.Setenv("OTEL_SERVICE_NAME", "from-env")
			ctx := context.Background()
			res, err := resource.New(ctx, resource.WithFromEnv())
			if err != nil {
				t.Fatal(err)
			}
			exp, err := autoexport.NewSpanExporter(ctx)
			if err != nil {
				t.Fatal(err)
			}
			tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
			t.Cleanup(func() { tp.Shutdown(context.Background()) })
			reader, err := autoexport.NewMetricReader(ctx)
			if err != nil {
				t.Fatal(err)
			}
			mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader), sdkmetric.WithResource(res))
			t.Cleanup(func() { mp.Shutdown(context.Background()) })

			_, span := tp.Tracer("testkit/env").Start(ctx, "env-span")
			span.End()
			meter := mp.Meter("testkit/env")
			requests, _ := meter.Int64Counter("env.requests", metric.WithUnit("{request}"))
			requests.Add(ctx, 3, metric.WithAttributes(attribute.String("route", "/x")))
			latency, _ := meter.Float64Histogram("env.latency", metric.WithUnit("s"))
			latency.Record(ctx, 0.25)

			spans := o.Await(3*time.Second, func(s []testkit.Span) bool { return len(s) > 0 })
			if len(spans) != 1 || spans[0].Name != "env-span" || spans[0].Service() != "from-env" || spans[0].Scope != "testkit/env" {
				t.Errorf("spans %+v, want env-span of service from-env, scope testkit/env", spans)
			}
			o.AwaitMetrics(3*time.Second, func(ms []testkit.Metric) bool {
				var counted, timed bool
				for _, m := range ms {
					switch {
					case m.Name == "env.requests" && m.Type == "sum" && m.Unit == "{request}" && m.Service() == "from-env" && len(m.Points) == 1:
						counted = m.Points[0].Value == 3 && m.Points[0].Attributes["route"] == "/x"
					case m.Name == "env.latency" && m.Type == "histogram" && len(m.Points) == 1:
						timed = m.Points[0].Count == 1 && m.Points[0].Value == 0.25
					}
				}
				return counted && timed
			})
		})
	}
}
