package logging

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
)

// TestParseFormat: text and json in any case, empty for text; anything
// else is an error naming the accepted formats.
func TestParseFormat(t *testing.T) {
	for in, want := range map[string]string{"": FormatText, "text": FormatText, "TEXT": FormatText, " json ": FormatJSON, "Json": FormatJSON} {
		if got, err := ParseFormat(in); err != nil || got != want {
			t.Errorf("ParseFormat(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"yaml", "logfmt", "jsonl"} {
		_, err := ParseFormat(in)
		if err == nil || !strings.Contains(err.Error(), `"`+in+`"`) || !strings.Contains(err.Error(), "text or json") {
			t.Errorf("ParseFormat(%q): %v", in, err)
		}
	}
}

// TestNewUnknownFormat: New refuses an unknown format with ParseFormat's
// error.
func TestNewUnknownFormat(t *testing.T) {
	log, err := New(&bytes.Buffer{}, "xml", slog.LevelInfo)
	if err == nil || log != nil || !strings.Contains(err.Error(), `unknown log format "xml": want text or json`) {
		t.Errorf("New(xml) = %v, %v", log, err)
	}
}

// TestParseLevel: slog's level names, with offsets; anything else is an
// error naming the accepted levels.
func TestParseLevel(t *testing.T) {
	for in, want := range map[string]slog.Level{"debug": slog.LevelDebug, "INFO": slog.LevelInfo, "warn": slog.LevelWarn, "error": slog.LevelError, "info+2": slog.LevelInfo + 2} {
		if got, err := ParseLevel(in); err != nil || got != want {
			t.Errorf("ParseLevel(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	_, err := ParseLevel("loud")
	if err == nil || !strings.Contains(err.Error(), `"loud"`) || !strings.Contains(err.Error(), "debug, info, warn or error") {
		t.Errorf("ParseLevel(loud): %v", err)
	}
}

// TestDefaultFormatIsText: an empty format writes slog's text lines.
func TestDefaultFormatIsText(t *testing.T) {
	var buf bytes.Buffer
	log, err := New(&buf, "", slog.LevelInfo)
	if err != nil {
		t.Fatal(err)
	}
	log.Info("hi", "k", "v")
	if s := buf.String(); !strings.Contains(s, "level=INFO msg=hi k=v") {
		t.Errorf("%q", s)
	}
}
