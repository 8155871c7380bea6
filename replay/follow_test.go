package replay_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mcpstream/mcpstream/replay"
	"github.com/mcpstream/mcpstream/schema"
	"github.com/mcpstream/mcpstream/streams"
)

// publishCall stores a tools/call of login in group g's stream, with
// deadline and task id, as a gateway would.
func publishCall(t *testing.T, js jetstream.JetStream, key, taskID string, deadline time.Time) {
	t.Helper()
	args, _ := schema.JSONToMsgpack(nil, []byte(fmt.Sprintf(`{"user":%q}`, key)))
	env := schema.Envelope{Key: key, Method: schema.MethodToolsCall, Name: "login", Params: args, Session: "sess-live",
		ReplyTo: "mcp.reply.gw", Attempt: 1, Deadline: deadline.UnixNano(), TaskID: taskID}
	b, _ := env.Marshal()
	if _, err := js.PublishMsg(context.Background(), &nats.Msg{Subject: streams.RequestSubject("g", streams.Partition(env.Session, 2)), Data: b}); err != nil {
		t.Fatal(err)
	}
}

// recordResult records a text result of request key, as group g would.
func recordResult(t *testing.T, js jetstream.JetStream, key, text string) {
	t.Helper()
	res, _ := schema.JSONToMsgpack(nil, []byte(fmt.Sprintf(`{"content":[{"type":"text","text":%q}]}`, text)))
	rb, _ := (&schema.Reply{Key: key, Result: res, RunNs: int64(time.Millisecond)}).Marshal()
	if _, err := js.Publish(context.Background(), streams.RecordSubject("g", key), rb); err != nil {
		t.Fatal(err)
	}
}

// TestFollowResultsNotHeldBack: with Follow and Results, a request read
// live whose answer is never recorded (still running, or lost) holds back
// no later one: a later request is passed on once its answer is recorded,
// with it; a task's request (its outcome goes to the task bucket, never
// to the record stream) is passed on at once. The one still waiting is
// passed on, without an answer, when the read ends.
func TestFollowResultsNotHeldBack(t *testing.T) {
	js := deployment(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	got := make(chan *replay.Line, 16)
	done := make(chan error, 1)
	go func() {
		done <- replay.Read(ctx, js, replay.Options{ReplayOptions: streams.ReplayOptions{Follow: true}, Results: true},
			func(l *replay.Line) error {
				got <- l
				return nil
			}, nil)
	}()
	// The wait for an event: a minute is the waiting request's own wait
	// (its deadline), which must hold nothing back.
	timeout := time.NewTimer(20 * time.Second)
	defer timeout.Stop()
	next := func(what string) *replay.Line {
		t.Helper()
		select {
		case l := <-got:
			return l
		case err := <-done:
			t.Fatalf("Read ended (%v) before %s", err, what)
		case <-timeout.C:
			t.Fatalf("no line for %s within 20s", what)
		}
		return nil
	}
	for i := range 6 { // the range: its consumers exist once it is read
		if l := next(fmt.Sprint("range line ", i)); l.Live() {
			t.Fatalf("range line %d read live", i)
		}
	}
	deadline := time.Now().Add(time.Minute)
	publishCall(t, js, "waiting", "", deadline)
	publishCall(t, js, "answered", "", deadline)
	recordResult(t, js, "answered", "done")
	if l := next("the answered request"); l.Key != "answered" || !l.Live() || !strings.Contains(string(l.Result), "done") {
		t.Fatalf("line %+v (result %s), want the answered request, live, with its result", l, l.Result)
	}
	publishCall(t, js, "task", "task-1", deadline)
	if l := next("the task's request"); l.Key != "task" || l.Result != nil || l.Error != nil {
		t.Fatalf("line %+v, want the task's request, without a result", l)
	}
	cancel()
	if l := next("the waiting request, at the end"); l.Key != "waiting" || l.Result != nil {
		t.Errorf("line %+v, want the waiting request, without a result", l)
	}
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("Read ended with %v, want context.Canceled", err)
	}
}
