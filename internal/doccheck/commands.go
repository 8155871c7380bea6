package doccheck

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"
)

// Checker checks the commands of shell code blocks against the
// repository and a built mcpstream binary.
type Checker struct {
	// Root is the repository root; its Makefile names the make targets.
	Root string
	// Binary is the built mcpstream command.
	Binary string
	// Paths are the URL paths a local mcpstream serves; a curl command's
	// URL on a loopback host must have one of them.
	Paths []string
	// Timeout bounds each run of Binary (default 10 s).
	Timeout time.Duration
	// Env is added to the environment of each run of Binary.
	Env []string

	usages  map[string]*usage
	targets map[string]bool
}

// usage is what `mcpstream SUB -h` (or `mcpstream SUB SUBSUB -h`) says.
type usage struct {
	flags map[string]string // flag name to its type: "int", "duration", "string", ... or "" for a bool
	err   string            // why SUB -h failed, or ""
}

// MCPStreamArgs returns the arguments given to mcpstream by a command's
// words: those after `go run ./cmd/mcpstream` (go run's own flags and a
// module path or @version accepted), or after a program named mcpstream
// (mcpstream, ./bin/mcpstream, any path). ok is false for other commands.
// Variable assignments before the command are skipped.
func MCPStreamArgs(words []string) (args []string, ok bool) {
	words = skipAssignments(words)
	if len(words) == 0 {
		return nil, false
	}
	if words[0] == "go" && len(words) > 1 && words[1] == "run" {
		i := 2
		for i < len(words) && strings.HasPrefix(words[i], "-") {
			i++
		}
		if i < len(words) && isMCPStreamPackage(words[i]) {
			return words[i+1:], true
		}
		return nil, false
	}
	if path.Base(words[0]) == "mcpstream" {
		return words[1:], true
	}
	return nil, false
}

func isMCPStreamPackage(p string) bool {
	p, _, _ = strings.Cut(p, "@")
	p = strings.TrimSuffix(p, "/")
	return p == "./cmd/mcpstream" || p == "cmd/mcpstream" || p == "github.com/mcpstream/mcpstream/cmd/mcpstream"
}

var assignment = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*=`)

func skipAssignments(words []string) []string {
	for len(words) > 0 && assignment.MatchString(words[0]) {
		words = words[1:]
	}
	return words
}

// Check checks one command: that a run of mcpstream names an existing
// subcommand and only flags it defines, with values it accepts (the
// command is run with -h appended, placeholders replaced); that another
// go run, build, test... names package directories that exist; that make
// names Makefile targets; that curl addresses, on a loopback host, a path
// in Paths. Other commands pass unchecked: checked is false for them.
func (c *Checker) Check(ctx context.Context, cmd Command) (problems []Problem, checked bool) {
	words, err := cmd.Words(func(name string) string { return "$" + strings.Trim(name, "{}") })
	if err != nil {
		return []Problem{{cmd.File, cmd.Line, err.Error()}}, true
	}
	problem := func(format string, a ...any) {
		problems = append(problems, Problem{cmd.File, cmd.Line, fmt.Sprintf("`%s`: ", short(cmd.Text)) + fmt.Sprintf(format, a...)})
	}
	if args, ok := MCPStreamArgs(words); ok {
		for _, msg := range c.checkMCPStream(ctx, args) {
			problem("%s", msg)
		}
		return problems, true
	}
	words = skipAssignments(words)
	if len(words) == 0 {
		return nil, false
	}
	switch path.Base(words[0]) {
	case "go":
		if len(words) < 2 || !slices.Contains([]string{"run", "build", "install", "test", "vet", "generate", "list"}, words[1]) {
			return nil, false
		}
		for i := 2; i < len(words); i++ {
			w := words[i]
			if w == "-o" || w == "-C" || w == "-tags" || w == "-run" || w == "-bench" {
				i++
				continue
			}
			if strings.HasPrefix(w, "./") || w == "." {
				dir := strings.TrimSuffix(strings.TrimSuffix(w, "..."), "/")
				if info, err := os.Stat(filepath.Join(c.Root, filepath.FromSlash(dir))); err != nil || !info.IsDir() {
					problem("no package directory %s", w)
				}
				if words[1] == "run" {
					break // the program's own arguments follow
				}
			}
		}
		return problems, true
	case "make":
		targets, err := c.makeTargets()
		if err != nil {
			problem("%v", err)
			return problems, true
		}
		for i := 1; i < len(words); i++ {
			w := words[i]
			switch {
			case w == "-C" || w == "-f" || w == "-j" || w == "-I" || w == "-o" || w == "-W":
				i++
			case strings.HasPrefix(w, "-") || strings.Contains(w, "="):
			case !targets[w]:
				problem("the Makefile has no target %q", w)
			}
		}
		return problems, true
	case "curl":
		for _, w := range words[1:] {
			u, ok := localURL(w)
			if ok && !slices.Contains(c.Paths, u.Path) {
				problem("%s is not served by mcpstream (it serves %s)", u.Path, strings.Join(c.Paths, ", "))
			}
		}
		return problems, true
	}
	return nil, false
}

// checkMCPStream checks `mcpstream args...`.
func (c *Checker) checkMCPStream(ctx context.Context, args []string) []string {
	if len(args) == 0 {
		return nil // mcpstream alone prints its usage
	}
	sub := args[0]
	if strings.HasPrefix(sub, "-") || sub == "help" {
		if out, err := c.run(ctx, args...); err != nil {
			return []string{fmt.Sprintf("mcpstream %s fails: %s", sub, firstLine(out, err))}
		}
		return nil
	}
	u := c.usage(ctx, sub)
	if u.err != "" {
		return []string{u.err}
	}
	// A subcommand may have subcommands of its own (apikey create): the
	// next word names one when `mcpstream SUB WORD -h` prints "Usage of
	// SUB WORD:", and its flags are then those checked.
	cmd := []string{sub}
	if len(args) > 1 && !strings.HasPrefix(args[1], "-") {
		if nested := c.usage(ctx, sub, args[1]); nested.err == "" {
			cmd, u = append(cmd, args[1]), nested
		}
	}
	usageOf := "Usage of " + strings.Join(cmd, " ") + ":"
	var msgs []string
	run := append(slices.Clone(cmd), args[len(cmd):]...)
	for i := len(cmd); i < len(run); i++ {
		w := run[i]
		if w == "--" || !strings.HasPrefix(w, "-") || w == "-" {
			break // flag parsing ends: mcpstream takes no arguments, the run says so
		}
		name, val, hasVal := strings.Cut(strings.TrimPrefix(strings.TrimPrefix(w, "-"), "-"), "=")
		typ, ok := u.flags[name]
		switch {
		case !ok && name != "h" && name != "help":
			msgs = append(msgs, fmt.Sprintf("mcpstream %s has no flag --%s", strings.Join(cmd, " "), name))
		case typ == "" || !ok:
		case hasVal:
			if isPlaceholder(val) {
				run[i] = "--" + name + "=" + sample(typ, val)
			}
		case i+1 < len(run):
			i++
			if isPlaceholder(run[i]) {
				run[i] = sample(typ, run[i])
			}
		}
	}
	if len(msgs) > 0 {
		return msgs
	}
	out, err := c.run(ctx, append(run, "-h")...)
	if err != nil || !strings.Contains(out, usageOf) || strings.Contains(out, "flag provided but not defined") {
		return []string{fmt.Sprintf("mcpstream %s -h fails: %s", strings.Join(run, " "), firstLine(out, err))}
	}
	return nil
}

// flagLine matches a flag in the flag package's usage: "  -name type",
// the type left out for a bool, the usage text following a tab on the
// same line for a one-letter name.
var flagLine = regexp.MustCompile(`^  -([^\s=]+)(?: ([^\s]+))?(?:\t.*)?$`)

// usage runs `mcpstream CMD... -h` once and returns what it says: the
// flags of the subcommand cmd names (one word, or a subcommand's
// subcommand: apikey create), or why it has none.
func (c *Checker) usage(ctx context.Context, cmd ...string) *usage {
	sub := strings.Join(cmd, " ")
	if u, ok := c.usages[sub]; ok {
		return u
	}
	if c.usages == nil {
		c.usages = map[string]*usage{}
	}
	u := &usage{flags: map[string]string{}}
	c.usages[sub] = u
	out, err := c.run(ctx, append(cmd, "-h")...)
	if err != nil || !strings.Contains(out, "Usage of "+sub+":") {
		u.err = fmt.Sprintf("mcpstream has no subcommand %q: mcpstream %s -h says %s", sub, sub, firstLine(out, err))
		return u
	}
	for _, l := range strings.Split(out, "\n") {
		if m := flagLine.FindStringSubmatch(l); m != nil {
			u.flags[m[1]] = m[2]
		}
	}
	return u
}

// run runs the binary with args and returns its output, stdout and
// stderr together.
func (c *Checker) run(ctx context.Context, args ...string) (string, error) {
	timeout := c.Timeout
	if timeout == 0 {
		timeout = 10 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, c.Binary, args...)
	cmd.Env = append(os.Environ(), c.Env...)
	cmd.WaitDelay = time.Second
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		err = fmt.Errorf("still running after %s", timeout)
	}
	return string(out), err
}

// makeTargets reads the explicit targets of the Makefile.
func (c *Checker) makeTargets() (map[string]bool, error) {
	if c.targets != nil {
		return c.targets, nil
	}
	src, err := os.ReadFile(filepath.Join(c.Root, "Makefile"))
	if err != nil {
		return nil, err
	}
	c.targets = MakeTargets(src)
	return c.targets, nil
}

var ruleLine = regexp.MustCompile(`(?m)^([^\s:#=][^:#=]*)(?::(?:[^:=]|$)|::(?:[^=]|$))`)

// MakeTargets returns the targets of a Makefile's explicit rules ("a b:"
// lines, not variable assignments or recipes), special targets such as
// .PHONY left out.
func MakeTargets(makefile []byte) map[string]bool {
	targets := map[string]bool{}
	for _, m := range ruleLine.FindAllSubmatch(makefile, -1) {
		for _, t := range strings.Fields(string(m[1])) {
			if !strings.HasPrefix(t, ".") && !strings.Contains(t, "$") && !strings.Contains(t, "%") {
				targets[t] = true
			}
		}
	}
	return targets
}

// placeholder matches the words documentation puts in place of a value:
// URL, HOST:PORT, N, A,B,C, <dir>, ...
var placeholder = regexp.MustCompile(`^(?:[A-Z][A-Z0-9_]*(?:[:,./-][A-Z][A-Z0-9_]*)*|<[^>]*>|\.\.\.|…)$`)

func isPlaceholder(v string) bool {
	return strings.Contains(v, "$") || placeholder.MatchString(v)
}

// sample is a value of a flag's type standing in for a placeholder.
func sample(typ, placeholder string) string {
	switch typ {
	case "int", "int64", "uint", "uint64", "float", "float64":
		return "1"
	case "duration":
		return "1s"
	}
	return placeholder
}

// localURL parses w as a URL on a loopback host (or a placeholder one).
func localURL(w string) (*url.URL, bool) {
	if !strings.Contains(w, "://") {
		return nil, false
	}
	u, err := url.Parse(w)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") {
		return nil, false
	}
	h := u.Hostname()
	if ip := net.ParseIP(h); h == "localhost" || (ip != nil && (ip.IsLoopback() || ip.IsUnspecified())) || isPlaceholder(h) {
		if u.Path == "" {
			u.Path = "/"
		}
		return u, true
	}
	return nil, false
}

// RunCurls runs the curl commands of cmds, in order, against an
// mcpstream at addr (host:port), in dir; other commands, and curl commands
// with no URL on a loopback (or placeholder) host, are skipped. In
// each, the host of a loopback URL becomes addr, a variable whose name
// has SID or SESSION in it becomes the Mcp-Session-Id of the last response
// that carried one, and other variables become "x". Each must exit 0 with
// an HTTP 2xx status, and its body (JSON or server-sent events) must hold
// neither a JSON-RPC error nor a tool result with isError. curl is the
// curl program's path.
func RunCurls(ctx context.Context, curl, addr, dir string, cmds []Command) []Problem {
	var (
		sid      string
		problems []Problem
	)
	for _, cmd := range cmds {
		words, err := cmd.Words(func(name string) string {
			if n := strings.ToUpper(name); (strings.Contains(n, "SID") || strings.Contains(n, "SESSION")) && sid != "" {
				return sid
			}
			return "x"
		})
		words = skipAssignments(words)
		if err != nil || len(words) == 0 || path.Base(words[0]) != "curl" || !slices.ContainsFunc(words[1:], func(w string) bool {
			_, ok := localURL(w)
			return ok
		}) {
			continue
		}
		problem := func(format string, a ...any) {
			problems = append(problems, Problem{cmd.File, cmd.Line, fmt.Sprintf("`%s`: ", short(cmd.Text)) + fmt.Sprintf(format, a...)})
		}
		args := make([]string, 0, len(words)+8)
		for _, w := range words[1:] {
			if u, ok := localURL(w); ok {
				w = strings.Replace(w, u.Host, addr, 1)
			}
			args = append(args, w)
		}
		headers := filepath.Join(dir, "doccheck-headers")
		_ = os.Remove(headers)
		const marker = "\ndoccheck-status:"
		args = append(args, "-sS", "--max-time", "10", "-D", headers, "-w", marker+"%{http_code}\n")
		run := exec.CommandContext(ctx, curl, args...)
		run.Dir = dir
		var stdout, stderr bytes.Buffer
		run.Stdout, run.Stderr = &stdout, &stderr
		err = run.Run()
		body, status, _ := strings.Cut(stdout.String(), marker)
		status = strings.TrimSpace(status)
		if hs, err := os.ReadFile(headers); err == nil {
			sc := bufio.NewScanner(bytes.NewReader(hs))
			for sc.Scan() {
				if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.EqualFold(strings.TrimSpace(k), "Mcp-Session-Id") {
					sid = strings.TrimSpace(v)
				}
			}
		}
		if err != nil {
			var exit *exec.ExitError
			if errors.As(err, &exit) {
				problem("curl exits %d: %s", exit.ExitCode(), strings.TrimSpace(stderr.String()))
			} else {
				problem("running curl: %v", err)
			}
			continue
		}
		if !strings.HasPrefix(status, "2") {
			problem("HTTP status %s: %s", status, short(stripHeaders(body)))
			continue
		}
		if msg := rpcError(stripHeaders(body)); msg != "" {
			problem("%s", msg)
		}
	}
	return problems
}

// stripHeaders drops the response headers curl -i prints before a body.
func stripHeaders(body string) string {
	for strings.HasPrefix(body, "HTTP/") {
		_, rest, ok := strings.Cut(body, "\r\n\r\n")
		if !ok {
			return ""
		}
		body = rest
	}
	return body
}

func short(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 100 {
		return s[:97] + "..."
	}
	return s
}

func firstLine(out string, err error) string {
	for _, l := range strings.Split(out, "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "Usage of") {
			return l
		}
	}
	if err != nil {
		return err.Error()
	}
	return "no usage printed"
}

// rpcError returns what is wrong with a response body: a JSON-RPC error
// or a tool result with isError, in a JSON body or in the data of
// server-sent events; "" for anything else.
func rpcError(body string) string {
	body = strings.TrimSpace(body)
	if strings.HasPrefix(body, "{") || strings.HasPrefix(body, "[") {
		return jsonRPCError([]byte(body))
	}
	for _, l := range strings.Split(body, "\n") {
		if data, ok := strings.CutPrefix(strings.TrimRight(l, "\r"), "data:"); ok {
			if msg := jsonRPCError([]byte(strings.TrimSpace(data))); msg != "" {
				return msg
			}
		}
	}
	return ""
}

func jsonRPCError(b []byte) string {
	var msgs []struct {
		Error  json.RawMessage `json:"error"`
		Result struct {
			IsError bool            `json:"isError"`
			Content json.RawMessage `json:"content"`
		} `json:"result"`
	}
	if len(b) > 0 && b[0] == '{' {
		b = append(append([]byte{'['}, b...), ']')
	}
	if json.Unmarshal(b, &msgs) != nil {
		return ""
	}
	for _, m := range msgs {
		switch {
		case len(m.Error) > 0 && string(m.Error) != "null":
			return "JSON-RPC error " + short(string(m.Error))
		case m.Result.IsError:
			return "tool error " + short(string(m.Result.Content))
		}
	}
	return ""
}
