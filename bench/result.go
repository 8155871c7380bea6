package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// Result is what one Run measured. Counts and percentiles cover the
// measured window only (calls due or sent after the warm-up). Percentiles
// are of successful calls; failed calls are counted in Errors by kind.
type Result struct {
	// Config is the run's configuration, defaults filled in.
	Config Config `json:"config"`
	// Calls is the number of calls in the measured window: OK plus every
	// error, driver overflows included.
	Calls int64 `json:"calls"`
	// OK is the number of successful calls.
	OK int64 `json:"ok"`
	// Errors counts failed calls by kind: "http-503", "http-<status>",
	// "rpc-<code>", "tool-error", "timeout", "transport", "bad-response",
	// "driver-overflow", "canceled".
	Errors map[string]int `json:"errors"`
	// Throughput is successful calls per second over the measured window.
	Throughput float64 `json:"throughput"`
	// Offered is the offered load in calls/s: the rate of an open loop, or
	// the calls a closed loop achieved per second.
	Offered float64 `json:"offered"`
	// Latency percentiles and maximum of successful calls.
	P50  time.Duration `json:"-"`
	P90  time.Duration `json:"-"`
	P99  time.Duration `json:"-"`
	P999 time.Duration `json:"-"`
	Max  time.Duration `json:"-"`
	// Mean is the mean latency of successful calls.
	Mean time.Duration `json:"-"`
	// Refused is the number of explicit refusals (see [IsRefusal]), also
	// counted in Errors; RefusedP50, RefusedP99 and RefusedMax are their
	// latencies.
	Refused    int64         `json:"refused"`
	RefusedP50 time.Duration `json:"-"`
	RefusedP99 time.Duration `json:"-"`
	RefusedMax time.Duration `json:"-"`
	// LagP50, LagP99 and LagMax are, in an open loop, how long calls
	// waited in the driver from their due time to their send (for a free
	// sender, see [Config.Conns], or for the driver's own turn on a CPU):
	// a part of every latency above that the server did not cause.
	// SentP99 and RefusedSentP99 are the p99 of successful calls and of
	// refusals measured from the send instead, without that lag (a quantile
	// of the difference, not the difference of quantiles). All zero in a
	// closed loop, which measures from the send.
	LagP50         time.Duration `json:"-"`
	LagP99         time.Duration `json:"-"`
	LagMax         time.Duration `json:"-"`
	SentP99        time.Duration `json:"-"`
	RefusedSentP99 time.Duration `json:"-"`
	// SessionsReady is the number of calling sessions that initialized.
	SessionsReady int `json:"sessions_ready"`
	// SetupErrors counts sessions that failed to initialize ("init-<kind>")
	// and idle streams that could not be opened ("stream-<kind>").
	SetupErrors map[string]int `json:"setup_errors,omitempty"`
	// IdleEstablished is the number of idle GET event streams opened.
	IdleEstablished int `json:"idle_established"`
	// IdleDropped is the number of idle streams the server ended during
	// the run.
	IdleDropped int `json:"idle_dropped"`
	// DriverCPU is the CPU time (user and system) this process used over
	// the measured window: the driver's own cost when the server runs in
	// another process; 0 where the system does not say.
	DriverCPU time.Duration `json:"-"`
	// ServerCPU is the CPU time the process [Config.ServerPID] used over
	// the measured window, at a resolution of 10 ms; 0 when not measured.
	ServerCPU time.Duration `json:"-"`
	// Start is when measurement started (after the warm-up); End is when
	// the last call finished.
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
}

// fill sets the counts and percentiles from t, measured from start to end.
func (r *Result) fill(t tally, start, end time.Time) {
	r.Start, r.End = start, end
	r.Calls, r.OK, r.Errors = t.calls, t.ok, t.errors
	window := r.Config.Duration.Seconds()
	r.Throughput = float64(t.ok) / window
	if r.Config.Rate > 0 {
		r.Offered = r.Config.Rate
	} else {
		r.Offered = float64(t.calls) / window
	}
	r.P50 = quantile(t.hist, 50)
	r.P90 = quantile(t.hist, 90)
	r.P99 = quantile(t.hist, 99)
	r.P999 = quantile(t.hist, 99.9)
	if t.hist.TotalCount() > 0 {
		r.Max = time.Duration(t.hist.Max()) * time.Microsecond
		r.Mean = time.Duration(t.hist.Mean() * float64(time.Microsecond))
	}
	if r.Refused = t.refused.TotalCount(); r.Refused > 0 {
		r.RefusedP50 = quantile(t.refused, 50)
		r.RefusedP99 = quantile(t.refused, 99)
		r.RefusedMax = time.Duration(t.refused.Max()) * time.Microsecond
	}
	if t.lag.TotalCount() > 0 {
		r.LagP50 = quantile(t.lag, 50)
		r.LagP99 = quantile(t.lag, 99)
		r.LagMax = time.Duration(t.lag.Max()) * time.Microsecond
		r.SentP99 = quantile(t.sent, 99)
		r.RefusedSentP99 = quantile(t.refusedSent, 99)
	}
}

// ErrorCount is the number of failed calls.
func (r *Result) ErrorCount() int64 { return r.Calls - r.OK }

// MarshalJSON encodes the result with latencies in milliseconds (p50_ms,
// p90_ms, p99_ms, p999_ms, max_ms, mean_ms, and refused_p50_ms,
// refused_p99_ms, refused_max_ms, lag_p50_ms, lag_p99_ms, lag_max_ms,
// sent_p99_ms, refused_sent_p99_ms) and the driver's and the server's CPU in
// seconds (driver_cpu_s, server_cpu_s).
func (r Result) MarshalJSON() ([]byte, error) {
	type plain Result
	return json.Marshal(struct {
		plain
		P50  float64 `json:"p50_ms"`
		P90  float64 `json:"p90_ms"`
		P99  float64 `json:"p99_ms"`
		P999 float64 `json:"p999_ms"`
		Max  float64 `json:"max_ms"`
		Mean float64 `json:"mean_ms"`
		RP50 float64 `json:"refused_p50_ms"`
		RP99 float64 `json:"refused_p99_ms"`
		RMax float64 `json:"refused_max_ms"`
		LP50 float64 `json:"lag_p50_ms"`
		LP99 float64 `json:"lag_p99_ms"`
		LMax float64 `json:"lag_max_ms"`
		SP99 float64 `json:"sent_p99_ms"`
		RS99 float64 `json:"refused_sent_p99_ms"`
		CPU  float64 `json:"driver_cpu_s"`
		SCPU float64 `json:"server_cpu_s"`
	}{plain(r), ms(r.P50), ms(r.P90), ms(r.P99), ms(r.P999), ms(r.Max), ms(r.Mean),
		ms(r.RefusedP50), ms(r.RefusedP99), ms(r.RefusedMax), ms(r.LagP50), ms(r.LagP99), ms(r.LagMax), ms(r.SentP99), ms(r.RefusedSentP99), r.DriverCPU.Seconds(), r.ServerCPU.Seconds()})
}

// DriverCores is DriverCPU over the measured window's wall time: how many
// cores the driver kept busy (0 if not measured).
func (r *Result) DriverCores() float64 { return r.cores(r.DriverCPU) }

// ServerCores is ServerCPU over the measured window's wall time.
func (r *Result) ServerCores() float64 { return r.cores(r.ServerCPU) }

// ServerPerCall is ServerCPU per call made in the window, the server's
// cost of a call (0 if not measured).
func (r *Result) ServerPerCall() time.Duration { return r.perCall(r.ServerCPU) }

func (r *Result) cores(cpu time.Duration) float64 {
	if wall := r.End.Sub(r.Start); wall > 0 {
		return cpu.Seconds() / wall.Seconds()
	}
	return 0
}

func (r *Result) perCall(cpu time.Duration) time.Duration {
	if r.Calls > 0 {
		return cpu / time.Duration(r.Calls)
	}
	return 0
}

// WriteJSON writes results as an indented JSON array.
func WriteJSON(w io.Writer, results []*Result) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(results)
}

// WriteTable prints a summary of the run.
func (r *Result) WriteTable(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	c := r.Config
	mode := "closed loop"
	if c.Rate > 0 {
		mode = fmt.Sprintf("open loop at %s calls/s", fmtFloat(c.Rate))
	}
	fmt.Fprintf(tw, "target\t%s\n", c.Label)
	if c.Label != c.URL {
		fmt.Fprintf(tw, "url\t%s\n", c.URL)
	}
	fmt.Fprintf(tw, "load\t%s, %d sessions (%d ready), tool %s %s\n", mode, c.Sessions, r.SessionsReady, c.Tool, c.Args)
	fmt.Fprintf(tw, "window\t%s after %s warm-up\n", c.Duration, c.Warmup)
	fmt.Fprintf(tw, "calls\t%d (ok %d, errors %d)\n", r.Calls, r.OK, r.ErrorCount())
	fmt.Fprintf(tw, "throughput\t%s calls/s ok (offered %s calls/s)\n", fmtFloat(r.Throughput), fmtFloat(r.Offered))
	fmt.Fprintf(tw, "latency ms\tp50 %s  p90 %s  p99 %s  p99.9 %s  max %s  mean %s\n",
		FormatMS(r.P50), FormatMS(r.P90), FormatMS(r.P99), FormatMS(r.P999), FormatMS(r.Max), FormatMS(r.Mean))
	if len(r.Errors) > 0 {
		fmt.Fprintf(tw, "errors\t%s\n", FormatCounts(r.Errors))
	}
	if r.Refused > 0 {
		fmt.Fprintf(tw, "refusals ms\t%d answered in p50 %s  p99 %s  max %s\n", r.Refused,
			FormatMS(r.RefusedP50), FormatMS(r.RefusedP99), FormatMS(r.RefusedMax))
	}
	if r.LagMax > 0 {
		fmt.Fprintf(tw, "driver lag ms\tp50 %s  p99 %s  max %s (due to sent, in every latency above)\n",
			FormatMS(r.LagP50), FormatMS(r.LagP99), FormatMS(r.LagMax))
		fmt.Fprintf(tw, "from the send\tp99 %s, refusals' p99 %s\n", FormatMS(r.SentP99), FormatMS(r.RefusedSentP99))
	}
	if r.DriverCPU > 0 && r.Calls > 0 {
		fmt.Fprintf(tw, "driver cpu\t%.2f cores, %.0f us a call\n", r.DriverCores(), us(r.perCall(r.DriverCPU)))
	}
	if r.ServerCPU > 0 && r.Calls > 0 {
		fmt.Fprintf(tw, "server cpu\t%.2f cores, %.0f us a call (pid %d)\n", r.ServerCores(), us(r.ServerPerCall()), c.ServerPID)
	}
	if c.IdleStreams > 0 {
		fmt.Fprintf(tw, "idle streams\t%d/%d established, %d dropped during the run\n", r.IdleEstablished, c.IdleStreams, r.IdleDropped)
	}
	if len(r.SetupErrors) > 0 {
		fmt.Fprintf(tw, "setup errors\t%s\n", FormatCounts(r.SetupErrors))
	}
	_ = tw.Flush()
}

// WriteRows prints results one row each, for a sweep of rates or a set of
// targets.
func WriteRows(w io.Writer, results []*Result) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "target\toffered/s\tcalls\tok/s\tp50 ms\tp90 ms\tp99 ms\tp99.9 ms\tmax ms\trefused p99 ms\terrors\t")
	for _, r := range results {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", r.Config.Label, fmtFloat(r.Offered), r.Calls,
			fmtFloat(r.Throughput), FormatMS(r.P50), FormatMS(r.P90), FormatMS(r.P99), FormatMS(r.P999), FormatMS(r.Max),
			FormatMS(r.RefusedP99), FormatCounts(r.Errors))
	}
	_ = tw.Flush()
}

// FormatCounts prints counts by kind as "kind n, kind n" sorted by kind,
// or "0" when there are none.
func FormatCounts(m map[string]int) string {
	if len(m) == 0 {
		return "0"
	}
	var b strings.Builder
	for i, k := range slices.Sorted(maps.Keys(m)) {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s %d", k, m[k])
	}
	return b.String()
}

// FormatUS formats a duration in whole microseconds, or "-" for zero (not
// measured).
func FormatUS(d time.Duration) string {
	if d == 0 {
		return "-"
	}
	return fmt.Sprintf("%.0f", us(d))
}

// FormatMS prints d in milliseconds with 3 significant digits or more; "-"
// for zero (no successful call).
func FormatMS(d time.Duration) string {
	v := ms(d)
	switch {
	case v == 0:
		return "-"
	case v < 10:
		return fmt.Sprintf("%.3f", v)
	case v < 100:
		return fmt.Sprintf("%.2f", v)
	case v < 1000:
		return fmt.Sprintf("%.1f", v)
	default:
		return fmt.Sprintf("%.0f", v)
	}
}

// fmtFloat prints a rate with at most one decimal.
func fmtFloat(v float64) string {
	if v >= 100 || v == float64(int64(v)) {
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.1f", v)
}

// WriteFile creates path and fills it with write (a JSON report, a chart).
func WriteFile(path string, write func(io.Writer) error) error {
	f, err := os.Create(filepath.Clean(path))
	if err != nil {
		return err
	}
	if err := write(f); err != nil {
		f.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return f.Close()
}
