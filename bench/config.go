package bench

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"time"
)

// Config describes one load run.
type Config struct {
	// Label names the target in tables and charts (default the URL).
	Label string
	// URL is the Streamable HTTP MCP endpoint, e.g. http://127.0.0.1:8080/mcp.
	URL string
	// Sessions is the number of MCP sessions that call tools (default 1).
	Sessions int
	// Warmup is how long calls run before measurement starts; warm-up calls
	// are not counted.
	Warmup time.Duration
	// Duration is the measured window (default 10s).
	Duration time.Duration
	// Rate is the open-loop arrival rate in calls/s; 0 runs a closed loop.
	Rate float64
	// IdleStreams is the number of extra sessions that only hold a GET event
	// stream open for the whole run; they never call tools.
	IdleStreams int
	// Tool is the tool to call (default "echo").
	Tool string
	// Args are the tool's arguments, a JSON object (default {}).
	Args json.RawMessage
	// Timeout bounds one call (default 30s); a call past it counts as
	// error kind "timeout".
	Timeout time.Duration
	// MaxOutstanding bounds the calls in flight in an open loop (default
	// 10000). An arrival beyond it is counted as error kind
	// "driver-overflow" and never queued.
	MaxOutstanding int
	// Conns is the number of senders of an open loop (default 1024), each
	// making one call at a time on its own keep-alive connection. A call due
	// while every sender is busy waits for one, and the wait counts in its
	// latency. (A sender per call would open a connection per late call
	// once the driver falls behind, and the dialing makes it fall further
	// behind.)
	Conns int
	// SourceIPs spreads client connections over the source addresses
	// 127.0.0.1 .. 127.0.0.N (default 1, the system's choice). One source
	// address gives at most ~28K ephemeral ports towards one server port,
	// so runs beyond ~20K sockets need several. Only for loopback targets.
	SourceIPs int
	// ServerPID, if set, is the server's process (on this machine, Linux):
	// its CPU time over the measured window is reported as
	// [Result.ServerCPU].
	ServerPID int
	// Header holds headers sent with every request of the run (initialize,
	// calls, event streams), e.g. the credentials that name a principal:
	// a proxy's principal header, or Authorization: Bearer <API key>. A
	// session whose initialize is refused with HTTP 429 (the principal's
	// rate limit) tries again after the Retry-After, within Timeout. JSON
	// carries the header names only, not their values.
	Header http.Header
	// Progress receives a progress bar; nil shows none.
	Progress io.Writer
	// Started, if set, is called once the sessions are set up, just
	// before the first call goes out (to start another load alongside).
	Started func()
}

// Error kinds counted in [Result.Errors]. HTTP statuses other than 503 count
// as "http-<status>", JSON-RPC errors as "rpc-<code>".
const (
	KindHTTP503        = "http-503"
	KindHTTP429        = "http-429"
	KindOverloaded     = "rpc--32000"
	KindToolError      = "tool-error"
	KindTimeout        = "timeout"
	KindTransport      = "transport"
	KindBadResponse    = "bad-response"
	KindDriverOverflow = "driver-overflow"
	KindCanceled       = "canceled"
)

// withDefaults returns c with zero fields set to their defaults.
func (c Config) withDefaults() Config {
	if c.Sessions <= 0 {
		c.Sessions = 1
	}
	if c.Duration <= 0 {
		c.Duration = 10 * time.Second
	}
	if c.Tool == "" {
		c.Tool = "echo"
	}
	if len(c.Args) == 0 {
		c.Args = json.RawMessage("{}")
	}
	if c.Timeout <= 0 {
		c.Timeout = 30 * time.Second
	}
	if c.MaxOutstanding <= 0 {
		c.MaxOutstanding = 10_000
	}
	if c.Conns <= 0 {
		c.Conns = 1024
	}
	if c.SourceIPs <= 0 {
		c.SourceIPs = 1
	}
	if c.Label == "" {
		c.Label = c.URL
	}
	return c
}

// validate reports a configuration that cannot run.
func (c Config) validate() error {
	u, err := url.Parse(c.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("bench: URL %q is not an http(s) URL", c.URL)
	}
	if c.Rate < 0 {
		return errors.New("bench: Rate must not be negative")
	}
	if c.Warmup < 0 {
		return errors.New("bench: Warmup must not be negative")
	}
	if c.IdleStreams < 0 {
		return errors.New("bench: IdleStreams must not be negative")
	}
	if c.SourceIPs > 254 {
		return errors.New("bench: SourceIPs must be at most 254")
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(c.Args, &obj); err != nil || obj == nil {
		return fmt.Errorf("bench: Args must be a JSON object: %s", c.Args)
	}
	return nil
}

// configJSON is Config as JSON, with durations in milliseconds.
type configJSON struct {
	Label          string          `json:"label"`
	URL            string          `json:"url"`
	Sessions       int             `json:"sessions"`
	WarmupMS       float64         `json:"warmup_ms"`
	DurationMS     float64         `json:"duration_ms"`
	Rate           float64         `json:"rate"`
	IdleStreams    int             `json:"idle_streams"`
	Tool           string          `json:"tool"`
	Args           json.RawMessage `json:"args"`
	TimeoutMS      float64         `json:"timeout_ms"`
	MaxOutstanding int             `json:"max_outstanding"`
	Conns          int             `json:"conns"`
	SourceIPs      int             `json:"source_ips"`
	Headers        []string        `json:"headers,omitempty"`
}

// MarshalJSON encodes the configuration with durations in milliseconds
// (warmup_ms, duration_ms, timeout_ms) and the names of Header (headers);
// Header's values, Progress and Started are left out.
func (c Config) MarshalJSON() ([]byte, error) {
	var names []string
	for k := range c.Header {
		names = append(names, http.CanonicalHeaderKey(k))
	}
	slices.Sort(names)
	return json.Marshal(configJSON{
		Label: c.Label, URL: c.URL, Sessions: c.Sessions,
		WarmupMS: ms(c.Warmup), DurationMS: ms(c.Duration), Rate: c.Rate,
		IdleStreams: c.IdleStreams, Tool: c.Tool, Args: c.Args,
		TimeoutMS: ms(c.Timeout), MaxOutstanding: c.MaxOutstanding, Conns: c.Conns, SourceIPs: c.SourceIPs,
		Headers: names,
	})
}

// ms is d in milliseconds.
func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// us is d in microseconds.
func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
