package main

import (
	"flag"
	"fmt"
	"io"
	"log/slog"

	"github.com/mcpstream/mcpstream/internal/logging"
)

// The environment variables of --log-level and --log-format (parse reads
// them for every command that logs); a flag on the command line wins.
var (
	envLogLevel  = envName("log-level")
	envLogFormat = envName("log-format")
)

// logFlags are --log-level and --log-format, taken by every command that
// logs (dev, gateway, worker, provision and stdio).
type logFlags struct {
	level  string
	format string
}

// register adds --log-level (default defaultLevel) and --log-format
// (default text) to fs; parse gives them their variables' values.
func (l *logFlags) register(fs *flag.FlagSet, defaultLevel string) {
	fs.StringVar(&l.level, "log-level", defaultLevel,
		"log level (logs go to stderr): debug, info, warn or error [env "+envLogLevel+"]")
	fs.StringVar(&l.format, "log-format", logging.FormatText,
		"log line format: text (key=value) or json (one object a line); a traced request's lines carry trace_id and span_id [env "+envLogFormat+"]")
}

// logger returns the logger the flags describe, writing to w, or an error
// naming the flag and its variable when a value is not understood.
func (l *logFlags) logger(w io.Writer) (*slog.Logger, error) {
	lvl, err := logging.ParseLevel(l.level)
	if err != nil {
		return nil, fmt.Errorf("--log-level (or $%s): %w", envLogLevel, err)
	}
	log, err := logging.New(w, l.format, lvl)
	if err != nil {
		return nil, fmt.Errorf("--log-format (or $%s): %w", envLogFormat, err)
	}
	return log, nil
}
