package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestSecondSignalExits: the built binary (dev) drains on its first
// SIGINT, waiting for a call in flight; a second SIGINT ends it at once,
// with a non-zero exit code, as users of Ctrl-C expect.
func TestSecondSignalExits(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "mcpstream")
	build := exec.Command("go", "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	cmd := exec.Command(bin, "dev", "--addr", "127.0.0.1:0", "--metrics-addr", "127.0.0.1:0", "--log-level", "error")
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	lines := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			default:
			}
		}
		exited <- cmd.Wait()
	}()
	var callDone chan struct{}
	defer func() {
		_ = cmd.Process.Kill()
		<-exited
		if callDone != nil {
			<-callDone // the call ends with the process
		}
	}()
	await := func(want string) string {
		t.Helper()
		timeout := time.After(60 * time.Second)
		for {
			select {
			case l := <-lines:
				if strings.Contains(l, want) {
					return l
				}
			case err := <-exited:
				exited <- err
				t.Fatalf("exited (%v) before %q", err, want)
			case <-timeout:
				t.Fatalf("no %q after 60s", want)
			}
		}
	}
	metricsURL := strings.Fields(await("metrics http://"))[2]
	f := strings.Fields(await("MCP endpoint http://"))
	mcpURL := f[len(f)-1]

	callDone = make(chan struct{})
	go func() {
		defer close(callDone)
		postSleep(mcpURL)
	}()
	awaitInFlight(t, metricsURL)

	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	await("draining gateway")
	start := time.Now()
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		exited <- err
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() == 0 {
			t.Errorf("after a second SIGINT: %v, want a non-zero exit code", err)
		}
		if took := time.Since(start); took > 5*time.Second {
			t.Errorf("exited %s after the second SIGINT, want at once", took)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("still running 15s after a second SIGINT (draining a 60s call)")
	}
}

// gaugeIs reports whether the metric line of the metrics endpoint at url
// starting with prefix has the value want.
func gaugeIs(t *testing.T, url, prefix, want string) bool {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, prefix) {
			return strings.HasSuffix(l, " "+want)
		}
	}
	return false
}

// postSleep posts a stateless call of the sleep tool for a minute to
// mcpURL and returns its answer: the status and the body, or why there is
// none.
func postSleep(mcpURL string) string {
	const meta = `"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}`
	call := `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"sleep","arguments":{"ms":60000},` + meta + `}}`
	req, _ := http.NewRequest(http.MethodPost, mcpURL, strings.NewReader(call))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("MCP-Protocol-Version", "2026-07-28")
	req.Header.Set("Mcp-Method", "tools/call")
	req.Header.Set("Mcp-Name", "sleep")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err.Error()
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return fmt.Sprintf("%d %s %v", resp.StatusCode, b, err)
}

// awaitInFlight waits until the gateway whose metrics are at metricsURL
// has one call in flight (its gauge says so), for up to 30s.
func awaitInFlight(t *testing.T, metricsURL string) {
	t.Helper()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for deadline := time.Now().Add(30 * time.Second); !gaugeIs(t, metricsURL, "mcpstream_gateway_inflight{", "1"); <-tick.C {
		if time.Now().After(deadline) {
			t.Fatal("the call not in flight after 30s")
		}
	}
}

// TestSignalsAfterTheFirst: the first SIGTERM ends the command's context;
// one while the gateway waits out --retire-delay (nextSignal) cuts the
// wait short; one after that exits.
func TestSignalsAfterTheFirst(t *testing.T) {
	exits := make(chan struct{}, 1)
	var stderr strings.Builder
	ctx, stop := onSignals("gateway", &stderrWriter{&stderr}, func() { exits <- struct{}{} })
	defer stop()
	kill := func() {
		if err := syscall.Kill(os.Getpid(), syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
	}
	timeout := func() <-chan time.Time { return time.After(10 * time.Second) }
	kill()
	select {
	case <-ctx.Done():
	case <-timeout():
		t.Fatal("the first signal did not end the context")
	}
	again, stopAgain := nextSignal(ctx)
	kill()
	select {
	case <-again:
	case <-exits:
		t.Fatal("a signal during the retire delay exited instead of cutting it short")
	case <-timeout():
		t.Fatal("a signal during the retire delay did not cut it short")
	}
	stopAgain()
	kill()
	select {
	case <-exits:
	case <-timeout():
		t.Fatal("a signal while draining did not exit")
	}
	stop()
	if !strings.Contains(stderr.String(), "mcpstream gateway: terminated again") {
		t.Errorf("stderr %q", stderr.String())
	}
}

// stderrWriter is a strings.Builder written from the signal goroutine and
// read once it is done (stop waits for it).
type stderrWriter struct{ b *strings.Builder }

func (w *stderrWriter) Write(p []byte) (int, error) { return w.b.Write(p) }
