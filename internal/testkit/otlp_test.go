package testkit_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/mcpstream/mcpstream/internal/testkit"
)

// TestOTLPRoundTrip sends a parent and a child span through the SDK's
// OTLP exporters, over HTTP (plain and gzip) and gRPC (plain and gzip),
// and finds every field again in what the receiver decoded: ids and
// parenthood, kinds, times, attributes of each type, events, a link, both
// statuses, the resource's service.name and the scope.
func TestOTLPRoundTrip(t *testing.T) {
	exporters := map[string]func(context.Context, *testkit.OTLP) (sdktrace.SpanExporter, error){
		"http": func(ctx context.Context, o *testkit.OTLP) (sdktrace.SpanExporter, error) {
			return otlptracehttp.New(ctx, otlptracehttp.WithEndpointURL(o.HTTPEndpoint()+"/v1/traces"))
		},
		"http gzip": func(ctx context.Context, o *testkit.OTLP) (sdktrace.SpanExporter, error) {
			return otlptracehttp.New(ctx, otlptracehttp.WithEndpointURL(o.HTTPEndpoint()+"/v1/traces"),
				otlptracehttp.WithCompression(otlptracehttp.GzipCompression))
		},
		"grpc": func(ctx context.Context, o *testkit.OTLP) (sdktrace.SpanExporter, error) {
			return otlptracegrpc.New(ctx, otlptracegrpc.WithEndpointURL(o.GRPCEndpoint()))
		},
		"grpc gzip": func(ctx context.Context, o *testkit.OTLP) (sdktrace.SpanExporter, error) {
			return otlptracegrpc.New(ctx, otlptracegrpc.WithEndpointURL(o.GRPCEndpoint()), otlptracegrpc.WithCompressor("gzip"))
		},
	}
	for name, newExporter := range exporters {
		t.Run(name, func(t *testing.T) {
			o := testkit.StartOTLP(t)
			exp, err := newExporter(context.Background(), o)
			if err != nil {
				t.Fatal(err)
			}
			tp := provider(t, exp)
			before := time.Now()
			parent, child, linked := emit(tp)
			after := time.Now()
			flush(t, tp)

			spans := o.Await(10*time.Second, func(s []testkit.Span) bool { return len(s) >= 2 })
			if len(spans) != 2 {
				t.Fatalf("got %d spans, want 2:\n%s", len(spans), testkit.Format(spans))
			}
			p, c := only(t, spans, "parent"), only(t, spans, "child")

			if p.TraceID != parent.TraceID().String() || p.SpanID != parent.SpanID().String() || p.ParentSpanID != "" {
				t.Errorf("parent ids %s/%s under %q, want %s/%s under none", p.TraceID, p.SpanID, p.ParentSpanID, parent.TraceID(), parent.SpanID())
			}
			if c.TraceID != p.TraceID || c.SpanID != child.SpanID().String() || c.ParentSpanID != p.SpanID {
				t.Errorf("child ids %s/%s under %s, want %s/%s under %s", c.TraceID, c.SpanID, c.ParentSpanID, p.TraceID, child.SpanID(), p.SpanID)
			}
			if p.Kind != trace.SpanKindServer || c.Kind != trace.SpanKindClient {
				t.Errorf("kinds %s and %s, want server and client", p.Kind, c.Kind)
			}
			if p.Start.Before(before) || c.Start.Before(p.Start) || p.End.Before(c.End) || after.Before(p.End) {
				t.Errorf("times: parent %s–%s, child %s–%s, not within each other and %s–%s", p.Start, p.End, c.Start, c.End, before, after)
			}
			wantAttrs := map[string]any{
				"s": "v", "i": int64(42), "f": 1.5, "b": true,
				"ss": []string{"a", "b"}, "is": []int64{1, -2}, "fs": []float64{0.5, 2}, "bs": []bool{true, false},
			}
			if !reflect.DeepEqual(p.Attributes, wantAttrs) {
				t.Errorf("parent attributes %#v, want %#v", p.Attributes, wantAttrs)
			}
			if p.Status != (testkit.Status{Code: codes.Ok}) || c.Status != (testkit.Status{Code: codes.Error, Message: "it broke"}) {
				t.Errorf("statuses %+v and %+v, want Ok and Error(it broke)", p.Status, c.Status)
			}
			if len(c.Events) != 2 || c.Events[0].Name != "progress" || !reflect.DeepEqual(c.Events[0].Attributes, map[string]any{"done": int64(3)}) ||
				c.Events[1].Name != "exception" || c.Events[1].Attributes["exception.message"] != "boom" || c.Events[0].Time.Before(c.Start) {
				t.Errorf("child events %+v, want progress{done=3} then exception{message=boom}", c.Events)
			}
			wantLinks := []testkit.Link{{TraceID: linked.TraceID().String(), SpanID: linked.SpanID().String(), Attributes: map[string]any{"link.why": "retry"}}}
			if !reflect.DeepEqual(c.Links, wantLinks) || p.Links != nil {
				t.Errorf("links: child %+v, parent %+v; want child %+v, parent none", c.Links, p.Links, wantLinks)
			}
			for _, s := range spans {
				if s.Service() != "testkit-otlp" || s.Resource["replica"] != int64(2) || s.Scope != "testkit/otlp" {
					t.Errorf("%s: resource %v, scope %q; want service.name testkit-otlp, replica 2, scope testkit/otlp", s.Name, s.Resource, s.Scope)
				}
			}
			if got := o.Trace(p.TraceID); len(got) != 2 {
				t.Errorf("Trace(%s) has %d spans, want 2", p.TraceID, len(got))
			}
			if got := o.Trace(linked.TraceID().String()); len(got) != 0 {
				t.Errorf("Trace of the linked, unexported trace has %d spans, want none", len(got))
			}
			if orphans := testkit.Orphans(spans); len(orphans) != 0 {
				t.Errorf("orphans %v, want none", orphans)
			}
		})
	}
}

// TestOTLPAwaitWakesOnArrival: Await looks at the spans once, blocks, and
// looks again when, and only when, an export arrives; when the condition
// already holds it returns at once.
func TestOTLPAwaitWakesOnArrival(t *testing.T) {
	o := testkit.StartOTLP(t)
	exp, err := otlptracehttp.New(context.Background(), otlptracehttp.WithEndpointURL(o.HTTPEndpoint()+"/v1/traces"))
	if err != nil {
		t.Fatal(err)
	}
	tp := provider(t, exp)
	_, span := tp.Tracer("testkit/otlp").Start(context.Background(), "late")

	var calls int
	looked := make(chan struct{})
	var once sync.Once
	flushed := make(chan error, 1)
	go func() {
		<-looked // Await is waiting, or about to
		span.End()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		flushed <- tp.ForceFlush(ctx)
	}()
	hasLate := func(s []testkit.Span) bool {
		calls++
		once.Do(func() { close(looked) })
		return len(testkit.ByName(s, "late")) == 1
	}
	got := o.Await(10*time.Second, hasLate)
	if err := <-flushed; err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Name != "late" {
		t.Fatalf("Await returned %v, want the span late", got)
	}
	if calls != 2 {
		t.Errorf("the condition was evaluated %d times for one export, want 2 (at first, after the export)", calls)
	}
	calls = 0
	o.Await(10*time.Second, hasLate)
	if calls != 1 {
		t.Errorf("the condition was evaluated %d times when it held already, want 1", calls)
	}
}

// fatalRecorder is a testing.TB whose Fatalf records the message (and
// returns, unlike a real one).
type fatalRecorder struct {
	testing.TB
	msg string
}

func (f *fatalRecorder) Fatalf(format string, args ...any) { f.msg = fmt.Sprintf(format, args...) }
func (f *fatalRecorder) Helper()                           {}

// TestOTLPAwaitTimeoutDumps: when the condition does not come true in
// time, Await fails the test with the spans received, as a tree, and the
// requests refused.
func TestOTLPAwaitTimeoutDumps(t *testing.T) {
	rec := &fatalRecorder{TB: t}
	o := testkit.StartOTLP(rec)
	exp, err := otlptracehttp.New(context.Background(), otlptracehttp.WithEndpointURL(o.HTTPEndpoint()+"/v1/traces"))
	if err != nil {
		t.Fatal(err)
	}
	tp := provider(t, exp)
	_, span := tp.Tracer("testkit/otlp").Start(context.Background(), "seen", trace.WithAttributes(attribute.String("k", "v")))
	span.End()
	flush(t, tp)
	resp, err := http.Post(o.HTTPEndpoint()+"/v1/traces", "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()

	o.Await(200*time.Millisecond, func(s []testkit.Span) bool { return len(testkit.ByName(s, "never")) > 0 })
	for _, want := range []string{"waited 200ms", "accepted 1 export request(s) with 1 span(s) and refused 1:",
		`POST /v1/traces: 415 content type "application/json"`, "trace " + span.SpanContext().TraceID().String(), `seen [internal testkit-otlp`, `k="v"`} {
		if !strings.Contains(rec.msg, want) {
			t.Errorf("the failure message lacks %q:\n%s", want, rec.msg)
		}
	}
}

// TestOTLPTreeOrphansFormat: a gateway span under a client's traceparent
// that nobody exports is an orphan unless that parent is allowed; a span
// whose parent never ended (so was never exported) is one in any case;
// Tree, Roots and Format show the nesting.
func TestOTLPTreeOrphansFormat(t *testing.T) {
	o := testkit.StartOTLP(t)
	exp, err := otlptracegrpc.New(context.Background(), otlptracegrpc.WithEndpointURL(o.GRPCEndpoint()))
	if err != nil {
		t.Fatal(err)
	}
	tp := provider(t, exp)
	tr := tp.Tracer("testkit/otlp")
	client := remote(0x11, 0x22)
	ctx, gateway := tr.Start(trace.ContextWithRemoteSpanContext(context.Background(), client), "gateway",
		trace.WithSpanKind(trace.SpanKindServer), trace.WithAttributes(attribute.String("mcp.method.name", "tools/call")))
	linked := remote(0x33, 0x44)
	_, worker := tr.Start(ctx, "worker", trace.WithSpanKind(trace.SpanKindConsumer), trace.WithLinks(trace.Link{SpanContext: linked}),
		trace.WithAttributes(attribute.Int("n", 3)))
	worker.AddEvent("progress", trace.WithAttributes(attribute.Int("done", 3)))
	worker.SetStatus(codes.Error, "boom")
	worker.End()
	gateway.End()
	uctx, unended := tr.Start(ctx, "unended")
	_, dangling := tr.Start(uctx, "dangling")
	dangling.End()
	flush(t, tp)
	spans := o.Await(10*time.Second, func(s []testkit.Span) bool { return len(s) >= 3 })

	if got := names(testkit.Orphans(spans)); !reflect.DeepEqual(got, []string{"gateway", "dangling"}) {
		t.Errorf("Orphans: %v, want [gateway dangling]", got)
	}
	if got := names(testkit.Orphans(spans, client.SpanID().String())); !reflect.DeepEqual(got, []string{"dangling"}) {
		t.Errorf("Orphans allowing the client's span: %v, want [dangling]", got)
	}
	if got := names(testkit.Roots(spans)); !reflect.DeepEqual(got, []string{"gateway", "dangling"}) {
		t.Errorf("Roots: %v, want [gateway dangling]", got)
	}
	tree := testkit.Tree(spans)
	if got := names(tree[gateway.SpanContext().SpanID().String()]); !reflect.DeepEqual(got, []string{"worker"}) {
		t.Errorf("Tree: the gateway's children %v, want [worker]", got)
	}
	if len(tree[""]) != 0 {
		t.Errorf("Tree: spans with no parent %v, want none", names(tree[""]))
	}

	durations := regexp.MustCompile(` [0-9][0-9.a-zµ]*\]`)
	got := durations.ReplaceAllString(testkit.Format(spans), " D]")
	want := fmt.Sprintf(`trace %s
  gateway [server testkit-otlp D] mcp.method.name="tools/call" (parent %s not among these spans)
    worker [consumer testkit-otlp D] n=3 status=Error("boom")
      · event progress done=3
      → link %s/%s
  dangling [internal testkit-otlp D] (parent %s not among these spans)
`, client.TraceID(), client.SpanID(), linked.TraceID(), linked.SpanID(), unended.SpanContext().SpanID())
	if got != want {
		t.Errorf("Format:\n%s\nwant:\n%s", got, want)
	}
}

// provider is a tracer provider of service testkit-otlp exporting to exp
// when flushed (and at the end of the test), and only then.
func provider(t *testing.T, exp sdktrace.SpanExporter) *sdktrace.TracerProvider {
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exp, sdktrace.WithBatchTimeout(time.Hour)),
		sdktrace.WithResource(resource.NewSchemaless(attribute.String("service.name", "testkit-otlp"), attribute.Int("replica", 2))))
	t.Cleanup(func() {
		if err := tp.Shutdown(context.Background()); err != nil {
			t.Error(err)
		}
	})
	return tp
}

func flush(t *testing.T, tp *sdktrace.TracerProvider) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := tp.ForceFlush(ctx); err != nil {
		t.Fatal(err)
	}
}

// emit makes a server span with attributes of each type and status Ok,
// and under it a client span with a link to a span nobody exports, an
// event, an error recorded and status Error.
func emit(tp trace.TracerProvider) (parent, child, linked trace.SpanContext) {
	tr := tp.Tracer("testkit/otlp")
	ctx, p := tr.Start(context.Background(), "parent", trace.WithSpanKind(trace.SpanKindServer), trace.WithAttributes(
		attribute.String("s", "v"), attribute.Int("i", 42), attribute.Float64("f", 1.5), attribute.Bool("b", true),
		attribute.StringSlice("ss", []string{"a", "b"}), attribute.Int64Slice("is", []int64{1, -2}),
		attribute.Float64Slice("fs", []float64{0.5, 2}), attribute.BoolSlice("bs", []bool{true, false})))
	linked = remote(0xaa, 0xbb)
	_, c := tr.Start(ctx, "child", trace.WithSpanKind(trace.SpanKindClient),
		trace.WithLinks(trace.Link{SpanContext: linked, Attributes: []attribute.KeyValue{attribute.String("link.why", "retry")}}))
	c.AddEvent("progress", trace.WithAttributes(attribute.Int("done", 3)))
	c.RecordError(errors.New("boom"))
	c.SetStatus(codes.Error, "it broke")
	c.End()
	p.SetStatus(codes.Ok, "")
	p.End()
	return p.SpanContext(), c.SpanContext(), linked
}

// remote is a sampled remote span context whose ids are made of the bytes
// tb and sb.
func remote(tb, sb byte) trace.SpanContext {
	var tid trace.TraceID
	var sid trace.SpanID
	for i := range tid {
		tid[i] = tb
	}
	for i := range sid {
		sid[i] = sb
	}
	return trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: trace.FlagsSampled, Remote: true})
}

func only(t *testing.T, spans []testkit.Span, name string) testkit.Span {
	t.Helper()
	got := testkit.ByName(spans, name)
	if len(got) != 1 {
		t.Fatalf("%d spans named %s, want 1:\n%s", len(got), name, testkit.Format(spans))
	}
	return got[0]
}

func names(spans []testkit.Span) []string {
	out := []string{}
	for _, s := range spans {
		out = append(out, s.Name)
	}
	return out
}
