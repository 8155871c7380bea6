package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/mcpstream/mcpstream/replay"
	"github.com/mcpstream/mcpstream/streams"
)

// progressAbove is the size of a range, in requests, above which replay
// draws a progress bar (on a terminal).
const progressAbove = 5000

// replayFlags are replay's flags.
type replayFlags struct {
	nats                             natsFlags
	group, session, stream           string
	tool, method, principal, traceID string
	since, until                     string
	startSeq                         uint64
	limit                            int
	follow, results, showSensitive   bool
	redact                           listFlag
	noProgress                       bool
	to, rate                         string
	maxGap, timeout, resultWait      time.Duration
	concurrency                      int
	diff                             bool
	ignore                           listFlag
	toHeaders                        repeatFlag
}

func (f *replayFlags) register(fs *flag.FlagSet) {
	f.nats.register(fs)
	fs.StringVar(&f.group, "group", "", "only this worker group's requests (filtered by the server)")
	fs.StringVar(&f.session, "session", "", "only this session's requests (only its partition stream is read)")
	fs.StringVar(&f.stream, "stream", "", "only this request stream, as lines name it (e.g. MCP_REQ_2)")
	fs.StringVar(&f.tool, "tool", "", "only requests for this tool, prompt or resource URI")
	fs.StringVar(&f.method, "method", "", "only requests of this method (e.g. tools/call)")
	fs.StringVar(&f.principal, "principal", "", "only requests of this principal")
	fs.StringVar(&f.traceID, "trace-id", "", "only requests of this trace (32 hex digits)")
	fs.StringVar(&f.since, "since", "", "start at requests stored this long ago (e.g. 15m) or at this RFC 3339 time (default the oldest kept)")
	fs.StringVar(&f.until, "until", "", "end at requests stored this long ago or at this RFC 3339 time (default now)")
	fs.Uint64Var(&f.startSeq, "start-seq", 0, "start every stream read at this stream sequence (with --stream, one stream's)")
	fs.IntVar(&f.limit, "limit", 0, "print at most this many requests (default no limit)")
	fs.BoolVar(&f.follow, "follow", false, "after the range, go on printing requests as they are stored, until interrupted")
	fs.BoolVar(&f.results, "results", false, "add each request's recorded result or error and duration (groups run with --record-results)")
	fs.DurationVar(&f.resultWait, "result-wait", 0, "with --follow --results: how long a request read live waits for its answer to be recorded, holding back no other line (default until its deadline, at most 1m)")
	fs.Var(&f.redact, "redact", `JSON pointer, from a line's root, of a value to print as "***", e.g. /arguments/query (repeatable or comma-separated; "*" matches every element)`)
	fs.BoolVar(&f.showSensitive, "show-sensitive", false, "print the arguments tools mark sensitive in their input schema ("+"x-mcpstream-sensitive"+"), and all those of tools no longer in the registry, masked by default")
	fs.BoolVar(&f.noProgress, "no-progress", false, "draw no progress bar (drawn on a terminal for ranges above 5,000 requests)")
	fs.StringVar(&f.to, "to", "", "send the selected calls again to this Streamable HTTP MCP endpoint instead of printing them")
	fs.StringVar(&f.rate, "rate", "instant", `with --to: "original" (the recorded spacing), "instant", or calls per second`)
	fs.DurationVar(&f.maxGap, "max-gap", 0, "with --to --rate original: the longest pause between two calls (default no cap)")
	fs.IntVar(&f.concurrency, "concurrency", 1, "with --to: client sessions sending calls at once (one recorded session's calls stay on one)")
	fs.DurationVar(&f.timeout, "timeout", 0, "with --to: deadline of one call (default 60s)")
	fs.BoolVar(&f.diff, "diff", false, "with --to: compare each answer with the recorded one (needs --record-results on the group) and print the differing calls")
	fs.Var(&f.ignore, "ignore", "with --diff: JSON pointer, from the answer's root, of a value to leave out of the comparison, e.g. /result/_meta/at (repeatable)")
	fs.Var(&f.toHeaders, "to-header", `with --to: an HTTP header sent with every call, "Name: value" (repeatable), e.g. for credentials`)
}

// options turns the reading and filtering flags into replay options, at
// now. It returns an error for a malformed time or a conflicting flag.
func (f *replayFlags) options(now time.Time) (replay.Options, error) {
	o := replay.Options{Tool: f.tool, Method: f.method, Principal: f.principal, TraceID: strings.ToLower(f.traceID),
		Results: f.results || f.diff, SkipRerun: f.to != "", SkipCopies: f.to != ""}
	o.Group, o.Session, o.Stream, o.StartSeq, o.Limit, o.Follow = f.group, f.session, f.stream, f.startSeq, f.limit, f.follow
	o.ResultWait = f.resultWait
	var err error
	if o.Since, err = parseWhen("--since", f.since, now); err != nil {
		return o, err
	}
	if o.Until, err = parseWhen("--until", f.until, now); err != nil {
		return o, err
	}
	if !o.Since.IsZero() && !o.Until.IsZero() && o.Until.Before(o.Since) {
		return o, errors.New("--until is before --since")
	}
	if f.limit < 0 {
		return o, errors.New("--limit must not be negative")
	}
	if f.resultWait < 0 {
		return o, errors.New("--result-wait must not be negative")
	}
	if f.to == "" && (f.diff || len(f.ignore) > 0 || len(f.toHeaders) > 0) {
		return o, errors.New("--diff, --ignore and --to-header need --to")
	}
	return o, nil
}

// parseWhen reads a time flag: a duration ago, or an RFC 3339 time.
func parseWhen(name, v string, now time.Time) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	if d, err := time.ParseDuration(v); err == nil {
		if d < 0 {
			return time.Time{}, fmt.Errorf("%s %s: give how long ago, a positive duration", name, v)
		}
		return now.Add(-d), nil
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return time.Time{}, fmt.Errorf("%s %q: want a duration (e.g. 15m) or an RFC 3339 time (e.g. 2026-12-04T10:00:00Z)", name, v)
	}
	return t, nil
}

// pointers parses JSON pointers named by flag.
func pointers(flag string, list []string) ([]replay.Pointer, error) {
	var out []replay.Pointer
	for _, s := range list {
		p, err := replay.ParsePointer(s)
		if err != nil {
			return nil, fmt.Errorf("%s %q: %w", flag, s, err)
		}
		out = append(out, p)
	}
	return out, nil
}

// runReplay prints the recorded requests the flags select as JSON lines on
// stdout, or sends them again to --to.
func runReplay(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("replay", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var c common
	c.log.register(fs, "warn")
	var f replayFlags
	f.register(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	log, err := c.log.logger(stderr)
	if err != nil {
		return err
	}
	o, err := f.options(time.Now())
	if err != nil {
		return err
	}
	redact, err := pointers("--redact", f.redact)
	if err != nil {
		return err
	}
	nc, err := connect(f.nats, "mcpstream-replay", streams.InboxPrefix(streams.RoleReplay, ""), os.Getenv, log)
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("opening JetStream: %w", err)
	}
	bar := newReplayProgress(stderr, f.noProgress)
	defer bar.finish()
	o.Progress = bar.update
	skipped := func(rec *streams.Recorded) {
		log.Warn("skipping a request that cannot be read", "stream", rec.Stream, "seq", rec.Seq, "err", rec.Err)
	}
	if f.to != "" {
		return f.rerun(ctx, js, o, skipped, stdout, stderr)
	}
	m, err := replay.NewMasker(ctx, js, redact, f.showSensitive)
	if err != nil {
		return err
	}
	m.Log = log
	w := bufio.NewWriterSize(stdout, 64<<10)
	err = replay.Read(ctx, js, o, func(l *replay.Line) error {
		b, err := m.Marshal(ctx, l)
		if err != nil {
			return err
		}
		if _, err := w.Write(b); err != nil {
			return fmt.Errorf("writing: %w", err)
		}
		if o.Follow {
			return w.Flush() // each line as it comes, the range's last ones included
		}
		return nil
	}, skipped)
	if ferr := w.Flush(); err == nil && ferr != nil {
		err = fmt.Errorf("writing: %w", ferr)
	}
	if o.Follow && errors.Is(err, context.Canceled) && ctx.Err() != nil {
		return nil // interrupted: how --follow ends
	}
	return err
}

// replayProgress draws a bar on stderr, when it is a terminal, once the
// range is known to hold more than progressAbove requests.
type replayProgress struct {
	w   io.Writer
	bar *progressbar.ProgressBar
	off bool
}

func newReplayProgress(stderr io.Writer, off bool) *replayProgress {
	f, ok := stderr.(*os.File)
	return &replayProgress{w: stderr, off: off || !ok || !term.IsTerminal(int(f.Fd()))}
}

func (p *replayProgress) update(read, total uint64) {
	if p.off || (p.bar == nil && total <= progressAbove) {
		return
	}
	if p.bar == nil {
		p.bar = progressbar.NewOptions64(int64(total),
			progressbar.OptionSetWriter(p.w),
			progressbar.OptionSetWidth(30),
			progressbar.OptionSetDescription("replay"),
			progressbar.OptionShowCount(),
			progressbar.OptionShowIts(),
			progressbar.OptionSetItsString("requests"),
			progressbar.OptionThrottle(100*time.Millisecond),
			progressbar.OptionClearOnFinish(),
		)
	}
	if int64(total) != p.bar.GetMax64() {
		p.bar.ChangeMax64(int64(total))
	}
	_ = p.bar.Set64(int64(read))
}

func (p *replayProgress) finish() {
	if p.bar != nil {
		_ = p.bar.Finish()
	}
}

// errStopped ends a read the re-run stopped taking lines from.
var errStopped = errors.New("re-run stopped")

// rerun sends the selected calls to --to, printing what rerun.go prints
// for each on stdout and the summary on stderr.
func (f *replayFlags) rerun(ctx context.Context, js jetstream.JetStream, o replay.Options, skipped func(*streams.Recorded), stdout, stderr io.Writer) error {
	rate, err := replay.ParseRate(f.rate)
	if err != nil {
		return fmt.Errorf("--rate: %w", err)
	}
	ignore, err := pointers("--ignore", f.ignore)
	if err != nil {
		return err
	}
	header, err := headers(f.toHeaders)
	if err != nil {
		return err
	}
	if f.concurrency < 1 {
		return errors.New("--concurrency must be at least 1")
	}
	ro := replay.RerunOptions{To: f.to, Rate: rate, MaxGap: f.maxGap, Concurrency: f.concurrency, Diff: f.diff,
		Ignore: ignore, Timeout: f.timeout, Header: header}
	lines := func(yield func(*replay.Line, error) bool) {
		err := replay.Read(ctx, js, o, func(l *replay.Line) error {
			if !yield(l, nil) {
				return errStopped
			}
			return nil
		}, skipped)
		if err != nil && !errors.Is(err, errStopped) {
			yield(nil, err)
		}
	}
	sum, err := replay.Rerun(ctx, ro, lines, stdout)
	fmt.Fprintf(stderr, "mcpstream replay: %s\n", sum)
	if o.Follow && errors.Is(err, context.Canceled) && ctx.Err() != nil {
		return nil
	}
	return err
}

// repeatFlag is a repeatable flag whose values are taken whole (a header
// value may hold commas).
type repeatFlag []string

func (r *repeatFlag) String() string { return strings.Join(*r, "; ") }

func (r *repeatFlag) Set(v string) error {
	*r = append(*r, v)
	return nil
}

// headers parses "Name: value" flags into a header.
func headers(list []string) (http.Header, error) {
	h := http.Header{}
	for _, s := range list {
		name, value, ok := strings.Cut(s, ":")
		if name = strings.TrimSpace(name); !ok || name == "" {
			return nil, fmt.Errorf(`--to-header %q: want "Name: value"`, s)
		}
		h.Add(name, strings.TrimSpace(value))
	}
	return h, nil
}
