package doccheck_test

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mcpstream/mcpstream/gateway"
	"github.com/mcpstream/mcpstream/internal/doccheck"
	"github.com/mcpstream/mcpstream/internal/testkit"
)

// These tests check the repository's own documentation: README.md and
// docs/**/*.md, and the commands of README.md's quick start.

const quickStart = "Quick start"

// servedPaths are the paths mcpstream gateway and dev serve.
var servedPaths = []string{gateway.MCPPath, gateway.SSEPath, gateway.MessagesPath, "/healthz"}

// bin is the mcpstream command, built once for the package's tests.
var bin testkit.Binary

func TestMain(m *testing.M) {
	code := m.Run()
	bin.Remove()
	os.Exit(code)
}

// mcpstream is the command built for the package's tests (with the race
// detector when the tests have it).
func mcpstream(t *testing.T) string {
	t.Helper()
	return bin.Path(t, moduleRoot(t), raceEnabled)
}

// binaryEnv is the environment of the binary's runs: a race-enabled
// binary otherwise waits a second on exit for late race reports.
var binaryEnv = []string{strings.TrimSpace("GORACE=" + os.Getenv("GORACE") + " atexit_sleep_ms=0")}

// moduleRoot is the directory of the go.mod above the test's directory.
func moduleRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if b, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil && bytes.Contains(b, []byte("module github.com/mcpstream/mcpstream\n")) {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod of github.com/mcpstream/mcpstream above the working directory")
		}
		dir = parent
	}
}

// TestDocLinks: every relative link and image of README.md and docs/
// names an existing file, and every fragment a heading or anchor of its
// target.
func TestDocLinks(t *testing.T) {
	root := moduleRoot(t)
	files, err := doccheck.MarkdownFiles(root)
	if err != nil {
		t.Fatal(err)
	}
	problems, err := doccheck.CheckLinks(root, files)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("%s", p)
	}
	t.Logf("checked %d files: %s", len(files), strings.Join(files, ", "))
}

// quickStartCommands returns the commands of the shell blocks of
// README.md's quick start.
func quickStartCommands(t *testing.T, root string) []doccheck.Command {
	t.Helper()
	src, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	blocks, ok := doccheck.Parse(src).Section(quickStart)
	if !ok {
		t.Fatalf("README.md has no %q heading", quickStart)
	}
	var cmds []doccheck.Command
	for _, b := range blocks {
		if doccheck.ShellLangs[b.Lang] {
			cmds = append(cmds, doccheck.CommandsIn("README.md", b)...)
		}
	}
	if len(cmds) == 0 {
		t.Fatalf("README.md's %q has no command in a sh block", quickStart)
	}
	return cmds
}

// TestQuickStartCommands: each mcpstream, make and curl command of the
// quick start is one that works: mcpstream's subcommands and flags parse
// (-h appended), make's targets exist, and curl's requests, sent to a
// running mcpstream dev, are answered without error.
func TestQuickStartCommands(t *testing.T) {
	root := moduleRoot(t)
	cmds := quickStartCommands(t, root)
	c := &doccheck.Checker{Root: root, Binary: mcpstream(t), Paths: servedPaths, Env: binaryEnv}
	ctx := context.Background()
	var curls []doccheck.Command
	var dev []string
	for _, cmd := range cmds {
		problems, checked := c.Check(ctx, cmd)
		for _, p := range problems {
			t.Errorf("%s", p)
		}
		if checked {
			t.Logf("%s:%d: checked: %s", cmd.File, cmd.Line, cmd.Text)
		} else {
			t.Logf("%s:%d: not checked: %s", cmd.File, cmd.Line, cmd.Text)
		}
		words, err := cmd.Words(func(string) string { return "x" })
		if err != nil || len(words) == 0 {
			continue
		}
		if args, ok := doccheck.MCPStreamArgs(words); ok && len(args) > 0 && args[0] == "dev" && dev == nil && len(problems) == 0 {
			dev = args
		}
		if filepath.Base(words[0]) == "curl" {
			curls = append(curls, cmd)
		}
	}
	if len(curls) == 0 {
		return
	}
	t.Run("curl", func(t *testing.T) {
		curl, err := exec.LookPath("curl")
		if err != nil {
			t.Skip("curl is not installed: the quick start's curl commands were only checked for their paths, not run")
		}
		if dev == nil {
			dev = []string{"dev"}
		}
		addr := startDev(t, mcpstream(t), dev)
		ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		for _, p := range doccheck.RunCurls(ctx, curl, addr, t.TempDir(), curls) {
			t.Errorf("%s", p)
		}
	})
}

// TestDocCommands: the commands of the other shell blocks of README.md
// and docs/ pass the same checks, except that curl is not run.
func TestDocCommands(t *testing.T) {
	root := moduleRoot(t)
	files, err := doccheck.MarkdownFiles(root)
	if err != nil {
		t.Fatal(err)
	}
	var c *doccheck.Checker
	for _, f := range files {
		src, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(f)))
		if err != nil {
			t.Fatal(err)
		}
		d := doccheck.Parse(src)
		skip := map[int]bool{} // the quick start's blocks, which TestQuickStartCommands checks
		if f == "README.md" {
			blocks, _ := d.Section(quickStart)
			for _, b := range blocks {
				skip[b.Line] = true
			}
		}
		for _, b := range d.CodeBlocks {
			if !doccheck.ShellLangs[b.Lang] || skip[b.Line] {
				continue
			}
			for _, cmd := range doccheck.CommandsIn(f, b) {
				if c == nil {
					c = &doccheck.Checker{Root: root, Binary: mcpstream(t), Paths: servedPaths, Env: binaryEnv}
				}
				problems, checked := c.Check(context.Background(), cmd)
				for _, p := range problems {
					t.Errorf("%s", p)
				}
				if checked {
					t.Logf("%s:%d: checked: %s", cmd.File, cmd.Line, cmd.Text)
				} else {
					t.Logf("%s:%d: not checked: %s", cmd.File, cmd.Line, cmd.Text)
				}
			}
		}
	}
}

var endpoint = regexp.MustCompile(`MCP endpoint http://(\S+?)/mcp`)

// hostPort matches a flag value with a fixed port, set to 0 for the test's
// run so that it never collides with a port in use.
var hostPort = regexp.MustCompile(`^([\w.-]*|\[[0-9a-fA-F:]+\]):[1-9][0-9]*$`)

// startDev runs `mcpstream dev` with the quick start's flags, listening on
// a free loopback port, until the test ends; it returns the MCP
// endpoint's host:port.
func startDev(t *testing.T, bin string, args []string) string {
	t.Helper()
	args = append([]string(nil), args...)
	for i, a := range args {
		if m := hostPort.FindStringSubmatch(a); m != nil {
			args[i] = m[1] + ":0"
		}
	}
	args = append(args, "--addr", "127.0.0.1:0")
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), binaryEnv...)
	var stderr testkit.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if m := endpoint.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case addr <- m[1]:
				default:
				}
			}
		}
		_, _ = io.Copy(io.Discard, out)
		done <- cmd.Wait()
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-done:
			if err != nil && !t.Failed() {
				t.Errorf("mcpstream %s exits with %v on SIGTERM\n%s", strings.Join(args, " "), err, stderr.String())
			}
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			t.Errorf("mcpstream %s still running 15 s after SIGTERM", strings.Join(args, " "))
		}
	})
	select {
	case a := <-addr:
		return a
	case err := <-done:
		t.Fatalf("mcpstream %s exited before serving: %v\n%s", strings.Join(args, " "), err, stderr.String())
	case <-time.After(20 * time.Second):
		t.Fatalf("mcpstream %s printed no MCP endpoint in 20 s\n%s", strings.Join(args, " "), stderr.String())
	}
	return ""
}
