package logging

import (
	"context"
	"io"
	"log/slog"
	"testing"
)

// BenchmarkHandler measures a logged record through New's JSON logger to
// io.Discard: without a span, with one, with one under a group, and a
// disabled level; "base" is slog's own JSON handler, for comparison.
func BenchmarkHandler(b *testing.B) {
	wrapped, err := New(io.Discard, FormatJSON, slog.LevelInfo)
	if err != nil {
		b.Fatal(err)
	}
	base := slog.New(slog.NewJSONHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelInfo}))
	bg := context.Background()
	span := spanContext(b, bg)
	for _, c := range []struct {
		name string
		log  *slog.Logger
		ctx  context.Context
		lvl  slog.Level
	}{
		{"base/no-span", base, bg, slog.LevelInfo},
		{"no-span", wrapped, bg, slog.LevelInfo},
		{"span", wrapped, span, slog.LevelInfo},
		{"span/with", wrapped.With("gateway", "gw-1"), span, slog.LevelInfo},
		{"span/group", wrapped.WithGroup("req").With("gateway", "gw-1"), span, slog.LevelInfo},
		{"span/disabled", wrapped, span, slog.LevelDebug},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				c.log.Log(c.ctx, c.lvl, "call served", "method", "tools/call", "status", 200, "ms", 1.5)
			}
		})
	}
}
