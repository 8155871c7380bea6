// Command scaleout measures how throughput grows with worker processes: a
// tool that sleeps 20 ms, served by 1, 2, 4 and 8 worker processes of fixed
// concurrency behind one mcpstream dev (gateway and JetStream), driven in a
// closed loop with enough sessions to keep every worker slot busy.
//
//	go run ./bench/scaleout --workers 1,2,4,8 --concurrency 8
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/mcpstream/mcpstream/bench"
	"github.com/mcpstream/mcpstream/bench/internal/proc"
)

func main() {
	counts := flag.String("workers", "1,2,4,8", "worker process counts to measure")
	conc := flag.Int("concurrency", 8, "handlers per worker process")
	sleepMs := flag.Int("sleep-ms", 20, "how long the tool sleeps")
	duration := flag.Duration("duration", 10*time.Second, "measured window per step")
	warmup := flag.Duration("warmup", 2*time.Second, "warm-up per step")
	jsonOut := flag.String("json", "", "write the results as JSON to this file")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, *counts, *conc, *sleepMs, *duration, *warmup, *jsonOut); err != nil {
		fmt.Fprintln(os.Stderr, "scaleout:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, counts string, conc, sleepMs int, duration, warmup time.Duration, jsonOut string) error {
	var steps []int
	for _, f := range strings.Split(counts, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return fmt.Errorf("--workers: %q", f)
		}
		steps = append(steps, n)
	}
	dir, err := os.MkdirTemp("", "mcpstream-scaleout-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	bin := filepath.Join(dir, "mcpstream")
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/mcpstream")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		return fmt.Errorf("building mcpstream: %w", err)
	}
	dev, err := proc.Start(ctx, []string{bin, "dev", "--examples", "0", "--addr", "127.0.0.1:0",
		"--nats-listen", "127.0.0.1:0", "--data", filepath.Join(dir, "js"), "--log-level", "warn"},
		regexp.MustCompile(`NATS listening on (\S+)`))
	if err != nil {
		return err
	}
	defer dev.Stop(40 * time.Second)
	natsURL := dev.Match
	// The endpoint line follows the NATS line; a gateway of our own is
	// simpler to find than parsing dev's further output.
	gw, err := proc.Start(ctx, []string{bin, "gateway", "--nats", natsURL, "--addr", "127.0.0.1:0", "--log-level", "warn"},
		regexp.MustCompile(`MCP endpoint (\S+)`))
	if err != nil {
		return err
	}
	defer gw.Stop(40 * time.Second)
	endpoint := gw.Match

	var results []*bench.Result
	var workers []*proc.Proc
	defer func() {
		for _, w := range workers {
			_ = w.Stop(40 * time.Second)
		}
	}()
	for _, n := range steps {
		for len(workers) < n {
			w, err := proc.Start(ctx, []string{bin, "worker", "--nats", natsURL, "--examples", "demo",
				"--concurrency", strconv.Itoa(conc), "--log-level", "warn"}, regexp.MustCompile(`worker group (demo) serving`))
			if err != nil {
				return err
			}
			workers = append(workers, w)
		}
		slots := n * conc
		cfg := bench.Config{URL: endpoint, Label: fmt.Sprintf("%d workers", n), Sessions: 2 * slots,
			Warmup: warmup, Duration: duration, Tool: "sleep", Args: []byte(fmt.Sprintf(`{"ms":%d}`, sleepMs))}
		fmt.Fprintf(os.Stderr, "scaleout: %d worker processes x %d handlers, %d sessions\n", n, conc, cfg.Sessions)
		res, err := bench.Run(ctx, cfg)
		if err != nil {
			return err
		}
		results = append(results, res)
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(os.Stdout, "tool sleep %d ms, %d handlers per worker process; ideal = processes x handlers / sleep\n\n", sleepMs, conc)
	fmt.Fprintln(tw, "workers\tcalls/s\tideal\tof ideal\tof linear\tp50 ms\tp99 ms\terrors\t")
	base := 0.0
	for i, r := range results {
		n := steps[i]
		ideal := float64(n*conc) * 1000 / float64(sleepMs)
		if i == 0 {
			base = r.Throughput / float64(n)
		}
		fmt.Fprintf(tw, "%d\t%.0f\t%.0f\t%.2f\t%.2f\t%s\t%s\t%d\t\n", n, r.Throughput, ideal, r.Throughput/ideal,
			r.Throughput/(base*float64(n)), bench.FormatMS(r.P50), bench.FormatMS(r.P99), r.ErrorCount())
	}
	_ = tw.Flush()
	if jsonOut != "" {
		return bench.WriteFile(jsonOut, func(w io.Writer) error { return bench.WriteJSON(w, results) })
	}
	return nil
}
