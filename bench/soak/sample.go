package main

import (
	"bufio"
	"cmp"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/mcpstream/mcpstream/bench"
	"github.com/mcpstream/mcpstream/bench/internal/proc"
)

// Sample is what the soak saw of the server process and of the load over
// one interval.
type Sample struct {
	// At is the sample's time in seconds since the open loop started.
	At float64 `json:"t_s"`
	// The server process, from /proc: resident memory, open file
	// descriptors, CPU over the interval in cores.
	RSS       int64   `json:"rss_bytes"`
	OpenFiles int     `json:"open_files"`
	CPUCores  float64 `json:"cpu_cores"`
	// DriverCores is this process's CPU over the interval, in cores; Load1
	// the machine's load average over the last minute (/proc/loadavg): the
	// machine is shared, and both tell how much of it the server had.
	DriverCores float64 `json:"driver_cores"`
	Load1       float64 `json:"load1"`
	// MachineCores is the CPU the whole machine was busy over the
	// interval, in cores (/proc/stat): less the server's and the driver's,
	// what other work took.
	MachineCores float64 `json:"machine_cores"`
	// From the server's /metrics: goroutines and the Go heap in use (Go
	// collector), the gateway's cached sessions, open event streams and
	// calls in flight.
	Goroutines     int   `json:"goroutines"`
	HeapInuse      int64 `json:"heap_inuse_bytes"`
	SessionsCached int   `json:"sessions_cached"`
	EventStreams   int   `json:"event_streams"`
	InFlight       int   `json:"in_flight"`
	// Streams are the JetStream streams (KV buckets among them, as KV_<bucket>).
	Streams []StreamSample `json:"streams"`
	// The load over the interval: calls ended by outcome class (ok,
	// refused, failed, lost, cut, overflow), successful calls a second,
	// their p99 latency from when they were due, sessions opened, deleted
	// and abandoned, and GET streams the driver held at the sample.
	Calls       map[string]int64 `json:"calls"`
	OKPerSecond float64          `json:"ok_per_s"`
	P99MS       float64          `json:"p99_ms"`
	Opened      int64            `json:"sessions_opened"`
	Deleted     int64            `json:"sessions_deleted"`
	Abandoned   int64            `json:"sessions_abandoned"`
	HeldStreams int64            `json:"held_streams"`
}

// StreamSample is one JetStream stream's state and limits.
type StreamSample struct {
	Name     string `json:"name"`
	Bytes    uint64 `json:"bytes"`
	Msgs     uint64 `json:"msgs"`
	MaxBytes int64  `json:"max_bytes,omitempty"` // -1: none
	MaxMsgs  int64  `json:"max_msgs,omitempty"`  // -1: none
	// MaxAgeS is the stream's MaxAge (a bucket's TTL) in seconds; 0: none.
	MaxAgeS float64 `json:"max_age_s,omitempty"`
	// DiscardNew: a full stream refuses new messages (KV buckets); else it
	// drops its oldest.
	DiscardNew bool `json:"discard_new,omitempty"`
}

// sampler reads a server process's state.
type sampler struct {
	pid        int
	metricsURL string
	js         jetstream.JetStream
	hc         *http.Client
	lastCPU    time.Duration // the server's
	lastOwn    time.Duration // this process's
	lastBusy   time.Duration // the machine's
	lastAt     time.Time
}

func newSampler(pid int, metricsURL string, js jetstream.JetStream) *sampler {
	return &sampler{pid: pid, metricsURL: metricsURL, js: js, hc: &http.Client{Timeout: 10 * time.Second},
		lastCPU: bench.PIDCPU(pid), lastOwn: bench.PIDCPU(os.Getpid()), lastBusy: machineBusy(), lastAt: time.Now()}
}

// sample reads the process, its metrics and its streams.
func (s *sampler) sample(ctx context.Context) (Sample, error) {
	var smp Sample
	var err error
	if smp.RSS, err = proc.RSS(s.pid); err != nil {
		return smp, fmt.Errorf("RSS: %w", err)
	}
	if smp.OpenFiles, err = proc.OpenFiles(s.pid); err != nil {
		return smp, fmt.Errorf("open files: %w", err)
	}
	now, cpu, own, busy := time.Now(), bench.PIDCPU(s.pid), bench.PIDCPU(os.Getpid()), machineBusy()
	if secs := now.Sub(s.lastAt).Seconds(); secs > 0 {
		if busy >= 0 && s.lastBusy >= 0 {
			smp.MachineCores = (busy - s.lastBusy).Seconds() / secs
		}
		if cpu >= 0 && s.lastCPU >= 0 {
			smp.CPUCores = (cpu - s.lastCPU).Seconds() / secs
		}
		if own >= 0 && s.lastOwn >= 0 {
			smp.DriverCores = (own - s.lastOwn).Seconds() / secs
		}
	}
	s.lastCPU, s.lastOwn, s.lastBusy, s.lastAt = cpu, own, busy, now
	smp.Load1 = loadAverage()
	m, err := s.metrics(ctx)
	if err != nil {
		return smp, err
	}
	smp.Goroutines = int(m["go_goroutines"])
	smp.HeapInuse = int64(m["go_memstats_heap_inuse_bytes"])
	smp.SessionsCached = int(m["mcpstream_gateway_sessions_cached"])
	smp.EventStreams = int(m["mcpstream_gateway_event_streams"])
	smp.InFlight = int(m["mcpstream_gateway_inflight"])
	if _, ok := m["go_goroutines"]; !ok {
		return smp, fmt.Errorf("%s has no go_goroutines", s.metricsURL)
	}
	if smp.Streams, err = s.streams(ctx); err != nil {
		return smp, err
	}
	return smp, nil
}

// loadAverage is the machine's load average over the last minute, or 0
// where /proc/loadavg cannot be read.
func loadAverage() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0
	}
	v, _ := strconv.ParseFloat(f[0], 64)
	return v
}

// machineBusy is the CPU time every core of the machine has spent busy
// (not idle nor waiting for I/O) since boot, from /proc/stat, or -1.
func machineBusy() time.Duration {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return -1
	}
	line, _, _ := strings.Cut(string(b), "\n")
	return parseCPULine(line)
}

// parseCPULine reads the busy time from /proc/stat's first line, "cpu
// user nice system idle iowait irq softirq steal ..." in USER_HZ ticks
// (100 a second): everything but idle and iowait. Steal counts as busy:
// the hypervisor gave the time to another machine.
func parseCPULine(line string) time.Duration {
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return -1
	}
	var busy int64
	for i, v := range f[1:9] {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return -1
		}
		if i != 3 && i != 4 { // idle, iowait
			busy += n
		}
	}
	return time.Duration(busy) * time.Second / 100
}

// metrics reads the server's /metrics: each metric's value summed over
// its series (counters and gauges; histograms' _sum and _count alike).
func (s *sampler) metrics(ctx context.Context) (map[string]float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.metricsURL, nil)
	if err != nil {
		return nil, err
	}
	resp, err := s.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("reading metrics: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("reading metrics: %s", resp.Status)
	}
	return parseMetrics(resp.Body)
}

// parseMetrics sums the values of each metric of Prometheus's text format
// over its label sets.
func parseMetrics(r io.Reader) (map[string]float64, error) {
	m := map[string]float64{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		name, rest := line, ""
		if i := strings.IndexAny(line, "{ "); i >= 0 {
			name, rest = line[:i], line[i:]
		}
		if strings.HasPrefix(rest, "{") {
			j := strings.LastIndexByte(rest, '}')
			if j < 0 {
				return nil, fmt.Errorf("metrics: bad line %q", line)
			}
			rest = rest[j+1:]
		}
		f := strings.Fields(rest)
		if len(f) == 0 {
			return nil, fmt.Errorf("metrics: no value in %q", line)
		}
		v, err := strconv.ParseFloat(f[0], 64)
		if err != nil {
			return nil, fmt.Errorf("metrics: value of %q: %w", line, err)
		}
		m[name] += v
	}
	return m, sc.Err()
}

// streams lists every stream's state.
func (s *sampler) streams(ctx context.Context) ([]StreamSample, error) {
	var out []StreamSample
	l := s.js.ListStreams(ctx)
	for info := range l.Info() {
		c := info.Config
		out = append(out, StreamSample{Name: c.Name, Bytes: info.State.Bytes, Msgs: info.State.Msgs,
			MaxBytes: c.MaxBytes, MaxMsgs: c.MaxMsgs, MaxAgeS: c.MaxAge.Seconds(), DiscardNew: c.Discard == jetstream.DiscardNew})
	}
	if err := l.Err(); err != nil {
		return nil, fmt.Errorf("listing streams: %w", err)
	}
	slices.SortFunc(out, func(a, b StreamSample) int { return cmp.Compare(a.Name, b.Name) })
	return out, nil
}

// addLoad fills in the load of the interval w that ended at the sample,
// which lasted secs.
func (smp *Sample) addLoad(w *window, secs float64, held int64) {
	smp.Calls = w.classes
	if secs > 0 {
		smp.OKPerSecond = float64(w.classes[classOK]) / secs
	}
	smp.P99MS = float64(w.p99()) / float64(time.Millisecond)
	smp.Opened, smp.Deleted, smp.Abandoned, smp.HeldStreams = w.opened, w.deleted, w.abandoned, held
}
