package workers_test

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mcpstream/mcpstream/schema"
	"github.com/mcpstream/mcpstream/streams"
	"github.com/mcpstream/mcpstream/workers"
)

// taskEnvelope is a stateless tools/call of name whose client declared the
// tasks extension, with a call deadline callFor away.
func (h *harness) taskEnvelope(key, name string, callFor time.Duration) *schema.Envelope {
	h.t.Helper()
	env := h.envelope(key, name, map[string]any{})
	env.Session, env.Revision = "", schema.Revision20260728
	env.Deadline = time.Now().Add(callFor).UnixNano()
	var err error
	if env.ClientCaps, err = schema.JSONToMsgpack(nil, []byte(`{"extensions":{"`+schema.ExtensionTasks+`":{}}}`)); err != nil {
		h.t.Fatal(err)
	}
	return env
}

// taskHandle decodes the reply that answers a detached call with its task.
func (h *harness) taskHandle(r *schema.Reply) *schema.Task {
	h.t.Helper()
	j, err := schema.MsgpackToJSON(nil, r.Result)
	if err != nil || r.Error != nil {
		h.t.Fatalf("reply %s: %v %v, want a task handle", r.Key, err, r.Error)
	}
	var t schema.Task
	if err := json.Unmarshal(j, &t); err != nil || t.TaskID == "" || t.Status != schema.TaskWorking {
		h.t.Fatalf("reply %s: %s (%v), want a working task's handle", r.Key, j, err)
	}
	return &t
}

// awaitTaskStatus watches task id in the task bucket until it has status,
// and returns it.
func (h *harness) awaitTaskStatus(id, status string, timeout time.Duration) *schema.Task {
	h.t.Helper()
	kv, err := streams.TaskBucketOf(h.ctx(), h.js, h.topo)
	if err != nil {
		h.t.Fatal(err)
	}
	w, err := kv.Watch(h.ctx(), id)
	if err != nil {
		h.t.Fatal(err)
	}
	defer func() { _ = w.Stop() }()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	var last schema.Task
	for {
		select {
		case e := <-w.Updates():
			if e == nil { // the current value has been delivered
				continue
			}
			if err := json.Unmarshal(e.Value(), &last); err != nil {
				h.t.Fatalf("task %s: %s: %v", id, e.Value(), err)
			}
			if last.Status == status {
				return &last
			}
		case <-timer.C:
			h.t.Fatalf("task %s is %q after %v, want %q", id, last.Status, timeout, status)
			return nil
		}
	}
}

// taskText is the first text content of a task's result.
func taskText(t *testing.T, task *schema.Task) string {
	t.Helper()
	var res toolResult
	if err := json.Unmarshal(task.Result, &res); err != nil || len(res.Content) == 0 {
		t.Fatalf("task %s: result %s (%v), want text content", task.TaskID, task.Result, err)
	}
	return res.Content[0].Text
}

// taskRun is what a task's handler saw when it started.
type taskRun struct {
	attempt  int
	deadline time.Time // of the context Detach returned
	live     bool      // that context had not ended
}

// taskTool adds tool "long" to g: it detaches, reports its run on runs,
// and answers text once release is closed, or its context's error.
func taskTool(g *workers.Group, runs chan<- taskRun, release <-chan struct{}, text string) {
	workers.AddTool(g, workers.Tool{Name: "long", TaskSupport: schema.TaskSupportOptional},
		func(ctx context.Context, c *workers.Call, _ struct{}) (*schema.ToolResult, error) {
			ctx, err := c.Detach(ctx)
			if err != nil {
				return nil, err
			}
			d, _ := ctx.Deadline()
			runs <- taskRun{c.Attempt, d, ctx.Err() == nil}
			select {
			case <-release:
				return workers.TextResult(text), nil
			case <-ctx.Done():
				return nil, context.Cause(ctx)
			}
		})
}

// TestDetachedTaskOutlivesCallDeadline: a call detached into a task keeps
// its envelope in progress until the task ends, not until the call's
// deadline: more than two AckWaits past that deadline the envelope has
// been delivered once and is still held, and the handler has run once;
// then the task completes and the envelope is acknowledged.
func TestDetachedTaskOutlivesCallDeadline(t *testing.T) {
	h := newHarness(t) // AckWait 1s
	runs, release := make(chan taskRun, 4), make(chan struct{})
	g := workers.NewGroup("tl")
	taskTool(g, runs, release, "finished")
	h.run(g, workers.Options{})
	finish := sync.OnceFunc(func() { close(release) })
	t.Cleanup(finish) // before the group stops

	k := h.keyFor(0)
	env := h.taskEnvelope(k, "long", time.Second)
	ack := h.publish("tl", env)
	task := h.taskHandle(h.await(k, 10*time.Second))
	if run := awaitValue(t, runs, 10*time.Second, "the handler to start"); run.attempt != 1 || !run.live {
		t.Fatalf("first run %+v, want attempt 1 under a live context", run)
	}

	// The window: the call's deadline and three AckWaits past it, in which
	// an envelope no longer kept in progress is redelivered (and dropped).
	window := time.NewTimer(time.Until(env.DeadlineTime()) + 3*h.topo.AckWait)
	defer window.Stop()
	select {
	case run := <-runs:
		t.Fatalf("the handler ran again (%+v) while its first run went on", run)
	case <-window.C:
	}
	info := h.consumerInfo("tl", 0)
	if info.Delivered.Consumer != 1 || info.NumRedelivered != 0 || info.NumAckPending != 1 {
		t.Fatalf("%v past the call's deadline: %d deliveries, %d redelivered, %d pending; want the one delivery still held",
			3*h.topo.AckWait, info.Delivered.Consumer, info.NumRedelivered, info.NumAckPending)
	}

	finish()
	done := h.awaitTaskStatus(task.TaskID, schema.TaskCompleted, 10*time.Second)
	if got := taskText(t, done); got != "finished" {
		t.Errorf("completed task answered %q, want %q", got, "finished")
	}
	if info := h.waitAcked("tl", 0, ack.Sequence); info.Delivered.Consumer != 1 {
		t.Errorf("%d deliveries, want 1", info.Delivered.Consumer)
	}
}

// TestDetachedTaskResumedAfterDeadline: replica A runs a task whose call
// deadline has passed and drains; the envelope it hands back is expired as
// a call, but its task works on, so replica B goes on with the task (its
// handler again, under the task's deadline, attempt 2) to completion,
// sending the gateway nothing, and the task keeps its entry. An expired
// copy of the envelope once the task has completed is dropped, not run.
func TestDetachedTaskResumedAfterDeadline(t *testing.T) {
	h := newHarnessWith(t, slowTopology) // AckWait 30s: any redelivery within the test is a hand-back
	runsA, runsB := make(chan taskRun, 4), make(chan taskRun, 4)
	a := workers.NewGroup("tr")
	taskTool(a, runsA, nil, "A finished")
	_, stopA := h.run(a, workers.Options{Instance: "a", DrainTimeout: 300 * time.Millisecond})

	k := h.keyFor(0)
	env := h.taskEnvelope(k, "long", time.Second)
	ack := h.publish("tr", env)
	task := h.taskHandle(h.await(k, 10*time.Second))
	awaitValue(t, runsA, 10*time.Second, "A's handler to start")

	released := make(chan struct{})
	close(released)
	b := workers.NewGroup("tr")
	taskTool(b, runsB, released, "B finished")
	h.run(b, workers.Options{Instance: "b"})

	// Past the call's deadline (nothing to await but the clock), A drains.
	time.Sleep(time.Until(env.DeadlineTime()) + 100*time.Millisecond)
	if err := stopA(); err != nil {
		t.Fatalf("A's Run: %v", err)
	}

	run := awaitValue(t, runsB, 10*time.Second, "B to go on with the task")
	want := task.CreatedAt.Add(time.Duration(task.TTLMs) * time.Millisecond)
	if run.attempt != 2 || !run.live || !run.deadline.Equal(want) {
		t.Errorf("B ran %+v, want attempt 2 under a live context ending at the task's deadline %v", run, want)
	}
	done := awaitFinishedByB(t, h, task)
	if info := h.waitAcked("tr", 0, ack.Sequence); info.Delivered.Consumer != 2 {
		t.Errorf("%d deliveries, want 2: A's, then B's", info.Delivered.Consumer)
	}

	// The same request again, past its deadline and its task done (a copy
	// the stream stored twice): dropped, the task not run again.
	data, err := env.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	m := nats.NewMsg(streams.RequestSubject("tr", h.partition(k)))
	m.Data = data
	m.Header.Set(jetstream.MsgIDHeader, k+"-copy")
	copyAck, err := h.js.PublishMsg(h.ctx(), m)
	if err != nil {
		t.Fatal(err)
	}
	h.waitAcked("tr", 0, copyAck.Sequence)
	select {
	case run := <-runsB:
		t.Errorf("a completed task ran again: %+v", run)
	default:
	}
	if n := h.drainReplies()[k]; n != 0 {
		t.Errorf("%d more replies for %s, want the task's handle alone", n, k)
	}
	kv, err := streams.TaskBucketOf(h.ctx(), h.js, h.topo)
	if err != nil {
		t.Fatal(err)
	}
	e, err := kv.Get(h.ctx(), task.TaskID)
	if err != nil {
		t.Fatal(err)
	}
	var after schema.Task
	if err := json.Unmarshal(e.Value(), &after); err != nil || after.Status != schema.TaskCompleted || !after.LastUpdatedAt.Equal(done.LastUpdatedAt) {
		t.Errorf("task after the copy: %s (%v), want it as B completed it", e.Value(), err)
	}
}

// TestTaskRedeliveredBeforeCallDeadline: replica A detaches a call into a
// task and dies while the task works, long before the call's deadline;
// replica B, to which the server redelivers the envelope, goes on with the
// task under the task's deadline (its creation plus its TTL, not a TTL
// from now), the task's entry kept, and answers the gateway, which still
// waits for the call, with the task's handle.
func TestTaskRedeliveredBeforeCallDeadline(t *testing.T) {
	h := newHarness(t) // AckWait 1s: a dead replica's envelope comes again within seconds
	runsA, runsB := make(chan taskRun, 4), make(chan taskRun, 4)
	releaseA, releaseB := make(chan struct{}), make(chan struct{})
	a := workers.NewGroup("tb")
	taskTool(a, runsA, releaseA, "A finished")
	ncA, _ := h.run(a, workers.Options{Instance: "a", DrainTimeout: -1})
	t.Cleanup(func() { close(releaseA) }) // before A stops

	k := h.keyFor(0)
	env := h.taskEnvelope(k, "long", 20*time.Second)
	ack := h.publish("tb", env)
	task := h.taskHandle(h.await(k, 10*time.Second))
	awaitValue(t, runsA, 10*time.Second, "A's handler to start")
	ncA.Close() // A dies: its envelope is no longer kept in progress
	b := workers.NewGroup("tb")
	taskTool(b, runsB, releaseB, "B finished")
	h.run(b, workers.Options{Instance: "b"})
	finishB := sync.OnceFunc(func() { close(releaseB) })
	t.Cleanup(finishB) // before B stops

	run := awaitValue(t, runsB, 10*time.Second, "B to go on with the task")
	want := task.CreatedAt.Add(time.Duration(task.TTLMs) * time.Millisecond)
	if run.attempt != 2 || !run.live || !run.deadline.Equal(want) {
		t.Errorf("B ran %+v, want attempt 2 under a live context ending at the task's deadline %v", run, want)
	}
	again := h.taskHandle(h.await(k, 10*time.Second))
	if again.TaskID != task.TaskID || !again.CreatedAt.Equal(task.CreatedAt) {
		t.Errorf("B answered the gateway with task %s created %v, want the handle of %s created %v",
			again.TaskID, again.CreatedAt, task.TaskID, task.CreatedAt)
	}
	finishB()
	awaitFinishedByB(t, h, task)
	if info := h.waitAcked("tb", 0, ack.Sequence); info.Delivered.Consumer != 2 {
		t.Errorf("%d deliveries, want 2: A's, then B's", info.Delivered.Consumer)
	}
}

// TestEndedTaskNotRunAgain: the envelope of a call detached into a task
// that has ended comes again before the call's deadline, redelivered by
// the server (its replica died after recording the task's outcome, before
// acknowledging) or published again by the gateway: the handler does not
// run again; the gateway, which waits for the call, is answered with the
// task's handle (the client polls the task for its outcome), and the
// envelope is acknowledged.
func TestEndedTaskNotRunAgain(t *testing.T) {
	t.Run("redelivered", func(t *testing.T) {
		h := newHarness(t) // AckWait 1s
		runsA, runsB := make(chan taskRun, 4), make(chan taskRun, 4)
		release := make(chan struct{})
		a := workers.NewGroup("te")
		taskTool(a, runsA, release, "A finished")
		ncA, _ := h.run(a, workers.Options{Instance: "a", DrainTimeout: -1})
		k := h.keyFor(0)
		ack := h.publish("te", h.taskEnvelope(k, "long", 20*time.Second))
		task := h.taskHandle(h.await(k, 10*time.Second))
		awaitValue(t, runsA, 10*time.Second, "A's handler to start")
		// A records the task's outcome, and dies before acknowledging.
		h.setTaskStatus(task.TaskID, schema.TaskCompleted, `{"content":[{"type":"text","text":"A finished"}]}`)
		ncA.Close()
		b := workers.NewGroup("te")
		taskTool(b, runsB, release, "B finished")
		h.run(b, workers.Options{Instance: "b"})
		t.Cleanup(func() { close(release) }) // before the groups stop

		h.checkEndedHandle(h.await(k, 10*time.Second), task.TaskID, schema.TaskCompleted)
		if info := h.waitAcked("te", 0, ack.Sequence); info.Delivered.Consumer != 2 {
			t.Errorf("%d deliveries, want 2: A's, then B's", info.Delivered.Consumer)
		}
		select {
		case run := <-runsB:
			t.Errorf("a completed task ran again: %+v", run)
		default:
		}
	})
	t.Run("published again", func(t *testing.T) {
		h := newHarness(t)
		runs, release := make(chan taskRun, 4), make(chan struct{})
		close(release)
		g := workers.NewGroup("tp")
		taskTool(g, runs, release, "finished")
		h.run(g, workers.Options{})

		k := h.keyFor(0)
		env := h.taskEnvelope(k, "long", 20*time.Second)
		ack := h.publish("tp", env)
		task := h.taskHandle(h.await(k, 10*time.Second))
		awaitValue(t, runs, 10*time.Second, "the handler to start")
		h.awaitTaskStatus(task.TaskID, schema.TaskCompleted, 10*time.Second)
		h.waitAcked("tp", 0, ack.Sequence)

		// The gateway publishes the call again (it lost the stream's
		// acknowledgement), past the stream's duplicate window.
		env.Attempt = 2
		data, err := env.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		copyAck := h.publishRaw("tp", k+"-again", data)
		h.checkEndedHandle(h.await(k, 10*time.Second), task.TaskID, schema.TaskCompleted)
		h.waitAcked("tp", 0, copyAck.Sequence)
		select {
		case run := <-runs:
			t.Errorf("a completed task ran again: %+v", run)
		default:
		}
	})
}

// setTaskStatus sets task id's status, and its result if not "", in the
// task bucket, as a replica records a task's outcome.
func (h *harness) setTaskStatus(id, status, result string) {
	h.t.Helper()
	kv, err := streams.TaskBucketOf(h.ctx(), h.js, h.topo)
	if err != nil {
		h.t.Fatal(err)
	}
	e, err := kv.Get(h.ctx(), id)
	if err != nil {
		h.t.Fatal(err)
	}
	var task schema.Task
	if err := json.Unmarshal(e.Value(), &task); err != nil {
		h.t.Fatal(err)
	}
	task.Status, task.LastUpdatedAt = status, time.Now().UTC()
	if result != "" {
		task.Result = json.RawMessage(result)
	}
	val, err := json.Marshal(&task)
	if err != nil {
		h.t.Fatal(err)
	}
	if _, err := kv.Update(h.ctx(), id, val, e.Revision()); err != nil {
		h.t.Fatal(err)
	}
}

// checkEndedHandle checks that r answers a call with the handle of task
// id, which has status.
func (h *harness) checkEndedHandle(r *schema.Reply, id, status string) {
	h.t.Helper()
	j, err := schema.MsgpackToJSON(nil, r.Result)
	if err != nil || r.Error != nil {
		h.t.Fatalf("reply %s: %v %v, want a task handle", r.Key, err, r.Error)
	}
	var task schema.Task
	if err := json.Unmarshal(j, &task); err != nil || task.TaskID != id || task.Status != status {
		h.t.Errorf("reply %s: %s (%v), want the handle of task %s, %s", r.Key, j, err, id, status)
	}
}

// awaitFinishedByB waits for task to complete with replica B's result,
// its entry (creation time, TTL) kept from the run that created it, and
// returns it.
func awaitFinishedByB(t *testing.T, h *harness, task *schema.Task) *schema.Task {
	t.Helper()
	done := h.awaitTaskStatus(task.TaskID, schema.TaskCompleted, 10*time.Second)
	if got := taskText(t, done); got != "B finished" {
		t.Errorf("completed task answered %q, want B's result", got)
	}
	if !done.CreatedAt.Equal(task.CreatedAt) || done.TTLMs != task.TTLMs {
		t.Errorf("task created %v with TTL %dms, want its entry kept: %v, %dms", done.CreatedAt, done.TTLMs, task.CreatedAt, task.TTLMs)
	}
	return done
}
