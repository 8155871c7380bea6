package main

import (
	"bytes"
	"flag"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"
)

// TestMemoryLimitFlag: --memory-limit of gateway and worker, given as a
// flag, by MCPSTREAM_MEMORY_LIMIT, or taken from a container's cgroup
// (files laid out in a temp dir), is the runtime's soft memory limit
// once the command applies it; GOMEMLIMIT stands when nothing else is
// given.
func TestMemoryLimitFlag(t *testing.T) {
	prev := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetMemoryLimit(prev) })
	noCgroup := t.TempDir()
	v2 := t.TempDir()
	for name, body := range map[string]string{
		"proc/self/cgroup":         "0::/\n",
		"proc/self/mountinfo":      "29 23 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n",
		"sys/fs/cgroup/memory.max": "1073741824\n",
	} {
		p := filepath.Join(v2, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	for _, c := range []struct {
		name     string
		cmd      string
		args     []string
		env      map[string]string
		root     string
		want     int64
		wantLine string
	}{
		{"flag", "gateway", []string{"--memory-limit", "300MiB"}, nil, v2, 300 << 20, "300MiB (--memory-limit)"},
		{"variable", "worker", nil, map[string]string{"MCPSTREAM_MEMORY_LIMIT": "200MiB"}, noCgroup, 200 << 20, "200MiB (--memory-limit)"},
		{"flag over variable", "worker", []string{"--memory-limit", "250MiB"}, map[string]string{"MCPSTREAM_MEMORY_LIMIT": "200MiB"}, noCgroup, 250 << 20, "250MiB"},
		{"share of the container", "gateway", []string{"--memory-limit", "50%"}, nil, v2, 512 << 20, "512MiB (--memory-limit)"},
		{"container by default", "worker", nil, nil, v2, 1 << 30 * 8 / 10, "(cgroup v2)"},
		{"none", "gateway", nil, nil, noCgroup, 0, "none (none)"},
	} {
		debug.SetMemoryLimit(prev)
		set, mem := memoryFlagOf(c.cmd)
		if err := parseEnv(set, c.args, lookupIn(c.env), nil); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		var out bytes.Buffer
		if _, err := mem.apply(log, &out, 0, memoryEnv{lookupIn(c.env), c.root}); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		got := debug.SetMemoryLimit(-1)
		if c.want == 0 && got != prev || c.want != 0 && got != c.want {
			t.Errorf("%s: runtime memory limit %d, want %d", c.name, got, c.want)
		}
		if !strings.Contains(out.String(), c.wantLine) {
			t.Errorf("%s: printed %q, want it to hold %q", c.name, out.String(), c.wantLine)
		}
	}
	// A bad value names the variable; a share without a container fails.
	set, _ := workerFlagSet(io.Discard)
	err := parseEnv(set, nil, lookupIn(map[string]string{"MCPSTREAM_MEMORY_LIMIT": "lots"}), nil)
	if err == nil || !strings.Contains(err.Error(), "$MCPSTREAM_MEMORY_LIMIT (--memory-limit)") {
		t.Errorf("MCPSTREAM_MEMORY_LIMIT=lots: %v", err)
	}
	set, f := gatewayFlagSet(io.Discard)
	if err := parseEnv(set, []string{"--memory-limit", "80%"}, lookupIn(nil), nil); err != nil {
		t.Fatal(err)
	}
	if _, err := f.mem.apply(log, io.Discard, 0, memoryEnv{lookupIn(nil), noCgroup}); err == nil {
		t.Error("--memory-limit 80% without a container limit: no error")
	}
	// dev's own default applies where nothing else sets one.
	var m memoryFlag
	var out bytes.Buffer
	if _, err := m.apply(log, &out, devMemoryLimit, memoryEnv{lookupIn(nil), noCgroup}); err != nil || debug.SetMemoryLimit(-1) != devMemoryLimit {
		t.Errorf("dev's default: %v, limit %d, printed %q", err, debug.SetMemoryLimit(-1), out.String())
	}
}

// memoryFlagOf is the flag set of cmd (gateway or worker) and its
// --memory-limit.
func memoryFlagOf(cmd string) (*flag.FlagSet, *memoryFlag) {
	if cmd == "gateway" {
		set, f := gatewayFlagSet(io.Discard)
		return set, &f.mem
	}
	set, f := workerFlagSet(io.Discard)
	return set, &f.mem
}

func lookupIn(env map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := env[k]; return v, ok }
}
