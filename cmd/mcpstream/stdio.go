package main

import (
	"context"
	"errors"
	"flag"
	"io"
	"os"

	"github.com/mcpstream/mcpstream/bridge"
)

// runStdio bridges a client speaking MCP over stdio to a remote endpoint.
func runStdio(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("stdio", flag.ContinueOnError)
	fs.SetOutput(stderr)
	url := fs.String("url", "", "Streamable HTTP MCP endpoint to bridge to, e.g. https://mcp.example.com/mcp")
	var lf logFlags
	lf.register(fs, "warn")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *url == "" {
		return errors.New("--url is required")
	}
	c := common{log: lf, gcPercent: 100}
	log, stopDebug, err := c.logger(stderr)
	if err != nil {
		return err
	}
	defer stopDebug()
	logFatalTo(ctx, log)
	b := &bridge.Bridge{URL: *url, Log: log}
	return b.Run(ctx, os.Stdin, stdout)
}
