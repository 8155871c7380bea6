package upstream

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// process is one running stdio server.
type process struct {
	cmd     *exec.Cmd
	stdin   *os.File // the parent's ends of the pipes
	stdout  *os.File
	stderr  *os.File
	waited  chan struct{} // closed once the process has exited
	waitErr error
	logs    sync.WaitGroup // the stderr reader
	once    sync.Once
	// stopGrace is how long the process has to exit after its stdin
	// closes, and again after SIGTERM, before it is killed.
	stopGrace time.Duration
}

// startProcess starts the server's command: argv with env added to this
// process's environment (less its MCPSTREAM_* variables), in dir (if set), its stdio on pipes of its own
// (the official SDK's IOTransport reads its messages, at most maxMessage
// bytes each) and its stderr, line by line, in log. It returns the
// connection and the process.
func startProcess(argv, env []string, dir string, maxMessage int, stopGrace time.Duration, log *slog.Logger) (mcp.Connection, *process, error) {
	if len(argv) == 0 {
		return nil, nil, errors.New("no command")
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(childEnv(os.Environ()), env...)
	cmd.Dir = dir
	ownGroup(cmd)
	inR, inW, err := os.Pipe()
	if err != nil {
		return nil, nil, fmt.Errorf("making a pipe: %w", err)
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		closeAll(inR, inW)
		return nil, nil, fmt.Errorf("making a pipe: %w", err)
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		closeAll(inR, inW, outR, outW)
		return nil, nil, fmt.Errorf("making a pipe: %w", err)
	}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = inR, outW, errW
	if err := cmd.Start(); err != nil {
		closeAll(inR, inW, outR, outW, errR, errW)
		return nil, nil, fmt.Errorf("starting %s: %w", argv[0], err)
	}
	closeAll(inR, outW, errW) // the child's ends
	p := &process{cmd: cmd, stdin: inW, stdout: outR, stderr: errR, waited: make(chan struct{}), stopGrace: stopGrace}
	go func() { p.waitErr = cmd.Wait(); close(p.waited) }()
	plog := log.With("pid", cmd.Process.Pid)
	p.logs.Add(1)
	go func() { defer p.logs.Done(); logLines(errR, plog) }()
	c, err := (&mcp.IOTransport{Reader: outR, Writer: inW, MaxLineLength: maxMessage}).Connect(context.Background())
	if err != nil {
		p.stop()
		p.wait()
		return nil, nil, fmt.Errorf("connecting to %s: %w", argv[0], err)
	}
	return c, p, nil
}

// childEnv is the worker's environment without its own settings
// (MCPSTREAM_*, NATS credentials among them): a hosted server is another
// party's program.
func childEnv(environ []string) []string {
	out := make([]string, 0, len(environ))
	for _, kv := range environ {
		if !strings.HasPrefix(kv, "MCPSTREAM_") {
			out = append(out, kv)
		}
	}
	return out
}

func closeAll(fs ...*os.File) {
	for _, f := range fs {
		_ = f.Close()
	}
}

// maxLogLine bounds one stderr line in the log; the rest is cut.
const maxLogLine = 8 << 10

// logLines logs each line of r until it ends.
func logLines(r io.Reader, log *slog.Logger) {
	br := bufio.NewReaderSize(r, maxLogLine)
	for {
		line, err := br.ReadSlice('\n')
		cut := errors.Is(err, bufio.ErrBufferFull)
		if len(line) > 0 {
			text := string(line)
			if !cut && text[len(text)-1] == '\n' {
				text = text[:len(text)-1]
			}
			log.Info("upstream stderr", "line", text, "cut", cut)
		}
		for cut { // skip the rest of an overlong line
			_, err = br.ReadSlice('\n')
			cut = errors.Is(err, bufio.ErrBufferFull)
		}
		if err != nil {
			return
		}
	}
}

// stop ends the process as the MCP stdio transport says a client
// should: its stdin closed, then SIGTERM after stopGrace, then SIGKILL
// after another; it does not wait (see wait).
func (p *process) stop() {
	p.once.Do(func() {
		_ = p.stdin.Close()
		go func() {
			for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGKILL} {
				t := time.NewTimer(p.stopGrace)
				select {
				case <-p.waited:
					t.Stop()
					return
				case <-t.C:
				}
				signalGroup(p.cmd, sig)
			}
		}()
	})
}

// wait waits for the process to exit, then for its stderr to be logged;
// descendants that still hold stderr are not waited for beyond
// stopGrace.
func (p *process) wait() {
	<-p.waited
	done := make(chan struct{})
	go func() { p.logs.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(p.stopGrace):
		signalGroup(p.cmd, syscall.SIGKILL)
	}
	_ = p.stderr.Close()
	_ = p.stdout.Close()
	<-done
}

// exitError is why the connection to the process ended: its exit status
// if it exits within a second of readErr, else readErr.
func (p *process) exitError(readErr error) error {
	select {
	case <-p.waited:
		if p.waitErr != nil {
			return fmt.Errorf("process %d exited: %v", p.cmd.Process.Pid, p.waitErr)
		}
		return fmt.Errorf("process %d exited", p.cmd.Process.Pid)
	case <-time.After(time.Second):
		return readErr
	}
}

// pid is the process's id.
func (p *process) pid() int { return p.cmd.Process.Pid }
