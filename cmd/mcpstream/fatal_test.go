package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"testing"
)

// TestFatalErrorLogged: with --log-format json, the error a command ends
// with is one JSON line at ERROR naming the command, from the command's
// logger; an error before the logger exists (a bad flag) stays plain text.
func TestFatalErrorLogged(t *testing.T) {
	t.Setenv(envLogFormat, "")
	t.Setenv(envLogLevel, "")
	nats := "nats://" + freeAddr(t)
	for _, cmd := range []string{"gateway", "worker", "provision"} {
		var stderr bytes.Buffer
		if code := run([]string{cmd, "--nats", nats, "--log-format", "json"}, io.Discard, &stderr); code != 1 {
			t.Errorf("%s: exit code %d, want 1", cmd, code)
		}
		lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
		var m map[string]any
		if err := json.Unmarshal([]byte(lines[len(lines)-1]), &m); err != nil {
			t.Errorf("%s: last line not JSON: %v: %q", cmd, err, stderr.String())
			continue
		}
		if m["level"] != "ERROR" || m["command"] != cmd || !strings.Contains(fmt.Sprint(m["err"]), "connecting to") {
			t.Errorf("%s: line %v", cmd, m)
		}
	}
	var stderr bytes.Buffer
	if code := run([]string{"gateway", "--nats", nats, "--log-format", "json", "--max-conns", "-1"}, io.Discard, &stderr); code != 1 {
		t.Errorf("exit code %d, want 1", code)
	}
	if got := strings.TrimSpace(stderr.String()); !strings.HasPrefix(got, "mcpstream gateway: --max-conns") {
		t.Errorf("error before the logger: %q", got)
	}
}
