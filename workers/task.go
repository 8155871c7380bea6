package workers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/mcpstream/mcpstream/schema"
)

// taskRun is a call running as a task.
type taskRun struct {
	id     string
	cancel context.CancelCauseFunc
}

// detach implements Call.Detach for env's call.
func (r *runner) detach(ctx context.Context, env *schema.Envelope, call *Call, support string) (context.Context, error) {
	if call.task != nil {
		return ctx, nil
	}
	id := env.TaskID
	if id == "" {
		if support == "" || !schema.IsStateless(env.Revision) || !call.ClientCanExtension(schema.ExtensionTasks) || r.tasks == nil {
			return ctx, nil
		}
		id = taskID(env.Key)
		if call.span != nil {
			call.span.SetAttributes(attribute.String("mcp.task.id", id))
		}
		args, _ := schema.MsgpackToJSON(nil, env.Params)
		now := time.Now().UTC()
		t := &schema.Task{TaskID: id, Status: schema.TaskWorking, CreatedAt: now, LastUpdatedAt: now,
			TTLMs: r.topo.TaskTTL.Milliseconds(), Group: r.g.name, Tool: env.Name, Args: args,
			Principal: env.Principal, Revision: env.Revision, ClientCaps: call.clientCapabilities()}
		if call.inputs != nil && len(call.inputs.used) > 0 {
			t.Answers = call.inputs.used
		}
		val, err := json.Marshal(t)
		if err != nil {
			return nil, fmt.Errorf("encoding task %s: %w", id, err)
		}
		// Durable before the client hears of it. A redelivered envelope
		// finds its task already there and goes on with it.
		if _, err := r.tasks.Create(ctx, id, val); err != nil && !errors.Is(err, jetstream.ErrKeyExists) {
			return nil, fmt.Errorf("storing task %s: %w", id, err)
		}
		r.answerWithHandle(ctx, env, t)
	}
	tctx, cancel := context.WithCancelCause(context.WithoutCancel(ctx))
	// The task outlives the call's deadline, and its envelope is kept in
	// progress as long, but not the group's drain deadline: its envelope
	// then goes back to the stream, and the replica that takes it goes on
	// with the task (see taskAgain), the call's deadline passed or not.
	stopDrain := context.AfterFunc(r.base, func() { cancel(context.Cause(r.base)) })
	deadline := r.taskDeadline(env)
	tctx, stop := context.WithDeadline(tctx, deadline)
	if call.held != nil {
		call.held.holdUntil(deadline)
	}
	key := cancelID{schema.CancelTask, id}
	r.taskRuns.add(key, cancel)
	call.task = &taskRun{id: id, cancel: func(err error) { r.taskRuns.remove(key); stopDrain(); stop(); cancel(err) }}
	return tctx, nil
}

// taskDeadline is when a task's work must end: its envelope's deadline for
// a task run again, else the task bucket's lifetime from now.
func (r *runner) taskDeadline(env *schema.Envelope) time.Time {
	if env.TaskID != "" && env.Deadline != 0 {
		return env.DeadlineTime()
	}
	return time.Now().Add(r.topo.TaskTTL)
}

// taskID is the id of the task that the call of request key is detached
// into: the same on every delivery, so that a delivery again finds it.
func taskID(key string) string { return "task-" + digest([]byte(key))[:32] }

// answerWithHandle answers the gateway waiting for env's call with the
// handle of task t, the call's answer once it is detached, logging a
// failure.
func (r *runner) answerWithHandle(ctx context.Context, env *schema.Envelope, t *schema.Task) {
	created, err := t.CreateTaskResult()
	if err == nil {
		var mp []byte
		if mp, err = schema.JSONToMsgpack(nil, created); err == nil {
			err = r.publish(env, &schema.Reply{Key: env.Key, Result: mp})
		}
	}
	if err != nil {
		r.log.WarnContext(ctx, "answering with the task handle", "key", env.Key, "task", t.TaskID, "err", err)
	}
}

// taskAgain handles what a delivery of env that may find its call already
// detached into a task does about that task: a delivery past the call's
// deadline, or one again (the server's redelivery, attempt, or the
// gateway's publish again, env.Attempt) before it. A task that still works
// (goesOn) had its run cut short (its replica died, or drained): env is
// made a run of it (resumeAs), to go on under the task's deadline, its
// entry kept, and resumed reports it. A task that ended, or waits for the
// client's input (which comes in an envelope of its own), is not run
// again: a completed task's handler, which may not be idempotent, would
// repeat its work, and its outcome is recorded already. An expired
// envelope is dropped otherwise (the gateway no longer waits). One before
// its deadline whose call was detached answers the gateway, which still
// waits for the call, with the task's handle, the answer the first run
// sent (the client polls the task for its outcome). handled reports that
// msg was dealt with (dropped, acknowledged, handed back, or its
// redelivery delayed): process has nothing more to do.
func (r *runner) taskAgain(ctx context.Context, span trace.Span, msg jetstream.Msg, env *schema.Envelope, attempt int) (handled, resumed bool) {
	expired := env.Expired(time.Now())
	if !expired && attempt <= 1 && env.Attempt <= 1 {
		return false, false // its first delivery: not detached yet
	}
	task, err := r.detachedTask(env)
	if err != nil {
		if r.aborted() {
			r.handBack(msg, env.Key, "drain deadline passed reading the task")
			return true, false
		}
		if attempt < r.topo.MaxDeliver {
			// The bucket cannot say (its leader is being elected): ask
			// again later rather than lose the task, or run it again.
			// The last delivery goes on as if there were no task.
			r.repeats.Warn(ctx, r.log, "reading task", "reading the task of a call delivered again, redelivery delayed", "key", env.Key, "err", err)
			_ = msg.NakWithDelay(time.Second)
			return true, false
		}
	}
	switch {
	case expired && (task == nil || !goesOn(task)):
		event(span, "expired: the gateway no longer waits")
		r.expired.Add(1)
		r.metrics.delivered(deliveredExpired)
		r.log.DebugContext(ctx, "dropping expired envelope", "key", env.Key, "method", env.Method)
		_ = msg.Term()
		return true, false
	case expired:
		event(span, "expired call of a working task: the task goes on")
		r.log.DebugContext(ctx, "going on with the task of an expired envelope", "key", env.Key, "task", task.TaskID)
		resumeAs(env, task)
		return false, true
	case task == nil:
		return false, false
	}
	r.answerWithHandle(ctx, env, task)
	if !goesOn(task) {
		event(span, "not run: its task is "+task.Status)
		r.metrics.delivered(deliveredDuplicate)
		r.log.DebugContext(ctx, "not running again a call whose task is "+task.Status, "key", env.Key, "task", task.TaskID)
		_ = msg.Ack()
		return true, false
	}
	event(span, "call of a working task delivered again: the task goes on")
	r.log.DebugContext(ctx, "going on with the task of an envelope delivered again", "key", env.Key, "task", task.TaskID)
	resumeAs(env, task)
	return false, true
}

// detachedTask returns the task that env's call was detached into, in
// whatever state, or nil when there is none. Only a call of a tool with
// task support, in the stateless revision, can have been detached (and a
// run of a task is one already): no other envelope costs a read of the
// task bucket. The error is the bucket's.
func (r *runner) detachedTask(env *schema.Envelope) (*schema.Task, error) {
	if env.TaskID != "" || env.Method != schema.MethodToolsCall || r.tasks == nil || !schema.IsStateless(env.Revision) {
		return nil, nil
	}
	if t := r.g.tool(env.Name); t == nil || t.taskSupport == "" {
		return nil, nil
	}
	id := taskID(env.Key)
	ctx, cancel := context.WithTimeout(r.base, 10*time.Second)
	defer cancel()
	e, err := r.tasks.Get(ctx, id)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading task %s: %w", id, err)
	}
	var t schema.Task
	if err := json.Unmarshal(e.Value(), &t); err != nil {
		return nil, fmt.Errorf("decoding task %s: %w", id, err)
	}
	return &t, nil
}

// goesOn reports whether task t still works, within its lifetime: a run
// of it cut short goes on with a delivery again of its call.
func goesOn(t *schema.Task) bool {
	return t.Status == schema.TaskWorking && time.Now().Before(taskEnd(t))
}

// resumeAs makes env, whose call was detached into task t, a run of t, as
// the gateway's resumeTask makes one: with the task's id, its deadline, and
// the answers the run had used when it detached (for the questions it asked
// before; the call's requestState may have expired since). Its handler
// then runs again from the start, and Call.Detach finds the task, which
// keeps its entry.
func resumeAs(env *schema.Envelope, t *schema.Task) {
	env.TaskID, env.Deadline = t.TaskID, taskEnd(t).UnixNano()
	env.InputResponses, env.RequestState = nil, ""
	if len(t.Answers) > 0 {
		if answers, err := json.Marshal(t.Answers); err == nil {
			env.InputResponses, _ = schema.JSONToMsgpack(nil, answers)
		}
	}
}

// taskEnd is when task t's lifetime in the task bucket ends.
func taskEnd(t *schema.Task) time.Time {
	return t.CreatedAt.Add(time.Duration(t.TTLMs) * time.Millisecond)
}

// finishTask records the outcome of a task's run: the questions it asked
// (input_required, with the answers it used kept for the next run), its
// protocol error (failed), or its result (completed, a tool error
// included). A task already ended (cancelled) is left as it is. It returns
// the task bucket's error when the outcome could not be recorded, the
// drain deadline included.
func (r *runner) finishTask(env *schema.Envelope, call *Call, rep *schema.Reply) error {
	id := env.TaskID
	var in *inputs
	if call != nil {
		in = call.inputs
		if call.task != nil {
			id = call.task.id
			defer call.task.cancel(nil)
		}
	}
	ctx, cancel := context.WithTimeout(r.base, 10*time.Second)
	defer cancel()
	for attempt := 0; attempt < 5; attempt++ {
		e, err := r.tasks.Get(ctx, id)
		if err != nil {
			return fmt.Errorf("reading task %s: %w", id, err)
		}
		var t schema.Task
		if err := json.Unmarshal(e.Value(), &t); err != nil {
			return fmt.Errorf("decoding task %s: %w", id, err)
		}
		if t.Terminal() {
			return nil
		}
		t.LastUpdatedAt = time.Now().UTC()
		t.InputRequests, t.Result, t.Error = nil, nil, nil
		switch {
		case in != nil && len(in.asked) > 0:
			t.Status = schema.TaskInputRequired
			t.InputRequests = askedJSON(in.asked)
			if t.Answers == nil {
				t.Answers = map[string]json.RawMessage{}
			}
			for k, v := range in.used {
				t.Answers[k] = v
			}
		case rep.Error != nil:
			t.Status, t.Error = schema.TaskFailed, rep.Error
		default:
			t.Status = schema.TaskCompleted
			if t.Result, err = schema.MsgpackToJSON(nil, rep.Result); err != nil {
				t.Status, t.Result, t.Error = schema.TaskFailed, nil, schema.Errorf(schema.CodeInternalError, "malformed result")
			}
		}
		val, err := json.Marshal(&t)
		if err != nil {
			return fmt.Errorf("encoding task %s: %w", id, err)
		}
		if e := r.tooLarge(len(val)); e != nil {
			t.Status, t.InputRequests, t.Result, t.Error = schema.TaskFailed, nil, nil, e
			if val, err = json.Marshal(&t); err != nil {
				return fmt.Errorf("encoding task %s: %w", id, err)
			}
		}
		if _, err = r.tasks.Update(ctx, t.TaskID, val, e.Revision()); err == nil {
			return nil
		}
		// Changed meanwhile (a cancel): look again.
	}
	return fmt.Errorf("task %s kept changing: outcome not recorded", id)
}
