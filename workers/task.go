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
		id = "task-" + digest([]byte(env.Key))[:32]
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
	// with the task.
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
