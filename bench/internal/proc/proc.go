// Package proc runs the benchmark harnesses' child processes: start one,
// wait for a line saying it is ready (and, for an MCP server, until it
// answers initialize), stop it with a grace period, and make sure none
// outlives the harness; it also builds the mcpstream binary they run.
package proc

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Proc is a child process of a harness.
type Proc struct {
	cmd *exec.Cmd
	// Match is the first group of the ready line that Start waited for.
	Match string
	// Groups are every group of that line (Groups[0] is Match).
	Groups  []string
	exited  chan struct{} // closed when the process has exited
	exitErr error         // its Wait error, once exited is closed
	errTail *tail         // the end of its stderr
	outHead *head         // the start of its stdout
}

// Start runs argv and waits until a line of its stdout matches ready (its
// first group becomes Match). The process is killed if the harness dies
// (Linux), if ctx ends first, or if it never gets ready.
func Start(ctx context.Context, argv []string, ready *regexp.Regexp) (*Proc, error) {
	return StartEnv(ctx, argv, nil, ready)
}

// StartEnv is Start with env as the process's environment ("KEY=value"
// entries; nil: the harness's own).
func StartEnv(ctx context.Context, argv, env []string, ready *regexp.Regexp) (*Proc, error) {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = env
	cmd.Stdin = nil
	killWithParent(cmd)
	p := &Proc{cmd: cmd, exited: make(chan struct{}), errTail: newTail(40), outHead: &head{n: 100}}
	cmd.Stderr = p.errTail
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	found := make(chan []string, 1)
	scanDone := make(chan struct{})
	go func() {
		defer close(scanDone)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			p.outHead.add(sc.Text())
			if m := ready.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case found <- m[1:]:
				default:
				}
			}
		}
		_, _ = io.Copy(io.Discard, stdout)
	}()
	go func() {
		<-scanDone // Wait closes stdout: read all of it first
		p.exitErr = cmd.Wait()
		close(p.exited)
	}()
	timer := time.NewTimer(2 * time.Minute)
	defer timer.Stop()
	select {
	case m := <-found:
		p.Match, p.Groups = m[0], m
		return p, nil
	case <-p.exited:
		return nil, fmt.Errorf("%s exited before it was ready: %v\n%s", argv[0], p.exitErr, p.StderrTail())
	case <-ctx.Done():
		p.Kill()
		return nil, ctx.Err()
	case <-timer.C:
		p.Kill()
		return nil, fmt.Errorf("%s not ready after 2m\n%s", argv[0], p.StderrTail())
	}
}

// Stop sends SIGINT and waits for the process to exit, killing it after
// grace.
func (p *Proc) Stop(grace time.Duration) error {
	if err := p.cmd.Process.Signal(os.Interrupt); err != nil && !errors.Is(err, os.ErrProcessDone) {
		p.Kill()
		return err
	}
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-p.exited:
		var ee *exec.ExitError
		if errors.As(p.exitErr, &ee) {
			return fmt.Errorf("exited with %v", ee)
		}
		return p.exitErr
	case <-t.C:
		p.Kill()
		return fmt.Errorf("still running %s after SIGINT: killed", grace)
	}
}

// PID is the process id.
func (p *Proc) PID() int { return p.cmd.Process.Pid }

// Exited is closed when the process has exited; Err is then its Wait error.
func (p *Proc) Exited() <-chan struct{} { return p.exited }

// Err is the process's Wait error, valid once Exited is closed.
func (p *Proc) Err() error { return p.exitErr }

// Kill ends the process at once, if it still runs, and waits for it.
func (p *Proc) Kill() {
	select {
	case <-p.exited:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.exited
}

// StdoutMatch is the first group of the first of the lines the process
// wrote to stdout (up to its 100th line) that matches re, or "". Lines
// written before the ready line are all there once Start has returned.
func (p *Proc) StdoutMatch(re *regexp.Regexp) string {
	p.outHead.mu.Lock()
	defer p.outHead.mu.Unlock()
	for _, l := range p.outHead.lines {
		if m := re.FindStringSubmatch(l); len(m) > 1 {
			return m[1]
		}
	}
	return ""
}

// head keeps the first n lines given to it.
type head struct {
	mu    sync.Mutex
	n     int
	lines []string
}

func (h *head) add(line string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.lines) < h.n {
		h.lines = append(h.lines, line)
	}
}

// StderrTail is the last lines the process wrote to stderr.
func (p *Proc) StderrTail() string { return p.errTail.String() }

// tail keeps the last n lines written to it.
type tail struct {
	mu    sync.Mutex
	n     int
	lines []string
	part  string
}

func newTail(n int) *tail { return &tail{n: n} }

func (t *tail) Write(b []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := t.part + string(b)
	parts := strings.Split(s, "\n")
	t.part = parts[len(parts)-1]
	for _, l := range parts[:len(parts)-1] {
		t.lines = append(t.lines, l)
		if len(t.lines) > t.n {
			t.lines = t.lines[1:]
		}
	}
	return len(b), nil
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	lines := t.lines
	if t.part != "" {
		lines = append(lines[:len(lines):len(lines)], t.part)
	}
	return strings.Join(lines, "\n")
}
