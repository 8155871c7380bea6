// Package testkit holds what tests in several packages share: an embedded
// JetStream server (nats.go), a slog handler that signals a logged message,
// an event to await instead of a sleep (log.go), Eventually, the one
// polling helper, for state that changes with no event to await
// (eventually.go), and a small worker group written on the wire contract
// alone, for the gateway's tests, which may not import package workers
// (worker.go).
package testkit

import (
	"context"
	"log/slog"
)

// LogSignal is a slog handler that sends on Ch (without blocking) for each
// record whose message is Msg, and drops every record.
type LogSignal struct {
	Msg string
	Ch  chan struct{}
}

// Enabled reports true for every level.
func (h LogSignal) Enabled(context.Context, slog.Level) bool { return true }

// WithAttrs returns h.
func (h LogSignal) WithAttrs([]slog.Attr) slog.Handler { return h }

// WithGroup returns h.
func (h LogSignal) WithGroup(string) slog.Handler { return h }

// Handle signals on Ch when r's message is Msg.
func (h LogSignal) Handle(_ context.Context, r slog.Record) error {
	if r.Message == h.Msg {
		select {
		case h.Ch <- struct{}{}:
		default:
		}
	}
	return nil
}
