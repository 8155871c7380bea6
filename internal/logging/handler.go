package logging

import (
	"context"
	"encoding/hex"
	"log/slog"

	"go.opentelemetry.io/otel/trace"
)

// NewHandler wraps base so that a record whose context carries a valid
// OpenTelemetry span context (trace.SpanContextFromContext) gets the
// attributes trace_id and span_id (TraceIDKey, SpanIDKey) in lower-case
// hex, at the top level of the record even under groups opened with
// WithGroup. A record without one goes to base unchanged. Enabled is
// base's: a disabled level costs no more than it does in base.
//
// A record with a span costs one allocation (the ids' 48 bytes) when the
// logger has no group, and a few more under groups, where the record's
// attributes and those given after the first group are nested again under
// their groups so that the ids can stand outside them.
func NewHandler(base slog.Handler) slog.Handler {
	return &handler{top: base, full: base}
}

// handler is NewHandler's slog.Handler.
//
// The attributes and groups that WithAttrs and WithGroup add all go to
// full, which a record without a span is handed to, keeping the base
// handler's preformatting. Those given before the first group also go to
// top; from the first group on they are kept in groups, so that a record
// with a span can be handed to top with the ids first and its own
// attributes nested under those groups.
type handler struct {
	top    slog.Handler
	full   slog.Handler
	groups []group
}

// group is a group opened with WithGroup and the attributes given inside it
// before the next one.
type group struct {
	name  string
	attrs []slog.Attr
}

// Enabled reports whether the base handler handles records at level.
func (h *handler) Enabled(ctx context.Context, level slog.Level) bool {
	return h.full.Enabled(ctx, level)
}

// Handle hands r to the base handler, with the span's ids when ctx carries
// a valid span context.
func (h *handler) Handle(ctx context.Context, r slog.Record) error {
	sc := trace.SpanContextFromContext(ctx)
	if !sc.IsValid() {
		return h.full.Handle(ctx, r)
	}
	traceID, spanID := ids(sc)
	if len(h.groups) == 0 {
		r = r.Clone() // r's attributes may be shared with the caller's copy
		r.AddAttrs(traceID, spanID)
		return h.full.Handle(ctx, r)
	}
	return h.top.Handle(ctx, h.regroup(r, traceID, spanID))
}

// regroup returns a record like r whose attributes are traceID, spanID and
// then r's own and the handler's grouped ones nested under their groups,
// as full would have nested them.
func (h *handler) regroup(r slog.Record, traceID, spanID slog.Attr) slog.Record {
	var inner slog.Attr
	for i := len(h.groups) - 1; i >= 0; i-- {
		g := h.groups[i]
		var attrs []slog.Attr
		if i == len(h.groups)-1 {
			attrs = make([]slog.Attr, 0, len(g.attrs)+r.NumAttrs())
			attrs = append(attrs, g.attrs...)
			r.Attrs(func(a slog.Attr) bool {
				attrs = append(attrs, a)
				return true
			})
		} else {
			attrs = make([]slog.Attr, 0, len(g.attrs)+1)
			attrs = append(attrs, g.attrs...)
			attrs = append(attrs, inner)
		}
		inner = slog.Attr{Key: g.name, Value: slog.GroupValue(attrs...)}
	}
	out := slog.NewRecord(r.Time, r.Level, r.Message, r.PC)
	out.AddAttrs(traceID, spanID, inner)
	return out
}

// ids returns sc's trace and span ids as hex string attributes, both
// slices of one string.
func ids(sc trace.SpanContext) (traceID, spanID slog.Attr) {
	t, s := sc.TraceID(), sc.SpanID()
	var b [2*len(t) + 2*len(s)]byte
	hex.Encode(b[:2*len(t)], t[:])
	hex.Encode(b[2*len(t):], s[:])
	str := string(b[:])
	return slog.String(TraceIDKey, str[:2*len(t)]), slog.String(SpanIDKey, str[2*len(t):])
}

// WithAttrs returns a handler whose records carry attrs too, in the
// current group.
func (h *handler) WithAttrs(attrs []slog.Attr) slog.Handler {
	if len(attrs) == 0 {
		return h
	}
	if len(h.groups) == 0 {
		hh := h.top.WithAttrs(attrs)
		return &handler{top: hh, full: hh}
	}
	groups := make([]group, len(h.groups))
	copy(groups, h.groups)
	last := &groups[len(groups)-1]
	last.attrs = append(last.attrs[:len(last.attrs):len(last.attrs)], attrs...)
	return &handler{top: h.top, full: h.full.WithAttrs(attrs), groups: groups}
}

// WithGroup returns a handler that nests the attributes given after it,
// and those of its records, under name; the span's ids stay at the top
// level. An empty name returns h, as slog's handlers do.
func (h *handler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	groups := make([]group, len(h.groups), len(h.groups)+1)
	copy(groups, h.groups)
	groups = append(groups, group{name: name})
	return &handler{top: h.top, full: h.full.WithGroup(name), groups: groups}
}
