package proc

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/mcpstream/mcpstream/bench"
)

// Endpoint is the MCP endpoint announced by the ready line: Match itself
// when it is a URL, else the host:port it names, serving /mcp.
func (p *Proc) Endpoint() string {
	if strings.HasPrefix(p.Match, "http") {
		return p.Match
	}
	return "http://" + p.Match + "/mcp"
}

// WaitInitialize polls the process's endpoint until it answers an
// initialize. It returns an error if the process exits first, or if no
// answer comes within the given time.
func (p *Proc) WaitInitialize(ctx context.Context, within time.Duration) error {
	return p.WaitInitializeAs(ctx, within, nil)
}

// WaitInitializeAs is WaitInitialize with header sent with each probe (the
// credentials of a server that refuses anonymous clients).
func (p *Proc) WaitInitializeAs(ctx context.Context, within time.Duration, header http.Header) error {
	url := p.Endpoint()
	ctx, cancel := context.WithTimeout(ctx, within)
	defer cancel()
	backoff := 10 * time.Millisecond
	for {
		pctx, pcancel := context.WithTimeout(ctx, 5*time.Second)
		err := bench.ProbeAs(pctx, url, header)
		pcancel()
		if err == nil {
			return nil
		}
		select {
		case <-p.Exited():
			return fmt.Errorf("server exited before answering initialize: %v\n%s", p.Err(), p.StderrTail())
		case <-ctx.Done():
			return fmt.Errorf("no answer to initialize at %s: %w", url, err)
		case <-time.After(backoff):
			backoff = min(2*backoff, 500*time.Millisecond)
		}
	}
}

// Serve starts argv as Start does, waits until it answers initialize, calls
// drive with its MCP endpoint and process id, and stops it. A failure to
// stop is reported to stderr (with what the server last wrote there), not
// returned, unless drive failed; drive's error is returned as is.
func Serve(ctx context.Context, argv []string, ready *regexp.Regexp, stderr io.Writer, drive func(endpoint string, pid int) error) error {
	return ServeEnv(ctx, argv, nil, ready, stderr, func(p *Proc) error { return drive(p.Endpoint(), p.PID()) })
}

// ServeEnv is Serve with env as the process's environment (nil: the
// harness's own), handing drive the process itself.
func ServeEnv(ctx context.Context, argv, env []string, ready *regexp.Regexp, stderr io.Writer, drive func(*Proc) error) error {
	return ServeAs(ctx, argv, env, nil, ready, stderr, drive)
}

// ServeAs is ServeEnv with header sent with the probes that wait for the
// server to answer initialize (see [Proc.WaitInitializeAs]).
func ServeAs(ctx context.Context, argv, env []string, header http.Header, ready *regexp.Regexp, stderr io.Writer, drive func(*Proc) error) error {
	p, err := StartEnv(ctx, argv, env, ready)
	if err != nil {
		return err
	}
	defer p.Kill()
	if err := p.WaitInitializeAs(ctx, 30*time.Second, header); err != nil {
		return err
	}
	driveErr := drive(p)
	if err := p.Stop(40 * time.Second); err != nil && driveErr == nil {
		fmt.Fprintf(stderr, "stopping %s: %v\n", filepath.Base(argv[0]), err)
	}
	if tail := p.StderrTail(); tail != "" {
		fmt.Fprintf(stderr, "%s wrote to stderr (last lines):\n%s\n", filepath.Base(argv[0]), tail)
	}
	return driveErr
}

// BuildMcpstream builds ./cmd/mcpstream of the enclosing module into dir
// and returns the binary's path. It fails outside the module.
func BuildMcpstream(ctx context.Context, dir string) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("finding the module: go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", fmt.Errorf("run inside the mcpstream module (go env GOMOD is %q)", gomod)
	}
	bin := filepath.Join(dir, "mcpstream")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/mcpstream")
	cmd.Dir = filepath.Dir(gomod)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("go build ./cmd/mcpstream: %w\n%s", err, stderr.String())
	}
	return bin, nil
}
