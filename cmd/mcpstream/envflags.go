package main

import (
	"flag"
	"fmt"
	"os"
	"strings"
)

// envPrefix starts the environment variable of every flag: --max-body is
// MCPSTREAM_MAX_BODY.
const envPrefix = "MCPSTREAM_"

// logFlagNames are the flags every command that logs takes from the
// environment; gateway, worker and provision take all of theirs.
var logFlagNames = []string{"log-level", "log-format"}

// envName returns the environment variable of the flag named name:
// MCPSTREAM_ and the name in upper case, dashes as underscores.
func envName(name string) string {
	return envPrefix + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

// parse parses args into fs, refuses positional arguments, and then takes
// --log-level and --log-format, when args did not set them, from their
// variables (every command that logs does; the others have neither flag).
func parse(fs *flag.FlagSet, args []string) error {
	return parseEnv(fs, args, os.LookupEnv, logFlagNames)
}

// parseEnv parses args into fs, refuses positional arguments, and then
// gives each flag named in only (every flag of fs when only is nil) that
// args did not set the value of its variable (envName), read with lookup,
// when that is set and not blank: a flag on the command line wins. It
// returns an error naming the variable for a value the flag refuses.
func parseEnv(fs *flag.FlagSet, args []string, lookup func(string) (string, bool), only []string) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	return applyEnv(fs, lookup, only)
}

// applyEnv is parseEnv's second half, for a parsed fs: the flags not set
// on the command line (flag.Visit tells which were) take their variables'
// values.
func applyEnv(fs *flag.FlagSet, lookup func(string) (string, bool), only []string) error {
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var names []string
	if only == nil {
		fs.VisitAll(func(f *flag.Flag) { names = append(names, f.Name) })
	} else {
		names = only
	}
	for _, name := range names {
		f := fs.Lookup(name)
		if f == nil || set[name] {
			continue
		}
		key := envName(name)
		v, ok := lookup(key)
		if !ok || strings.TrimSpace(v) == "" {
			continue
		}
		if err := fs.Set(name, v); err != nil {
			return fmt.Errorf("$%s (--%s): invalid value %q: %w", key, name, v, err)
		}
	}
	return nil
}

// envUsage is the note a command whose every flag has a variable prints
// after its flags.
const envUsage = `
Every flag can also be set by its environment variable, ` + envPrefix + ` and the flag's name
in upper case with underscores (--max-body: ` + envPrefix + `MAX_BODY); a flag given wins.
`

// withEnvUsage makes fs's help end with envUsage, after what it printed
// before (the NATS variables of natsFlags).
func withEnvUsage(fs *flag.FlagSet) {
	prev := fs.Usage
	fs.Usage = func() {
		if prev != nil {
			prev()
		} else {
			fmt.Fprintf(fs.Output(), "Usage of %s:\n", fs.Name())
			fs.PrintDefaults()
		}
		fmt.Fprint(fs.Output(), envUsage)
	}
}
