package main

import (
	"context"
	"flag"
	"io"
	"strings"
	"testing"
	"time"
)

// TestReplayFlags: the range flags take a duration ago or an RFC 3339
// time, the filters land in the options, and conflicting or malformed
// flags are refused with a message naming the flag.
func TestReplayFlags(t *testing.T) {
	now := time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
	parse := func(args ...string) (*replayFlags, error) {
		fs := flag.NewFlagSet("replay", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		var f replayFlags
		f.register(fs)
		return &f, fs.Parse(args)
	}
	f, err := parse("--since", "15m", "--until", "2026-12-04T09:59:00.5Z", "--group", "demo", "--session", "s",
		"--tool", "echo", "--method", "tools/call", "--principal", "ada", "--trace-id", "ABCDEF", "--start-seq", "7",
		"--limit", "3", "--follow", "--results", "--stream", "MCP_REQ_1", "--result-wait", "2s")
	if err != nil {
		t.Fatal(err)
	}
	o, err := f.options(now)
	if err != nil {
		t.Fatal(err)
	}
	if !o.Since.Equal(now.Add(-15*time.Minute)) || !o.Until.Equal(time.Date(2026, 12, 4, 9, 59, 0, 5e8, time.UTC)) {
		t.Errorf("since %s until %s", o.Since, o.Until)
	}
	if o.Group != "demo" || o.Session != "s" || o.Tool != "echo" || o.Method != "tools/call" || o.Principal != "ada" ||
		o.TraceID != "abcdef" || o.StartSeq != 7 || o.Limit != 3 || !o.Follow || !o.Results || o.Stream != "MCP_REQ_1" ||
		o.ResultWait != 2*time.Second {
		t.Errorf("options %+v", o)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--since", "yesterday"}, "--since"},
		{[]string{"--until", "-5m"}, "--until"},
		{[]string{"--since", "5m", "--until", "10m"}, "before --since"},
		{[]string{"--limit", "-1"}, "--limit"},
		{[]string{"--result-wait", "-1s"}, "--result-wait"},
		{[]string{"--diff"}, "need --to"},
		{[]string{"--ignore", "/result"}, "need --to"},
	} {
		f, err := parse(c.args...)
		if err == nil {
			_, err = f.options(now)
		}
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: %v, want an error naming %q", c.args, err, c.want)
		}
	}
	f, err = parse("--to", "http://x/mcp", "--to-header", "Authorization: Bearer a,b", "--to-header", "X-Other: 1")
	if err != nil || len(f.toHeaders) != 2 || f.toHeaders[0] != "Authorization: Bearer a,b" {
		t.Errorf("--to-header values %q (%v): a comma must not split one", f.toHeaders, err)
	}
	if _, err := headers([]string{"Authorization: Bearer a,b", "X-Empty:"}); err != nil {
		t.Error(err)
	}
	if h, _ := headers([]string{"Authorization: Bearer a,b"}); h.Get("Authorization") != "Bearer a,b" {
		t.Errorf("header %v", h)
	}
	if _, err := headers([]string{"no colon"}); err == nil {
		t.Error("a header without a colon was taken")
	}
}

// TestReplayProgress: the bar is drawn once the range is known to hold
// more than progressAbove requests, not below, and never when turned off.
func TestReplayProgress(t *testing.T) {
	var out strings.Builder
	p := &replayProgress{w: &out}
	p.update(1, progressAbove)
	if out.Len() != 0 || p.bar != nil {
		t.Fatalf("a bar for %d requests: %q", progressAbove, out.String())
	}
	p.update(2, progressAbove+1)
	p.update(progressAbove+1, progressAbove+1)
	p.finish()
	if p.bar == nil || !strings.Contains(out.String(), "replay") {
		t.Errorf("no bar for %d requests: %q", progressAbove+1, out.String())
	}
	out.Reset()
	off := &replayProgress{w: &out, off: true}
	off.update(1, 10*progressAbove)
	if out.Len() != 0 {
		t.Errorf("a bar turned off drew %q", out.String())
	}
	if p := newReplayProgress(&out, false); !p.off {
		t.Error("a bar on a writer that is not a terminal")
	}
}

// TestReplayFollowToSameDeployment: `replay --follow --to` the deployment
// it reads re-runs a call once, not its own re-run again (which the
// deployment records as it does any call): once a call made after the
// first one's re-run has been re-run itself, the first has run exactly
// twice. A later `replay --to` over the range, a process that knows
// nothing of the first one's sessions, re-runs only the clients' calls.
func TestReplayFollowToSameDeployment(t *testing.T) {
	s := startReplayStack(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cs := s.client(t, ctx)
	s.call(t, ctx, cs, "first")

	rctx, stop := context.WithCancel(ctx)
	out, errOut := newLineWriter(), newLineWriter()
	done := make(chan error, 1)
	go func() {
		done <- runReplay(rctx, []string{"--nats", s.natsURL, "--follow", "--results", "--to", s.endpoint, "--tool", "count"}, out, errOut)
	}()
	awaitAnswered := func(text string) {
		t.Helper()
		for {
			select {
			case l := <-out.lines:
				if strings.Contains(l, `"outcome":"answered"`) && strings.Contains(l, "counted "+text) {
					return
				}
			case err := <-done:
				t.Fatalf("replay ended before re-running %q: %v", text, err)
			case <-ctx.Done():
				t.Fatalf("no re-run of %q answered", text)
			}
		}
	}
	awaitAnswered("first")
	s.call(t, ctx, cs, "second") // read live, after the re-run of first
	awaitAnswered("second")
	s.awaitRuns(t, ctx, "second", 2)
	if n := s.count("first"); n != 2 {
		t.Errorf("first ran %d times, want 2: the call and its re-run", n)
	}
	stop()
	if err := <-done; err != nil {
		t.Errorf("replay --follow ended with %v", err)
	}

	// Again over the range: the two calls are re-run, their re-runs not.
	out2, errOut2 := newLineWriter(), newLineWriter()
	if err := runReplay(ctx, []string{"--nats", s.natsURL, "--to", s.endpoint}, out2, errOut2); err != nil {
		t.Fatal(err)
	}
	if n, m := s.count("first"), s.count("second"); n != 3 || m != 3 {
		t.Errorf("after a second replay, first ran %d times and second %d, want 3 each", n, m)
	}
	if !strings.Contains(errOut2.String(), "2 sent: 2 answered") {
		t.Errorf("second replay's summary: %q", errOut2.String())
	}

	// Printed, the re-runs' requests say so.
	printed := newLineWriter()
	if err := runReplay(ctx, []string{"--nats", s.natsURL}, printed, io.Discard); err != nil {
		t.Fatal(err)
	}
	if all, reruns := strings.Count(printed.String(), "\n"), strings.Count(printed.String(), `"rerun":true`); all != 6 || reruns != 4 {
		t.Errorf("printed %d lines, %d marked as a re-run's, want 6 and 4:\n%s", all, reruns, printed)
	}
}
