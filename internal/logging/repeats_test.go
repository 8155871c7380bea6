package logging

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"
)

// Of one kind of failure, the first is logged at warn level, the next ones
// within Every at debug level, and the first one after that at warn level
// with the count of those held back; another kind is counted apart.
func TestRepeats(t *testing.T) {
	rec := &records{}
	log := slog.New(rec)
	t0 := time.Unix(1000, 0)
	now := t0
	r := Repeats{now: func() time.Time { return now }}
	ctx := context.Background()
	at := func(d time.Duration) { now = t0.Add(d) }
	for i := range 100 {
		at(time.Duration(i) * time.Millisecond)
		r.Warn(ctx, log, "MCP_REQ_0", "publish failed, retrying", "key", i)
	}
	at(50 * time.Millisecond)
	r.Warn(ctx, log, "session", "saving session")
	at(time.Second)
	r.Warn(ctx, log, "MCP_REQ_0", "publish failed, retrying", "key", 100)
	at(time.Second + time.Millisecond)
	r.Warn(ctx, log, "MCP_REQ_0", "publish failed, retrying", "key", 101)

	type line struct {
		msg          string
		key, repeats int64
	}
	var warns []line
	debug := 0
	for _, r := range rec.all() {
		if r.Level == slog.LevelDebug {
			debug++
			continue
		}
		l := line{msg: r.Message, key: -1, repeats: -1}
		r.Attrs(func(a slog.Attr) bool {
			switch a.Key {
			case "key":
				l.key = a.Value.Int64()
			case RepeatsKey:
				l.repeats = a.Value.Int64()
			}
			return true
		})
		warns = append(warns, l)
	}
	want := []line{
		{"publish failed, retrying", 0, 0},
		{"saving session", -1, 0},
		{"publish failed, retrying", 100, 99},
	}
	if len(warns) != len(want) {
		t.Fatalf("warnings %+v, want %+v", warns, want)
	}
	for i := range want {
		if warns[i] != want[i] {
			t.Errorf("warning %d: %+v, want %+v", i, warns[i], want[i])
		}
	}
	if debug != 100 {
		t.Errorf("%d lines at debug level, want 100 (99 held back, then 1)", debug)
	}

	// Every sets the spacing.
	rec.reset()
	slow := Repeats{Every: 10 * time.Second, now: func() time.Time { return now }}
	for _, d := range []time.Duration{0, 5 * time.Second, 9 * time.Second, 10 * time.Second} {
		at(d)
		slow.Warn(ctx, log, "record", "recording a result")
	}
	if n := len(rec.all()); n != 4 {
		t.Fatalf("%d records, want 4", n)
	}
	for i, r := range rec.all() {
		if want := i == 0 || i == 3; (r.Level == slog.LevelWarn) != want {
			t.Errorf("record %d at %s", i, r.Level)
		}
	}
}

// records is a slog handler keeping every record, at every level.
type records struct {
	mu sync.Mutex
	rs []slog.Record
}

func (h *records) Enabled(context.Context, slog.Level) bool { return true }
func (h *records) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.rs = append(h.rs, r.Clone())
	return nil
}
func (h *records) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *records) WithGroup(string) slog.Handler      { return h }

func (h *records) all() []slog.Record {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.rs
}

func (h *records) reset() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.rs = nil
}
