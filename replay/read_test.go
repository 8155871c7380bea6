package replay_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mcpstream/mcpstream/internal/testkit"
	"github.com/mcpstream/mcpstream/replay"
	"github.com/mcpstream/mcpstream/schema"
	"github.com/mcpstream/mcpstream/streams"
)

// deployment provisions 2 partitions, registers tool login (password
// sensitive) of group g, makes g's record stream, and records six calls:
// login by ada and bob in turns (principal = user), i in the arguments,
// traced in trace t<i%2>; the odd ones answered with a result, call 4
// with an error, the others not recorded.
func deployment(t *testing.T) jetstream.JetStream {
	t.Helper()
	_, _, js := testkit.JetStream(t)
	ctx := context.Background()
	topo := streams.Topology{Partitions: 2}
	if err := streams.Provision(ctx, js, topo); err != nil {
		t.Fatal(err)
	}
	reg, err := js.KeyValue(ctx, streams.RegistryBucket)
	if err != nil {
		t.Fatal(err)
	}
	entry, _ := json.Marshal(schema.ToolEntry{Group: "g", Tool: schema.Tool{Name: "login",
		InputSchema: json.RawMessage(`{"type":"object","properties":{"user":{},"password":{"x-mcpstream-sensitive":true}}}`)}})
	if _, err := reg.Put(ctx, streams.ToolKey("login"), entry); err != nil {
		t.Fatal(err)
	}
	if _, err := js.CreateStream(ctx, topo.RecordConfig("g", 0, 0)); err != nil {
		t.Fatal(err)
	}
	for i := range 6 {
		user := []string{"ada", "bob"}[i%2]
		args, _ := schema.JSONToMsgpack(nil, []byte(fmt.Sprintf(`{"user":%q,"password":"pw%d","i":%d}`, user, i, i)))
		env := schema.Envelope{Key: fmt.Sprintf("key-%d", i), Method: schema.MethodToolsCall, Name: "login", Params: args,
			Session: "sess-" + user, Principal: user, Revision: "2025-11-25", ReplyTo: "mcp.reply.gw", Attempt: 1,
			Deadline:    time.Now().Add(time.Minute).UnixNano(),
			TraceParent: fmt.Sprintf("00-%032x-%016x-01", i%2+1, i+1)}
		b, _ := env.Marshal()
		if _, err := js.PublishMsg(ctx, &nats.Msg{Subject: streams.RequestSubject("g", streams.Partition(env.Session, 2)), Data: b}); err != nil {
			t.Fatal(err)
		}
		var rep *schema.Reply
		switch {
		case i == 4:
			rep = &schema.Reply{Key: env.Key, Error: schema.Errorf(schema.CodeInvalidParams, "bad password"), RunNs: int64(time.Millisecond)}
		case i%2 == 1:
			res, _ := schema.JSONToMsgpack(nil, []byte(fmt.Sprintf(`{"content":[{"type":"text","text":"welcome %s"}]}`, user)))
			rep = &schema.Reply{Key: env.Key, Result: res, RunNs: int64(2500 * time.Microsecond)}
		default:
			continue
		}
		rb, _ := rep.Marshal()
		if _, err := js.Publish(ctx, streams.RecordSubject("g", env.Key), rb); err != nil {
			t.Fatal(err)
		}
	}
	return js
}

// read runs replay.Read with o and returns the lines.
func read(t *testing.T, js jetstream.JetStream, o replay.Options) []*replay.Line {
	t.Helper()
	var out []*replay.Line
	if err := replay.Read(context.Background(), js, o, func(l *replay.Line) error {
		out = append(out, l)
		return nil
	}, func(r *streams.Recorded) { t.Errorf("skipped %s %d: %v", r.Stream, r.Seq, r.Err) }); err != nil {
		t.Fatal(err)
	}
	return out
}

// is lists the lines' i arguments.
func is(t *testing.T, lines []*replay.Line) string {
	t.Helper()
	var out []string
	for _, l := range lines {
		var a struct{ I int }
		if err := json.Unmarshal(l.Arguments, &a); err != nil {
			t.Fatalf("arguments %s: %v", l.Arguments, err)
		}
		out = append(out, fmt.Sprint(a.I))
	}
	return strings.Join(out, ",")
}

// TestReadSkipCopies: a copy of a request stored a second time (Attempt
// 2) is read as a line of its own, and left out with SkipCopies, as a
// re-run (--to) reads: it sends the request once.
func TestReadSkipCopies(t *testing.T) {
	js := deployment(t)
	args, _ := schema.JSONToMsgpack(nil, []byte(`{"user":"ada","password":"pw0","i":0}`))
	env := schema.Envelope{Key: "key-0", Method: schema.MethodToolsCall, Name: "login", Params: args, Session: "sess-ada",
		Principal: "ada", Revision: "2025-11-25", ReplyTo: "mcp.reply.gw", Attempt: 2, Deadline: time.Now().Add(time.Minute).UnixNano()}
	b, _ := env.Marshal()
	if _, err := js.PublishMsg(context.Background(), &nats.Msg{Subject: streams.RequestSubject("g", streams.Partition(env.Session, 2)), Data: b}); err != nil {
		t.Fatal(err)
	}
	if got := is(t, read(t, js, replay.Options{})); got != "0,1,2,3,4,5,0" {
		t.Errorf("every line: %s, want the copy of 0 last", got)
	}
	if got := is(t, read(t, js, replay.Options{SkipCopies: true})); got != "0,1,2,3,4,5" {
		t.Errorf("without copies: %s", got)
	}
}

// TestReadFilters: the filters applied as requests stream past select
// exactly theirs, in order; the fields of a line come from the envelope
// and the stream.
func TestReadFilters(t *testing.T) {
	js := deployment(t)
	all := read(t, js, replay.Options{})
	if got := is(t, all); got != "0,1,2,3,4,5" {
		t.Fatalf("all: %s", got)
	}
	l := all[1]
	if l.Group != "g" || l.Key != "key-1" || l.Session != "sess-bob" || l.Principal != "bob" || l.Revision != "2025-11-25" ||
		l.Method != "tools/call" || l.Tool != "login" || l.TraceID != fmt.Sprintf("%032x", 2) || l.Attempt != 1 ||
		!strings.HasPrefix(l.Stream, "MCP_REQ_") || l.Seq == 0 || l.Result != nil {
		t.Errorf("line %+v", l)
	}
	if _, err := time.Parse(time.RFC3339Nano, l.Time); err != nil || l.Deadline <= l.Time {
		t.Errorf("time %q deadline %q: %v", l.Time, l.Deadline, err)
	}
	for name, c := range map[string]struct {
		o    replay.Options
		want string
	}{
		"principal": {replay.Options{Principal: "bob"}, "1,3,5"},
		"trace":     {replay.Options{TraceID: fmt.Sprintf("%032x", 1)}, "0,2,4"},
		"method":    {replay.Options{Method: "prompts/get"}, ""},
		"tool":      {replay.Options{Tool: "login"}, "0,1,2,3,4,5"},
		"unknown":   {replay.Options{Tool: "logout"}, ""},
	} {
		if got := is(t, read(t, js, c.o)); got != c.want {
			t.Errorf("%s: %s, want %s", name, got, c.want)
		}
	}
}

// TestReadResults: recorded answers are attached to their requests,
// results and errors with the handler's duration; unrecorded requests
// and groups without a record stream get none.
func TestReadResults(t *testing.T) {
	js := deployment(t)
	lines := read(t, js, replay.Options{Results: true})
	for i, l := range lines {
		switch {
		case i == 4:
			if l.Error == nil || l.Error.Code != schema.CodeInvalidParams || l.Result != nil || l.Duration != "1ms" {
				t.Errorf("line %d: error %+v result %s duration %s", i, l.Error, l.Result, l.Duration)
			}
		case i%2 == 1:
			if !strings.Contains(string(l.Result), "welcome") || l.Error != nil || l.Duration != "2.5ms" {
				t.Errorf("line %d: result %s duration %s", i, l.Result, l.Duration)
			}
		default:
			if l.Result != nil || l.Error != nil || l.Duration != "" {
				t.Errorf("line %d, not recorded: %+v", i, l)
			}
		}
	}
}

// TestMasker: sensitive arguments are masked unless shown, --redact
// pointers are masked in every line, and nothing else changes.
func TestMasker(t *testing.T) {
	js := deployment(t)
	ctx := context.Background()
	lines := read(t, js, replay.Options{Results: true, Principal: "bob"})
	redact, err := replay.ParsePointer("/result/content/*/text")
	if err != nil {
		t.Fatal(err)
	}
	m, err := replay.NewMasker(ctx, js, []replay.Pointer{redact}, false)
	if err != nil {
		t.Fatal(err)
	}
	b, err := m.Marshal(ctx, lines[0])
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Arguments map[string]any
		Result    struct{ Content []map[string]any }
		Key       string
	}
	if err := json.Unmarshal(b, &got); err != nil || b[len(b)-1] != '\n' {
		t.Fatalf("%s: %v", b, err)
	}
	if got.Arguments["password"] != replay.Masked || got.Arguments["user"] != "bob" || got.Key != "key-1" ||
		got.Result.Content[0]["text"] != replay.Masked || got.Result.Content[0]["type"] != "text" {
		t.Errorf("masked line %s", b)
	}
	shown, err := replay.NewMasker(ctx, js, nil, true)
	if err != nil {
		t.Fatal(err)
	}
	if b, err = shown.Marshal(ctx, lines[0]); err != nil || !strings.Contains(string(b), `"password":"pw1"`) || !strings.Contains(string(b), "welcome bob") {
		t.Errorf("shown line %s: %v", b, err)
	}
}

// TestMaskMembers: --redact pointers into the error, and at top-level
// string members, mask those; the line and its arguments keep their
// members' order.
func TestMaskMembers(t *testing.T) {
	js := deployment(t)
	ctx := context.Background()
	lines := read(t, js, replay.Options{Results: true})
	var ps []replay.Pointer
	for _, s := range []string{"/error/message", "/session", "/seq", "/arguments/i"} {
		p, err := replay.ParsePointer(s)
		if err != nil {
			t.Fatal(err)
		}
		ps = append(ps, p)
	}
	m := &replay.Masker{Redact: ps, ShowSensitive: true}
	b, err := m.Marshal(ctx, lines[4])
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf(`{"seq":%d,"stream":"%s","time":"%s","group":"g","key":"key-4","session":"***","principal":"ada",`,
		lines[4].Seq, lines[4].Stream, lines[4].Time)
	if !strings.HasPrefix(string(b), want) || !strings.Contains(string(b), `"arguments":{"user":"ada","password":"pw4","i":"***"}`) ||
		!strings.Contains(string(b), `"error":{"code":-32602,"message":"***"}`) {
		t.Errorf("masked line\n%s\nwant it to start %s", b, want)
	}
	if lines[4].Session != "sess-ada" || lines[4].Error.Message != "bad password" {
		t.Errorf("masking changed the line it was given: %+v", lines[4])
	}
}

// TestMaskerUnknownTool: the arguments of a tool the registry no longer
// holds are all masked (which of them were sensitive is not known), with
// one warning for the tool however many of its lines are printed; with
// ShowSensitive they are printed as recorded, without a warning.
func TestMaskerUnknownTool(t *testing.T) {
	js := deployment(t)
	ctx := context.Background()
	lines := read(t, js, replay.Options{})
	reg, err := js.KeyValue(ctx, streams.RegistryBucket)
	if err != nil {
		t.Fatal(err)
	}
	if err := reg.Delete(ctx, streams.ToolKey("login")); err != nil {
		t.Fatal(err)
	}
	var logged bytes.Buffer
	m, err := replay.NewMasker(ctx, js, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	m.Log = slog.New(slog.NewTextHandler(&logged, nil))
	for _, l := range lines[:2] {
		b, err := m.Marshal(ctx, l)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(b), "pw") || strings.Contains(string(b), `"user":"`+l.Principal) ||
			!strings.Contains(string(b), `"arguments":{"user":"***","password":"***","i":"***"}`) {
			t.Errorf("line of an unknown tool: %s", b)
		}
	}
	if n := strings.Count(logged.String(), "level=WARN"); n != 1 || !strings.Contains(logged.String(), "tool=login") {
		t.Errorf("warnings: %d, want 1 naming the tool:\n%s", n, logged.String())
	}
	logged.Reset()
	shown, err := replay.NewMasker(ctx, js, nil, true)
	if err != nil {
		t.Fatal(err)
	}
	shown.Log = slog.New(slog.NewTextHandler(&logged, nil))
	if b, err := shown.Marshal(ctx, lines[0]); err != nil || !strings.Contains(string(b), `"password":"pw0"`) || logged.Len() != 0 {
		t.Errorf("shown: %s (%v), logged %q", b, err, logged.String())
	}
}
