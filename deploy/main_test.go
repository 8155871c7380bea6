// Package deploy_test checks the deployment files against the mcpstream
// command and the tools that read them, with no container engine:
// docker-compose.yml loaded by the Compose specification's own loader, the
// commands and MCPSTREAM_* variables of its mcpstream services parsed by
// the binary's own flags, the Prometheus configuration loaded by
// Prometheus' own loader, and the Grafana dashboard's queries parsed by
// Prometheus' own PromQL parser, each metric they name scraped from a real
// `mcpstream dev`.
package deploy_test

import (
	"bufio"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mcpstream/mcpstream/internal/testkit"
)

// bin is the mcpstream command, built once for the package's tests.
var bin testkit.Binary

func TestMain(m *testing.M) {
	code := m.Run()
	bin.Remove()
	os.Exit(code)
}

// root is the repository's root, the parent of this package's directory.
const root = ".."

// mcpstream is the command built for the package's tests (with the race
// detector when the tests have it).
func mcpstream(t *testing.T) string {
	t.Helper()
	return bin.Path(t, root, raceEnabled)
}

// binaryEnv is the environment of the binary's runs: a race-enabled
// binary otherwise waits a second on exit for late race reports.
var binaryEnv = []string{strings.TrimSpace("GORACE=" + os.Getenv("GORACE") + " atexit_sleep_ms=0")}

// configVariables reads the README's configuration table: each flag's
// variable, with the flag (without its dashes) and the commands that take
// it. cmd/mcpstream's TestConfigTable checks the table against the flags.
func configVariables(t *testing.T) map[string]configVar {
	t.Helper()
	f, err := os.Open(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	vars := map[string]configVar{}
	in := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "## ") {
			in = line == "## Configuration"
			continue
		}
		if !in || !strings.HasPrefix(line, "| `--") {
			continue
		}
		cells := strings.Split(line, " | ")
		if len(cells) < 4 {
			t.Fatalf("README.md's configuration table: a row of %d cells: %s", len(cells), line)
		}
		name := strings.Trim(cells[0], "| `-")
		v := strings.Trim(cells[1], "`")
		// A flag whose help differs between commands has a row for each.
		cv := vars[v]
		cv.flag, cv.commands = name, append(cv.commands, strings.Split(cells[3], ", ")...)
		vars[v] = cv
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(vars) < 10 {
		t.Fatalf("README.md's configuration table: %d variables", len(vars))
	}
	return vars
}

// configVar is a row of the README's configuration table.
type configVar struct {
	flag     string
	commands []string
}
