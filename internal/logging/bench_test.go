package logging

import (
	"context"
	"io"
	"log/slog"
	"testing"
)

// BenchmarkHandler measures a logged record through New's JSON logger to
// io.Discard: without a span, with one, with one under a group, and a
// disabled level. "base" is slog's own JSON handler, for comparison:
// base/ids logs the same two ids as the record's own attributes, the cost
// of writing them out.
func BenchmarkHandler(b *testing.B) {
	wrapped, err := New(io.Discard, FormatJSON, slog.LevelInfo)
	if err != nil {
		b.Fatal(err)
	}
	base := slog.New(slog.NewJSONHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelInfo}))
	bg := context.Background()
	span := spanContext(b, bg)
	args := []any{"method", "tools/call", "status", 200, "ms", 1.5}
	withIDs := append(args[:len(args):len(args)], TraceIDKey, testTraceID, SpanIDKey, testSpanID)
	for _, c := range []struct {
		name string
		log  *slog.Logger
		ctx  context.Context
		lvl  slog.Level
		args []any
	}{
		{"base/no-span", base, bg, slog.LevelInfo, args},
		{"base/ids", base, bg, slog.LevelInfo, withIDs},
		{"no-span", wrapped, bg, slog.LevelInfo, args},
		{"span", wrapped, span, slog.LevelInfo, args},
		{"span/with", wrapped.With("gateway", "gw-1"), span, slog.LevelInfo, args},
		{"span/group", wrapped.WithGroup("req").With("gateway", "gw-1"), span, slog.LevelInfo, args},
		{"span/disabled", wrapped, span, slog.LevelDebug, args},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				c.log.Log(c.ctx, c.lvl, "call served", c.args...)
			}
		})
	}
}
