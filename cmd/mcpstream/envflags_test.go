package main

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestEnvFlags: a flag not on the command line takes its MCPSTREAM_
// variable's value, a flag on it wins, a blank variable counts as unset,
// and a bad value is refused with an error naming the variable.
func TestEnvFlags(t *testing.T) {
	env := map[string]string{
		"MCPSTREAM_MAX_BODY":        "1000",
		"MCPSTREAM_CALL_TIMEOUT":    "7s",
		"MCPSTREAM_ADDR":            "0.0.0.0:9999",
		"MCPSTREAM_NATS":            "nats://a:4222,nats://b:4222",
		"MCPSTREAM_REPLICAS":        "3",
		"MCPSTREAM_AUTH_SERVER":     "https://a.example,https://b.example",
		"MCPSTREAM_ALLOWED_ORIGINS": " ",
		"MCPSTREAM_LOG_LEVEL":       "debug",
	}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	fs, f := gatewayFlagSet(io.Discard)
	if err := parseEnv(fs, []string{"--addr", "127.0.0.1:1", "--replicas=1"}, lookup, nil); err != nil {
		t.Fatal(err)
	}
	if f.gw.maxBody != 1000 || f.gw.callTimeout != 7*time.Second || f.nats.url != "nats://a:4222,nats://b:4222" ||
		f.log.level != "debug" || len(f.gw.authServers) != 2 {
		t.Errorf("from the environment: max body %d, call timeout %s, nats %q, log level %q, auth servers %q",
			f.gw.maxBody, f.gw.callTimeout, f.nats.url, f.log.level, f.gw.authServers)
	}
	if f.addr != "127.0.0.1:1" || f.replicas != 1 {
		t.Errorf("flags over the environment: addr %q, replicas %d", f.addr, f.replicas)
	}
	if f.gw.origins != "" {
		t.Errorf("a blank variable was applied: %q", f.gw.origins)
	}

	// A bool and a worker flag.
	env = map[string]string{"MCPSTREAM_RECORD_RESULTS": "true", "MCPSTREAM_CONCURRENCY": "8"}
	wfs, w := workerFlagSet(io.Discard)
	if err := parseEnv(wfs, nil, lookup, nil); err != nil {
		t.Fatal(err)
	}
	if !w.rec.results || w.concurrency != 8 {
		t.Errorf("worker from the environment: record %v, concurrency %d", w.rec.results, w.concurrency)
	}

	for _, c := range []struct{ key, value, want string }{
		{"MCPSTREAM_MAX_BODY", "lots", `$MCPSTREAM_MAX_BODY (--max-body): invalid value "lots"`},
		{"MCPSTREAM_CALL_TIMEOUT", "7", `$MCPSTREAM_CALL_TIMEOUT (--call-timeout): invalid value "7"`},
		{"MCPSTREAM_PRINT_PERMISSIONS", "maybe", `$MCPSTREAM_PRINT_PERMISSIONS (--print-permissions): invalid value "maybe"`},
	} {
		env = map[string]string{c.key: c.value}
		fs, _ := provisionFlagSet(io.Discard)
		if c.key != "MCPSTREAM_PRINT_PERMISSIONS" {
			fs, _ = gatewayFlagSet(io.Discard)
		}
		err := parseEnv(fs, nil, lookup, nil)
		if err == nil || !strings.HasPrefix(err.Error(), c.want) {
			t.Errorf("%s=%s: %v, want %s...", c.key, c.value, err, c.want)
		}
	}
}

// TestEnvFlagsCommand: the real command reads the environment: provision
// prints the permissions block when MCPSTREAM_PRINT_PERMISSIONS says so,
// for the groups of MCPSTREAM_GROUPS, and fails on a bad variable.
func TestEnvFlagsCommand(t *testing.T) {
	t.Setenv("MCPSTREAM_PRINT_PERMISSIONS", "1")
	t.Setenv("MCPSTREAM_GROUPS", "alpha")
	var out bytes.Buffer
	if code := run([]string{"provision"}, &out, io.Discard); code != 0 {
		t.Fatalf("exit code %d", code)
	}
	if !strings.Contains(out.String(), "grp-alpha") {
		t.Errorf("no permissions of group alpha in:\n%s", out.String())
	}
	t.Setenv("MCPSTREAM_PARTITIONS", "four")
	var stderr bytes.Buffer
	if code := run([]string{"provision"}, io.Discard, &stderr); code != 1 || !strings.Contains(stderr.String(), "$MCPSTREAM_PARTITIONS (--partitions)") {
		t.Errorf("exit code %d, stderr %q", code, stderr.String())
	}
}

// TestEnvNamesDistinct: no flag's variable is one of the secrets read from
// the environment only, and no two flags share one.
func TestEnvNamesDistinct(t *testing.T) {
	for cmd, fs := range configFlagSets() {
		seen := map[string]string{}
		fs.VisitAll(func(f *flag.Flag) {
			v := envName(f.Name)
			if slices.Contains([]string{envNATSUser, envNATSPassword, envNATSToken}, v) || strings.HasSuffix(v, "_PASSWORD") {
				t.Errorf("%s --%s: its variable %s is a secret's", cmd, f.Name, v)
			}
			if other, ok := seen[v]; ok {
				t.Errorf("%s: --%s and --%s share %s", cmd, f.Name, other, v)
			}
			seen[v] = f.Name
		})
	}
}

// configRow is one row of the README's configuration table.
type configRow struct {
	flag, variable, def, commands, meaning string
}

// configCommands are the commands of the table, in its order.
var configCommands = []string{"gateway", "worker", "provision"}

// wantConfigRows are the rows the flag sets make, sorted by flag name: a
// row a flag, with the commands that take it; a flag whose help or
// default differs between commands (--group-queue-target of gateway and
// worker) has a row for each.
func wantConfigRows(t *testing.T) []configRow {
	t.Helper()
	sets := configFlagSets()
	rows := map[string]*configRow{}
	for _, cmd := range configCommands {
		sets[cmd].VisitAll(func(f *flag.Flag) {
			r := configRow{flag: "--" + f.Name, variable: envName(f.Name), def: flagDefault(f), meaning: f.Usage}
			key := f.Name + "\x00" + r.def + "\x00" + r.meaning
			if have, ok := rows[key]; ok {
				have.commands += ", " + cmd
				return
			}
			r.commands = cmd
			rows[key] = &r
		})
	}
	var out []configRow
	for _, r := range rows {
		out = append(out, *r)
	}
	slices.SortFunc(out, func(a, b configRow) int {
		if c := strings.Compare(a.flag, b.flag); c != 0 {
			return c
		}
		return strings.Compare(a.commands, b.commands)
	})
	return out
}

// flagDefault is what the table gives as f's default: the "(default X)"
// of its help, "off" for one "off by default", its zero-less default
// value, or "none".
func flagDefault(f *flag.Flag) string {
	if _, rest, ok := strings.Cut(f.Usage, "(default "); ok {
		depth := 0
		for i, r := range rest {
			switch r {
			case '(':
				depth++
			case ')':
				if depth == 0 {
					return rest[:i]
				}
				depth--
			}
		}
	}
	if strings.Contains(f.Usage, "off by default") {
		return "off"
	}
	switch f.DefValue {
	case "", "0", "false", "0s":
		return "none"
	}
	return "`" + f.DefValue + "`"
}

// cell escapes s for a Markdown table cell.
func cell(s string) string {
	return strings.NewReplacer("|", `\|`, "<", "&lt;").Replace(s)
}

// format is r as a line of the table.
func (r configRow) format() string {
	return fmt.Sprintf("| `%s` | `%s` | %s | %s | %s |", r.flag, r.variable, cell(r.def), r.commands, cell(r.meaning))
}

// readmeConfigRows returns the rows of the table under the README's
// "## Configuration" heading, as written.
func readmeConfigRows(t *testing.T) []string {
	t.Helper()
	f, err := os.Open("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var rows []string
	in, table := false, false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "## "):
			in = line == "## Configuration"
			table = false
		case in && strings.HasPrefix(line, "| flag | variable |"):
			table = true
		case in && table && strings.HasPrefix(line, "|---"):
		case in && table && strings.HasPrefix(line, "|"):
			rows = append(rows, line)
		case in && table:
			table = false
			in = false
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return rows
}

// TestConfigTable: the README's configuration table lists every flag of
// gateway, worker and provision, each once, with its variable, its
// default, the commands that take it and its help, as the flag sets
// define them; on a difference it prints the table the flags make.
func TestConfigTable(t *testing.T) {
	want := wantConfigRows(t)
	got := readmeConfigRows(t)
	var lines []string
	for _, r := range want {
		lines = append(lines, r.format())
	}
	if slices.Equal(lines, got) {
		return
	}
	have := map[string]bool{}
	for _, g := range got {
		have[g] = true
	}
	for _, l := range lines {
		if !have[l] {
			t.Errorf("README.md's configuration table lacks or differs from:\n%s", l)
		}
		delete(have, l)
	}
	for g := range have {
		t.Errorf("README.md's configuration table has a row no flag makes:\n%s", g)
	}
	if !t.Failed() {
		t.Errorf("README.md's configuration table is not sorted by flag")
	}
	t.Logf("the table the flags make:\n| flag | variable | default | commands | meaning |\n|---|---|---|---|---|\n%s", strings.Join(lines, "\n"))
}
