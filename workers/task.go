package workers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/attribute"

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
		created, err := t.CreateTaskResult()
		if err == nil {
			var mp []byte
			if mp, err = schema.JSONToMsgpack(nil, created); err == nil {
				err = r.publish(env, &schema.Reply{Key: env.Key, Result: mp})
			}
		}
		if err != nil {
			r.log.Warn("answering with the task handle", "task", id, "err", err)
		}
	}
	tctx, cancel := context.WithCancelCause(context.WithoutCancel(ctx))
	// The task outlives the call's deadline, and its envelope is kept in
	// progress as long, but not the group's drain deadline: its envelope
	// then goes back to the stream, and the replica that takes it goes on
	// with the task (see resumable), the call's deadline passed or not.
	stopDrain := context.AfterFunc(r.base, func() { cancel(context.Cause(r.base)) })
	deadline := r.taskDeadline(env)
	tctx, stop := context.WithDeadline(tctx, deadline)
	if call.held != nil {
		call.held.holdUntil(deadline)
	}
	key := schema.CancelTask + "\x00" + id
	r.running.Store(key, cancel)
	call.task = &taskRun{id: id, cancel: func(err error) { r.running.Delete(key); stopDrain(); stop(); cancel(err) }}
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

// resumable returns the task that env's call was detached into, for an
// envelope whose deadline has passed, when the task still works: its run
// was cut short (its replica died, or drained) and goes on with this
// delivery. It returns nil when there is no such task, or it no longer
// works: it ended (a completed task does not run again), it waits for the
// client's input (which comes in an envelope of its own), or it outlived
// its lifetime. Only a call of a tool with task support, in the stateless
// revision, can have been detached: no other envelope costs a read of the
// task bucket. The error is the bucket's.
func (r *runner) resumable(env *schema.Envelope) (*schema.Task, error) {
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
	if t.Status != schema.TaskWorking || !time.Now().Before(taskEnd(&t)) {
		return nil, nil
	}
	return &t, nil
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
		if _, err = r.tasks.Update(ctx, t.TaskID, val, e.Revision()); err == nil {
			return nil
		}
		// Changed meanwhile (a cancel): look again.
	}
	return fmt.Errorf("task %s kept changing: outcome not recorded", id)
}
