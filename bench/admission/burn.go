package main

import (
	"context"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"time"
)

// burnEnv, set to a number of cores, makes this command a busy loop that
// takes that much CPU until its stdin ends: the control run's load.
const burnEnv = "ADMISSION_BURN_CORES"

// burn starts this command again as a busy loop taking cores, in a process
// of its own (so that the driver's goroutines do not compete with it in
// one scheduler), until ctx ends; the channel is closed once it has exited.
func burn(ctx context.Context, cores float64) (<-chan struct{}, error) {
	done := make(chan struct{})
	if cores <= 0 {
		close(done)
		return done, nil
	}
	self, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("finding this command for the busy loop: %w", err)
	}
	cmd := exec.CommandContext(ctx, self)
	cmd.Env = append(os.Environ(), burnEnv+"="+strconv.FormatFloat(cores, 'f', 3, 64))
	// The loop ends at EOF on its stdin: when ctx ends (the process is
	// killed) or when this process dies without killing it.
	if _, err := cmd.StdinPipe(); err != nil {
		return nil, fmt.Errorf("starting the busy loop: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting the busy loop: %w", err)
	}
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	return done, nil
}

// burnForever takes cores (a decimal number) of CPU until its stdin ends
// (the command that started it has stopped it or died): one goroutine a
// started core, each busy for its share of every 10 ms and asleep for the
// rest.
func burnForever(cores string) int {
	c, err := strconv.ParseFloat(cores, 64)
	if err != nil || c <= 0 {
		fmt.Fprintf(os.Stderr, "%s=%q: want a positive number of cores\n", burnEnv, cores)
		return 2
	}
	n := int(math.Ceil(c))
	runtime.GOMAXPROCS(n)
	const period = 10 * time.Millisecond
	busy := time.Duration(float64(period) * c / float64(n))
	for range n {
		go func() {
			for {
				start := time.Now()
				for time.Since(start) < busy {
				}
				time.Sleep(period - busy)
			}
		}()
	}
	_, _ = io.Copy(io.Discard, os.Stdin)
	return 0
}
