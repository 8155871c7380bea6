package main

import (
	"context"
	"net/http"
	"os"
	"regexp"

	"github.com/mcpstream/mcpstream/bench/internal/proc"
	"github.com/mcpstream/mcpstream/bench/internal/targets"
)

// target is one server to compare: how to start it and how to tell from
// its stdout that it listens, and where.
type target struct {
	name string
	// command returns the server's argv; dir is a scratch directory.
	command func(ctx context.Context, dir string) ([]string, error)
	// ready matches the stdout line that announces the server; its first
	// group is the MCP endpoint's URL or listen address.
	ready *regexp.Regexp
}

// targetList is every target, in the default order.
func targetList() []*target {
	self := func(mode string) func(context.Context, string) ([]string, error) {
		return func(context.Context, string) ([]string, error) {
			exe, err := os.Executable()
			if err != nil {
				return nil, err
			}
			return []string{exe, mode, "--addr", "127.0.0.1:0"}, nil
		}
	}
	listening := regexp.MustCompile(`^listening on (\S+)$`)
	return []*target{
		{
			name: "mcpstream",
			command: func(ctx context.Context, dir string) ([]string, error) {
				bin, err := proc.BuildMcpstream(ctx, dir)
				if err != nil {
					return nil, err
				}
				return []string{bin, "dev", "--addr", "127.0.0.1:0", "--log-level", "warn"}, nil
			},
			ready: regexp.MustCompile(`MCP endpoint (http://\S+)`),
		},
		{name: "mcp-go", command: self("serve-mcpgo"), ready: listening},
		{name: "go-sdk", command: self("serve-gosdk"), ready: listening},
	}
}

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
