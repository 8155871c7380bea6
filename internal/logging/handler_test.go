package logging

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"testing/slogtest"

	"go.opentelemetry.io/otel/trace"
)

const (
	testTraceID = "0102030405060708090a0b0c0d0e0f10"
	testSpanID  = "a1a2a3a4a5a6a7a8"
)

// spanContext returns ctx carrying a valid, sampled span context with the
// ids testTraceID and testSpanID, built without an SDK.
func spanContext(t testing.TB, ctx context.Context) context.Context {
	t.Helper()
	tid, err := trace.TraceIDFromHex(testTraceID)
	if err != nil {
		t.Fatal(err)
	}
	sid, err := trace.SpanIDFromHex(testSpanID)
	if err != nil {
		t.Fatal(err)
	}
	sc := trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: trace.FlagsSampled})
	if !sc.IsValid() {
		t.Fatal("span context not valid")
	}
	return trace.ContextWithSpanContext(ctx, sc)
}

// jsonLogger returns a JSON logger at level writing to a new buffer.
func jsonLogger(t *testing.T, level slog.Level) (*slog.Logger, *bytes.Buffer) {
	t.Helper()
	var buf bytes.Buffer
	log, err := New(&buf, FormatJSON, level)
	if err != nil {
		t.Fatal(err)
	}
	return log, &buf
}

// lines decodes each line of buf as a JSON object.
func lines(t *testing.T, buf *bytes.Buffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("line is not JSON: %v\n%s", err, l)
		}
		out = append(out, m)
	}
	return out
}

// one decodes the single JSON line in buf.
func one(t *testing.T, buf *bytes.Buffer) map[string]any {
	t.Helper()
	ls := lines(t, buf)
	if len(ls) != 1 {
		t.Fatalf("%d lines, want 1:\n%s", len(ls), buf)
	}
	return ls[0]
}

// TestSpanIDs: a record logged with a span context carries the ids at the
// top level, next to its own attributes; one without carries neither.
func TestSpanIDs(t *testing.T) {
	log, buf := jsonLogger(t, slog.LevelInfo)
	ctx := spanContext(t, context.Background())
	log.InfoContext(ctx, "served", "method", "tools/call")
	m := one(t, buf)
	if m[TraceIDKey] != testTraceID || m[SpanIDKey] != testSpanID || m["method"] != "tools/call" || m["msg"] != "served" || m["level"] != "INFO" {
		t.Errorf("with a span: %v", m)
	}

	buf.Reset()
	log.Info("no context")
	log.InfoContext(context.Background(), "no span")
	log.InfoContext(trace.ContextWithSpanContext(context.Background(), trace.SpanContext{}), "invalid span")
	for _, m := range lines(t, buf) {
		if _, ok := m[TraceIDKey]; ok {
			t.Errorf("%v: has %s", m["msg"], TraceIDKey)
		}
		if _, ok := m[SpanIDKey]; ok {
			t.Errorf("%v: has %s", m["msg"], SpanIDKey)
		}
	}
}

// TestSpanIDsUnderGroups: under WithGroup the ids stay at the top level
// while the record's attributes, and those given by With before and after
// the group, land where slog puts them without a span.
func TestSpanIDsUnderGroups(t *testing.T) {
	log, buf := jsonLogger(t, slog.LevelInfo)
	ctx := spanContext(t, context.Background())
	l := log.With("gw", "g1").WithGroup("req").With("id", 7).WithGroup("inner").With("k", "v")

	l.InfoContext(ctx, "m", "a", 1)
	withSpan := one(t, buf)
	buf.Reset()
	l.Info("m", "a", 1)
	without := one(t, buf)

	if withSpan[TraceIDKey] != testTraceID || withSpan[SpanIDKey] != testSpanID {
		t.Errorf("ids not at the top level: %v", withSpan)
	}
	delete(withSpan, TraceIDKey)
	delete(withSpan, SpanIDKey)
	delete(withSpan, "time")
	delete(without, "time")
	got, _ := json.Marshal(withSpan)
	want, _ := json.Marshal(without)
	if !bytes.Equal(got, want) {
		t.Errorf("with a span, less the ids:\n%s\nwithout:\n%s", got, want)
	}
	if string(want) != `{"gw":"g1","level":"INFO","msg":"m","req":{"id":7,"inner":{"a":1,"k":"v"}}}` {
		t.Errorf("without a span: %s", want)
	}

	// A group with nothing in it is left out, as slog leaves it out.
	buf.Reset()
	log.WithGroup("empty").InfoContext(ctx, "bare")
	if m := one(t, buf); m[TraceIDKey] != testTraceID || m["empty"] != nil {
		t.Errorf("empty group: %v", m)
	}
}

// TestDerivedLoggersDoNotShare: loggers derived from one parent keep their
// own attributes (the handler copies what it appends to).
func TestDerivedLoggersDoNotShare(t *testing.T) {
	log, buf := jsonLogger(t, slog.LevelInfo)
	ctx := spanContext(t, context.Background())
	parent := log.WithGroup("g").With("p", 1)
	a, b := parent.With("a", 1), parent.With("b", 2)
	a.InfoContext(ctx, "a")
	b.InfoContext(ctx, "b")
	ls := lines(t, buf)
	if len(ls) != 2 {
		t.Fatalf("%d lines", len(ls))
	}
	ga, gb := ls[0]["g"].(map[string]any), ls[1]["g"].(map[string]any)
	if ga["b"] != nil || gb["a"] != nil || ga["p"] == nil || gb["p"] == nil {
		t.Errorf("a: %v, b: %v", ga, gb)
	}
}

// TestText: the text format is slog's, with the ids as key=value pairs.
func TestText(t *testing.T) {
	var buf bytes.Buffer
	log, err := New(&buf, FormatText, slog.LevelInfo)
	if err != nil {
		t.Fatal(err)
	}
	log.WithGroup("g").InfoContext(spanContext(t, context.Background()), "hello", "k", "v")
	s := buf.String()
	for _, want := range []string{"level=INFO", "msg=hello", "trace_id=" + testTraceID, "span_id=" + testSpanID, "g.k=v"} {
		if !strings.Contains(s, want) {
			t.Errorf("no %q in %q", want, s)
		}
	}
	if strings.Contains(s, "g.trace_id") {
		t.Errorf("ids under the group: %q", s)
	}
}

// TestLevels: records below the level are dropped, with or without a span,
// and Enabled says so before any work.
func TestLevels(t *testing.T) {
	log, buf := jsonLogger(t, slog.LevelWarn)
	ctx := spanContext(t, context.Background())
	log.DebugContext(ctx, "debug")
	log.InfoContext(ctx, "info")
	log.Info("info")
	log.WarnContext(ctx, "warn")
	log.Error("error")
	ls := lines(t, buf)
	if len(ls) != 2 || ls[0]["msg"] != "warn" || ls[1]["msg"] != "error" {
		t.Errorf("lines %v", ls)
	}
	if log.Enabled(ctx, slog.LevelInfo) || !log.Enabled(ctx, slog.LevelWarn) {
		t.Error("Enabled disagrees with the level")
	}
	if log.WithGroup("g").With("a", 1).Enabled(ctx, slog.LevelInfo) {
		t.Error("a derived logger's Enabled disagrees with the level")
	}
}

// TestDynamicLevel: a LevelVar passed to New is read at each record.
func TestDynamicLevel(t *testing.T) {
	var lv slog.LevelVar
	lv.Set(slog.LevelError)
	var buf bytes.Buffer
	log, err := New(&buf, "json", &lv)
	if err != nil {
		t.Fatal(err)
	}
	log.Info("dropped")
	lv.Set(slog.LevelDebug)
	log.Debug("kept")
	if m := one(t, &buf); m["msg"] != "kept" {
		t.Errorf("%v", m)
	}
}

// TestSlogtest: the wrapped JSON handler passes log/slog's handler
// conformance tests, with and without a span in the records' context.
func TestSlogtest(t *testing.T) {
	for name, ctx := range map[string]context.Context{
		"no span": context.Background(),
		"span":    spanContext(t, context.Background()),
	} {
		t.Run(name, func(t *testing.T) {
			var buf bytes.Buffer
			slogtest.Run(t, func(*testing.T) slog.Handler {
				buf.Reset()
				return withContext{NewHandler(slog.NewJSONHandler(&buf, nil)), ctx}
			}, func(t *testing.T) map[string]any {
				m := one(t, &buf)
				if name == "span" && (m[TraceIDKey] != testTraceID || m[SpanIDKey] != testSpanID) {
					t.Errorf("ids missing: %v", m)
				}
				delete(m, TraceIDKey)
				delete(m, SpanIDKey)
				return m
			})
		})
	}
}

// withContext hands its records to h with ctx, whatever context they were
// logged with: slogtest logs without one.
type withContext struct {
	h   slog.Handler
	ctx context.Context
}

func (w withContext) Enabled(_ context.Context, l slog.Level) bool { return w.h.Enabled(w.ctx, l) }

func (w withContext) Handle(_ context.Context, r slog.Record) error { return w.h.Handle(w.ctx, r) }

func (w withContext) WithAttrs(as []slog.Attr) slog.Handler {
	return withContext{w.h.WithAttrs(as), w.ctx}
}

func (w withContext) WithGroup(name string) slog.Handler {
	return withContext{w.h.WithGroup(name), w.ctx}
}
