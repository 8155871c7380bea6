// Package testlog holds a slog handler for tests that wait for a component
// to log a given message: an event to await instead of a sleep.
package testlog

import (
	"context"
	"log/slog"
)

// Signal is a slog handler that sends on Ch (without blocking) for each
// record whose message is Msg, and drops every record.
type Signal struct {
	Msg string
	Ch  chan struct{}
}

// Enabled reports true for every level.
func (h Signal) Enabled(context.Context, slog.Level) bool { return true }

// WithAttrs returns h.
func (h Signal) WithAttrs([]slog.Attr) slog.Handler { return h }

// WithGroup returns h.
func (h Signal) WithGroup(string) slog.Handler { return h }

// Handle signals on Ch when r's message is Msg.
func (h Signal) Handle(_ context.Context, r slog.Record) error {
	if r.Message == h.Msg {
		select {
		case h.Ch <- struct{}{}:
		default:
		}
	}
	return nil
}
