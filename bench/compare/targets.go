package main

import (
	"context"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/mcpstream/mcpstream/bench/internal/proc"
	"github.com/mcpstream/mcpstream/bench/internal/targets"
)

// Go's GC targets (GOGC) the servers ship with.
const (
	// goDefaultGOGC is Go's own default, which the plain mcp-go and go-sdk
	// servers keep.
	goDefaultGOGC = 100
	// mcpstreamGOGC is the GC target the mcpstream binary sets for itself
	// unless GOGC is set (cmd/mcpstream, --gc-percent).
	mcpstreamGOGC = 400
)

// target is one server to compare: how to start it and how to tell from
// its stdout that it listens, and where.
type target struct {
	name string
	// shippedGOGC is the GC target the server runs with when nobody sets
	// one: mcpstreamGOGC for mcpstream, goDefaultGOGC for the others.
	shippedGOGC int
	// command returns the server's argv; bin is the mcpstream binary.
	command func(bin string) []string
	// ready matches the stdout line that announces the server; its first
	// group is the MCP endpoint's URL or listen address, and its second,
	// if it has one, the GC target the server says it runs with.
	ready *regexp.Regexp
}

// targetList is every target, in the default order.
func targetList() []*target {
	self := func(mode string) func(string) []string {
		return func(string) []string {
			exe, err := os.Executable()
			if err != nil {
				exe = os.Args[0]
			}
			return []string{exe, mode, "--addr", "127.0.0.1:0"}
		}
	}
	return []*target{
		{
			name:        "mcpstream",
			shippedGOGC: mcpstreamGOGC,
			command: func(bin string) []string {
				return []string{bin, "dev", "--addr", "127.0.0.1:0", "--log-level", "warn"}
			},
			ready: regexp.MustCompile(`MCP endpoint (http://\S+)`),
		},
		{name: "mcp-go", shippedGOGC: goDefaultGOGC, command: self("serve-mcpgo"), ready: listening},
		{name: "go-sdk", shippedGOGC: goDefaultGOGC, command: self("serve-gosdk"), ready: listening},
	}
}

// listening matches the ready line of a re-executed server (see serve).
var listening = regexp.MustCompile(`^listening on (\S+) \(GOGC (\S+)\)$`)

func targetNames() []string {
	var names []string
	for _, t := range targetList() {
		names = append(names, t.name)
	}
	return names
}

func findTarget(name string) *target {
	for _, t := range targetList() {
		if t.name == name {
			return t
		}
	}
	return nil
}

// needsBinary reports whether any of the targets runs the mcpstream binary.
func needsBinary(names []string) bool { return slices.Contains(names, "mcpstream") }

// buildBinary builds the mcpstream binary into dir when names need it.
func buildBinary(ctx context.Context, names []string, dir string) (string, error) {
	if !needsBinary(names) {
		return "", nil
	}
	return proc.BuildMcpstream(ctx, dir)
}

// serverEnv is the environment of a server process: base (the harness's
// own) without any GOGC, then GOGC=gogc.
func serverEnv(base []string, gogc int) []string {
	env := make([]string, 0, len(base)+1)
	for _, kv := range base {
		if !strings.HasPrefix(kv, "GOGC=") {
			env = append(env, kv)
		}
	}
	return append(env, "GOGC="+strconv.Itoa(gogc))
}

// formatGOGC prints a GC percentage as GOGC spells it.
func formatGOGC(p int) string {
	if p < 0 {
		return "off"
	}
	return strconv.Itoa(p)
}

// serverHandler is the MCP handler a re-executed harness serves in mode,
// or nil if mode is not a server mode.
func serverHandler(mode string) http.Handler {
	switch mode {
	case "serve-mcpgo":
		return targets.MCPGo()
	case "serve-gosdk":
		return targets.GoSDK()
	}
	return nil
}
