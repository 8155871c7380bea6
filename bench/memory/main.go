// Command memory measures a gateway's memory per MCP session: RSS of a
// gateway process (alone in its process, NATS in another) before and after
// N sessions are created, first without event streams (their connections
// closed), then with a GET event stream each held open.
//
//	go run ./bench/memory --sessions 15000
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

func main() {
	n := flag.Int("sessions", 15000, "sessions per phase")
	sourceIPs := flag.Int("source-ips", 50, "spread client connections over 127.0.0.1..N")
	conc := flag.Int("concurrency", 64, "sessions set up at once")
	flag.Parse()
	if err := run(*n, *sourceIPs, *conc); err != nil {
		fmt.Fprintln(os.Stderr, "memory:", err)
		os.Exit(1)
	}
}

func run(n, sourceIPs, conc int) error {
	dir, err := os.MkdirTemp("", "mcpstream-memory-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	bin := filepath.Join(dir, "mcpstream")
	build := exec.Command("go", "build", "-o", bin, "./cmd/mcpstream")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		return fmt.Errorf("building mcpstream: %w", err)
	}
	broker, out, err := start(bin, "dev", "--examples", "0", "--addr", "127.0.0.1:0", "--nats-listen", "127.0.0.1:0",
		"--data", filepath.Join(dir, "js"), "--log-level", "error")
	if err != nil {
		return err
	}
	defer stop(broker)
	natsURL, err := waitFor(out, regexp.MustCompile(`NATS listening on (\S+)`))
	if err != nil {
		return err
	}
	gw, gout, err := start(bin, "gateway", "--nats", natsURL, "--addr", "127.0.0.1:0", "--debug-addr", "127.0.0.1:0",
		"--log-level", "error")
	if err != nil {
		return err
	}
	defer stop(gw)
	endpoint, err := waitFor(gout, regexp.MustCompile(`MCP endpoint (\S+)`))
	if err != nil {
		return err
	}
	debugURL, err := debugAddr(gw.Process.Pid)
	if err != nil {
		return err
	}
	fmt.Printf("gateway pid %d at %s; %d sessions per phase, clients over %d source addresses\n", gw.Process.Pid, endpoint, n, sourceIPs)

	base, err := settledRSS(gw.Process.Pid, debugURL)
	if err != nil {
		return err
	}
	// Phase A: sessions only.
	quiet := client(sourceIPs, true)
	if err := forEach(n, conc, func(int) error { _, err := initialize(quiet, endpoint); return err }); err != nil {
		return fmt.Errorf("sessions without streams: %w", err)
	}
	afterA, err := settledRSS(gw.Process.Pid, debugURL)
	if err != nil {
		return err
	}
	perA := float64(afterA-base) / float64(n)
	fmt.Printf("without streams: RSS %s -> %s: %.0f bytes per session\n", kb(base), kb(afterA), perA)

	// Phase B: sessions each holding a GET event stream.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	streaming := client(sourceIPs, false)
	var open atomic.Int64
	var wg sync.WaitGroup
	err = forEach(n, conc, func(int) error {
		sid, err := initialize(quiet, endpoint)
		if err != nil {
			return err
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, endpoint, nil)
		req.Header.Set("Accept", "text/event-stream")
		req.Header.Set("Mcp-Session-Id", sid)
		resp, err := streaming.Do(req)
		if err != nil {
			return err
		}
		if resp.StatusCode != http.StatusOK {
			resp.Body.Close()
			return fmt.Errorf("GET stream: status %d", resp.StatusCode)
		}
		open.Add(1)
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}()
		return nil
	})
	if err != nil {
		return fmt.Errorf("sessions with streams (%d open): %w", open.Load(), err)
	}
	afterB, err := settledRSS(gw.Process.Pid, debugURL)
	if err != nil {
		return err
	}
	perB := float64(afterB-afterA) / float64(n)
	fmt.Printf("with GET streams: %d open, RSS %s -> %s: %.0f bytes per session\n", open.Load(), kb(afterA), kb(afterB), perB)
	cancel()
	wg.Wait()
	return nil
}

func kb(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

func start(bin string, args ...string) (*exec.Cmd, *bufio.Scanner, error) {
	cmd := exec.Command(bin, args...)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, nil, err
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, nil, fmt.Errorf("starting %s: %w", args[0], err)
	}
	return cmd, bufio.NewScanner(out), nil
}

func stop(cmd *exec.Cmd) {
	_ = cmd.Process.Signal(syscall.SIGINT)
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(40 * time.Second):
		_ = cmd.Process.Kill()
	}
}

func waitFor(sc *bufio.Scanner, re *regexp.Regexp) (string, error) {
	for sc.Scan() {
		if m := re.FindStringSubmatch(sc.Text()); m != nil {
			go func() { // keep draining
				for sc.Scan() {
				}
			}()
			return m[1], nil
		}
	}
	return "", fmt.Errorf("process exited before printing %q", re)
}

// debugAddr finds the gateway's profiling listener among its sockets: the
// listening one that is not the MCP endpoint is found by asking each.
func debugAddr(pid int) (string, error) {
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		for _, port := range listeningPorts(pid) {
			u := fmt.Sprintf("http://127.0.0.1:%d/debug/pprof/", port)
			if resp, err := http.Get(u); err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					return u, nil
				}
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return "", errors.New("no /debug/pprof/ listener found on the gateway")
}

// listeningPorts lists the TCP ports pid listens on, from /proc.
func listeningPorts(pid int) []int {
	inodes := map[string]bool{}
	fds, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	for _, fd := range fds {
		if l, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name())); err == nil && strings.HasPrefix(l, "socket:[") {
			inodes[strings.TrimSuffix(strings.TrimPrefix(l, "socket:["), "]")] = true
		}
	}
	b, _ := os.ReadFile("/proc/net/tcp")
	var ports []int
	for _, line := range strings.Split(string(b), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) < 10 || f[3] != "0A" || !inodes[f[9]] { // 0A: LISTEN
			continue
		}
		if i := strings.LastIndexByte(f[1], ':'); i > 0 {
			if p, err := strconv.ParseInt(f[1][i+1:], 16, 32); err == nil {
				ports = append(ports, int(p))
			}
		}
	}
	return ports
}

// settledRSS forces a GC in the gateway (through its heap profile
// endpoint), then reads its RSS until two readings a second apart agree
// within 1%.
func settledRSS(pid int, debugURL string) (int64, error) {
	prev := int64(-1)
	for range 30 {
		if resp, err := http.Get(debugURL + "heap?gc=1"); err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		rss, err := readRSS(pid)
		if err != nil {
			return 0, err
		}
		if prev > 0 && abs(rss-prev)*100 <= prev {
			return rss, nil
		}
		prev = rss
		time.Sleep(time.Second)
	}
	return prev, nil
}

func abs(x int64) int64 {
	if x < 0 {
		return -x
	}
	return x
}

func readRSS(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			k, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return k << 10, err
		}
	}
	return 0, errors.New("no VmRSS")
}

var next atomic.Uint32

// client spreads connections over source addresses 127.0.0.1..n; with
// closeConns every request uses a new connection that is closed after.
func client(n int, closeConns bool) *http.Client {
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		ip := net.IPv4(127, 0, 0, byte(1+int(next.Add(1))%n))
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: ip}, Timeout: 10 * time.Second}
		return d.DialContext(ctx, network, addr)
	}
	return &http.Client{Transport: &http.Transport{DialContext: dial, DisableKeepAlives: closeConns,
		MaxIdleConnsPerHost: 256, MaxConnsPerHost: 0}}
}

// initialize opens a session and sends notifications/initialized.
func initialize(hc *http.Client, endpoint string) (string, error) {
	post := func(body, sid string) (*http.Response, error) {
		req, _ := http.NewRequest(http.MethodPost, endpoint, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		if sid != "" {
			req.Header.Set("Mcp-Session-Id", sid)
			req.Header.Set("Mcp-Protocol-Version", "2025-11-25")
		}
		resp, err := hc.Do(req)
		if err != nil {
			return nil, err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp, nil
	}
	resp, err := post(`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"memory","version":"1"}}}`, "")
	if err != nil {
		return "", err
	}
	sid := resp.Header.Get("Mcp-Session-Id")
	if resp.StatusCode != http.StatusOK || sid == "" {
		return "", fmt.Errorf("initialize: status %d", resp.StatusCode)
	}
	if resp, err = post(`{"jsonrpc":"2.0","method":"notifications/initialized"}`, sid); err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusAccepted {
		return "", fmt.Errorf("notifications/initialized: status %d", resp.StatusCode)
	}
	return sid, nil
}

// forEach runs fn for 0..n-1 on conc goroutines and returns the first error.
func forEach(n, conc int, fn func(int) error) error {
	var next atomic.Int64
	var first error
	var once sync.Once
	var wg sync.WaitGroup
	for range conc {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				if err := fn(i); err != nil {
					once.Do(func() { first = err })
					return
				}
			}
		})
	}
	wg.Wait()
	return first
}
