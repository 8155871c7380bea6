// Package logging builds mcpstream's loggers: log/slog's text or JSON
// handler, wrapped so that a record logged with a context that carries an
// OpenTelemetry span gets that span's trace_id and span_id.
//
// Only the span context is read (go.opentelemetry.io/otel/trace, the API
// package): whoever starts spans puts them in the context, and a log call
// made with that context (slog's InfoContext, DebugContext, ... or
// Logger.Log) is tied to the trace. A call without a context, or with one
// that carries no valid span context, is logged as the base handler logs it.
//
// [Repeats] holds back the repeats of one failure that every request in
// flight meets at once (a stream electing a leader), so that a busy
// process logs one warning a second of it rather than one a request.
package logging

import (
	"fmt"
	"io"
	"log/slog"
	"strings"
)

// The formats New accepts.
const (
	// FormatText is log/slog's TextHandler: key=value pairs, one record a
	// line. It is the default.
	FormatText = "text"
	// FormatJSON is log/slog's JSONHandler: one JSON object a line.
	FormatJSON = "json"
)

// The keys of the attributes that tie a record to a trace, at the top level
// of the record whatever groups the logger has opened.
const (
	// TraceIDKey names the span's trace id, 32 lower-case hex digits.
	TraceIDKey = "trace_id"
	// SpanIDKey names the span's id, 16 lower-case hex digits.
	SpanIDKey = "span_id"
)

// Formats returns the formats New accepts, the default first.
func Formats() []string { return []string{FormatText, FormatJSON} }

// ParseFormat returns the format that s names: FormatText or FormatJSON,
// in any case and with surrounding spaces ignored; empty is FormatText.
// Any other value is an error that names the accepted formats.
func ParseFormat(s string) (string, error) {
	switch f := strings.ToLower(strings.TrimSpace(s)); f {
	case "", FormatText:
		return FormatText, nil
	case FormatJSON:
		return FormatJSON, nil
	default:
		return "", fmt.Errorf("unknown log format %q: want %s", s, strings.Join(Formats(), " or "))
	}
}

// ParseLevel returns the level that s names: debug, info, warn or error,
// in any case, optionally with an offset (slog's syntax: "warn+2",
// "info-4"). Any other value is an error that names the accepted levels.
func ParseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(strings.TrimSpace(s))); err != nil {
		return 0, fmt.Errorf("unknown log level %q: want debug, info, warn or error", s)
	}
	return l, nil
}

// New returns a logger that writes records at level or above to w in
// format (see ParseFormat), through NewHandler: a record logged with a
// context carrying a valid span context has trace_id and span_id. An
// unknown format is an error naming the accepted ones.
func New(w io.Writer, format string, level slog.Leveler) (*slog.Logger, error) {
	f, err := ParseFormat(format)
	if err != nil {
		return nil, err
	}
	opts := &slog.HandlerOptions{Level: level}
	var base slog.Handler
	if f == FormatJSON {
		base = slog.NewJSONHandler(w, opts)
	} else {
		base = slog.NewTextHandler(w, opts)
	}
	return slog.New(NewHandler(base)), nil
}
