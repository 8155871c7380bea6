package main

import (
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/mcpstream/mcpstream/internal/logging"
)

// The environment variables that give --log-level and --log-format their
// defaults; a flag on the command line wins.
const (
	envLogLevel  = "MCPSTREAM_LOG_LEVEL"
	envLogFormat = "MCPSTREAM_LOG_FORMAT"
)

// logFlags are --log-level and --log-format, taken by every command that
// logs (dev, gateway, worker, provision and stdio).
type logFlags struct {
	level  string
	format string
}

// register adds --log-level (default defaultLevel) and --log-format
// (default text) to fs, each defaulting to its environment variable
// instead when that is set and not empty.
func (l *logFlags) register(fs *flag.FlagSet, defaultLevel string) {
	fs.StringVar(&l.level, "log-level", envOr(envLogLevel, defaultLevel),
		"log level (logs go to stderr): debug, info, warn or error [env "+envLogLevel+"]")
	fs.StringVar(&l.format, "log-format", envOr(envLogFormat, logging.FormatText),
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

// envOr returns the environment variable key when it is set and not
// blank, def otherwise.
func envOr(key, def string) string {
	if v, ok := os.LookupEnv(key); ok && strings.TrimSpace(v) != "" {
		return v
	}
	return def
}
