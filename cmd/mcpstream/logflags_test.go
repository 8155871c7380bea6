package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/trace"
)

// parseLogFlags registers the common flags on a new flag set and parses
// args.
func parseLogFlags(t *testing.T, args ...string) logFlags {
	t.Helper()
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var c common
	c.register(fs)
	if err := parse(fs, args); err != nil {
		t.Fatal(err)
	}
	return c.log
}

// TestLogFlags: --log-level and --log-format land in the flags, whose
// defaults are info and text when their variables are unset or blank.
func TestLogFlags(t *testing.T) {
	t.Setenv(envLogLevel, "")
	t.Setenv(envLogFormat, " ")
	if got := parseLogFlags(t); got != (logFlags{level: "info", format: "text"}) {
		t.Errorf("defaults %+v", got)
	}
	if got := parseLogFlags(t, "--log-level", "debug", "--log-format", "json"); got != (logFlags{level: "debug", format: "json"}) {
		t.Errorf("flags %+v", got)
	}
}

// TestLogFlagsFromEnvironment: MCPSTREAM_LOG_LEVEL and MCPSTREAM_LOG_FORMAT
// are the defaults when set, for stdio too; a flag wins over them.
func TestLogFlagsFromEnvironment(t *testing.T) {
	t.Setenv(envLogLevel, "error")
	t.Setenv(envLogFormat, "json")
	if got := parseLogFlags(t); got != (logFlags{level: "error", format: "json"}) {
		t.Errorf("from the environment %+v", got)
	}
	if got := parseLogFlags(t, "--log-format", "text", "--log-level", "debug"); got != (logFlags{level: "debug", format: "text"}) {
		t.Errorf("flags over the environment %+v", got)
	}
	var lf logFlags
	fs := flag.NewFlagSet("stdio", flag.ContinueOnError)
	lf.register(fs, "warn")
	if err := parse(fs, nil); err != nil {
		t.Fatal(err)
	}
	if lf != (logFlags{level: "error", format: "json"}) {
		t.Errorf("stdio from the environment %+v", lf)
	}
}

// freeAddr returns a loopback address nothing listens on.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// TestLogFormatJSON: with --log-format json a command's log lines are JSON
// objects with level and msg (here the line --debug-addr logs before
// provision fails to reach NATS), and a record logged with a span's
// context carries its trace_id and span_id.
func TestLogFormatJSON(t *testing.T) {
	var stderr bytes.Buffer
	args := []string{"--nats", "nats://" + freeAddr(t), "--log-format", "json", "--debug-addr", "127.0.0.1:0", "--gc-percent", "100"}
	if err := runProvision(context.Background(), args, io.Discard, &stderr); err == nil {
		t.Fatal("provision reached a NATS server that is not there")
	}
	line, _, _ := strings.Cut(stderr.String(), "\n")
	var m map[string]any
	if err := json.Unmarshal([]byte(line), &m); err != nil {
		t.Fatalf("not JSON: %v: %q", err, line)
	}
	if m["level"] != "INFO" || m["msg"] != "profiles served" || m["url"] == nil {
		t.Errorf("line %v", m)
	}

	var buf bytes.Buffer
	log, err := (&logFlags{level: "info", format: "json"}).logger(&buf)
	if err != nil {
		t.Fatal(err)
	}
	sc := trace.NewSpanContext(trace.SpanContextConfig{TraceID: trace.TraceID{1}, SpanID: trace.SpanID{2}})
	log.WithGroup("req").InfoContext(trace.ContextWithSpanContext(context.Background(), sc), "served")
	m = nil
	if err := json.Unmarshal(buf.Bytes(), &m); err != nil {
		t.Fatalf("not JSON: %v: %q", err, buf.String())
	}
	if m["trace_id"] != "01000000000000000000000000000000" || m["span_id"] != "0200000000000000" {
		t.Errorf("line %v", m)
	}
	buf.Reset()
	log.Debug("dropped")
	if buf.Len() != 0 {
		t.Errorf("debug line at info: %q", buf.String())
	}
}

// TestBadLogFlags: an unknown format or level, from a flag or from the
// environment, fails the command with an error naming the flag, the
// variable and the accepted values, before it connects anywhere.
func TestBadLogFlags(t *testing.T) {
	nats := "nats://" + freeAddr(t)
	for _, c := range []struct {
		name string
		env  [2]string
		args []string
		want string
	}{
		{"format flag", [2]string{}, []string{"provision", "--nats", nats, "--log-format", "yaml"},
			`mcpstream provision: --log-format (or $MCPSTREAM_LOG_FORMAT): unknown log format "yaml": want text or json`},
		{"format env", [2]string{envLogFormat, "logfmt"}, []string{"gateway", "--nats", nats},
			`mcpstream gateway: --log-format (or $MCPSTREAM_LOG_FORMAT): unknown log format "logfmt": want text or json`},
		{"stdio format", [2]string{}, []string{"stdio", "--url", "http://" + freeAddr(t) + "/mcp", "--log-format", "xml"},
			`mcpstream stdio: --log-format (or $MCPSTREAM_LOG_FORMAT): unknown log format "xml": want text or json`},
		{"level env", [2]string{envLogLevel, "loud"}, []string{"worker", "--nats", nats},
			`mcpstream worker: --log-level (or $MCPSTREAM_LOG_LEVEL): unknown log level "loud": want debug, info, warn or error`},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Setenv(envLogFormat, "")
			t.Setenv(envLogLevel, "")
			if c.env[0] != "" {
				t.Setenv(c.env[0], c.env[1])
			}
			var stderr bytes.Buffer
			if code := run(c.args, io.Discard, &stderr); code != 1 {
				t.Errorf("exit code %d, want 1", code)
			}
			if got := strings.TrimSpace(stderr.String()); got != c.want {
				t.Errorf("stderr %q\nwant %q", got, c.want)
			}
		})
	}
}

// TestHelpNamesLogFlags: each command that logs lists --log-level and
// --log-format with their variables in its -h.
func TestHelpNamesLogFlags(t *testing.T) {
	for _, cmd := range []string{"dev", "gateway", "worker", "provision", "stdio"} {
		var stderr bytes.Buffer
		if code := run([]string{cmd, "-h"}, io.Discard, &stderr); code != 0 {
			t.Errorf("%s -h: exit code %d", cmd, code)
		}
		for _, want := range []string{"-log-level", "-log-format", envLogLevel, envLogFormat, "text (key=value) or json"} {
			if !strings.Contains(stderr.String(), want) {
				t.Errorf("%s -h: no %q", cmd, want)
			}
		}
	}
}

// TestLoggerLevelFilters: the logger built from the flags drops records
// below its level.
func TestLoggerLevelFilters(t *testing.T) {
	var buf bytes.Buffer
	log, err := (&logFlags{level: "warn", format: "text"}).logger(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if log.Enabled(context.Background(), slog.LevelInfo) || !log.Enabled(context.Background(), slog.LevelWarn) {
		t.Error("level not applied")
	}
	log.Warn("kept", "k", "v")
	if s := buf.String(); !strings.Contains(s, "level=WARN msg=kept k=v") {
		t.Errorf("%q", s)
	}
}
