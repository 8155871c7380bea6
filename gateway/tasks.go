package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mcpstream/mcpstream/schema"
	"github.com/mcpstream/mcpstream/streams"
)

// The tasks extension (revision 2026-07-28): a worker turns a tools/call
// into a task (workers' Call.Detach) and keeps its state in the task
// bucket; any gateway answers tasks/get from there, and tasks/update and
// tasks/cancel change it there. When the last open input request of a task
// is answered, the gateway sends the task's request to its group again,
// with every answer, and the handler runs again from the start.

// missingTasksExtension is the -32021 error for a client without the
// tasks extension.
func missingTasksExtension(what string) *schema.Error {
	data, _ := json.Marshal(map[string]any{"requiredCapabilities": map[string]any{
		"extensions": map[string]any{schema.ExtensionTasks: map[string]any{}}}})
	return &schema.Error{Code: schema.CodeMissingClientCapability,
		Message: what + " needs the " + schema.ExtensionTasks + " extension in the client's capabilities", Data: data}
}

// taskRequest serves tasks/get, tasks/update and tasks/cancel.
func (g *Gateway) taskRequest(ctx context.Context, x *exchange) {
	msg := x.msg
	if !schema.HasExtension(x.sess.capabilities(), schema.ExtensionTasks) {
		x.out.fail(http.StatusBadRequest, missingTasksExtension(msg.Method))
		return
	}
	var p struct {
		TaskID         string                     `json:"taskId"`
		InputResponses map[string]json.RawMessage `json:"inputResponses"`
	}
	if json.Unmarshal(msg.Params, &p) != nil || p.TaskID == "" {
		x.out.fail(0, schema.Errorf(schema.CodeInvalidParams, "%s needs params with a taskId", msg.Method))
		return
	}
	principal := x.sess.Principal
	ctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	var result []byte
	var rpcErr *schema.Error
	switch msg.Method {
	case schema.MethodTasksGet:
		var t *schema.Task
		if t, _, rpcErr = g.loadTask(ctx, p.TaskID, principal); rpcErr == nil {
			if result, _ = t.View(); result == nil {
				rpcErr = schema.Errorf(schema.CodeInternalError, "encoding task")
			}
		}
	case schema.MethodTasksUpdate:
		var t *schema.Task
		t, rpcErr = g.changeTask(ctx, p.TaskID, principal, func(t *schema.Task) (bool, error) {
			return g.answerTask(t, p.InputResponses)
		})
		if t != nil && t.Status == schema.TaskWorking {
			// Every question answered: run the request again with the
			// answers.
			if err := g.resumeTask(ctx, t); err != nil {
				g.log.WarnContext(ctx, "resuming task", "task", t.TaskID, "err", err)
			}
		}
		result = []byte(`{}`)
	case schema.MethodTasksCancel:
		_, rpcErr = g.changeTask(ctx, p.TaskID, principal, func(t *schema.Task) (bool, error) {
			if t.Terminal() {
				return false, nil // cancelling an ended task is acknowledged, and changes nothing
			}
			t.Status, t.InputRequests = schema.TaskCancelled, nil
			return true, nil
		})
		if rpcErr == nil {
			g.cancelTask(p.TaskID)
		}
		result = []byte(`{}`)
	}
	if rpcErr != nil {
		x.out.fail(0, rpcErr)
		return
	}
	x.out.result(jsonResult(result))
}

// loadTask reads a task; one that does not exist, has expired or belongs
// to another principal is -32602.
func (g *Gateway) loadTask(ctx context.Context, id, principal string) (*schema.Task, uint64, *schema.Error) {
	e, err := g.tasks.Get(ctx, id)
	if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrInvalidKey) {
		return nil, 0, schema.Errorf(schema.CodeInvalidParams, "unknown task %q", id)
	}
	if err != nil {
		g.log.WarnContext(ctx, "reading task", "task", id, "err", err)
		return nil, 0, schema.Errorf(schema.CodeInternalError, "task store unavailable")
	}
	var t schema.Task
	if err := json.Unmarshal(e.Value(), &t); err != nil || t.Principal != principal {
		return nil, 0, schema.Errorf(schema.CodeInvalidParams, "unknown task %q", id)
	}
	return &t, e.Revision(), nil
}

// changeTask applies change to a task and stores it if change says so,
// retrying when the task changed meanwhile (a worker finishing it). It
// returns the task stored, or nil when change changed nothing.
func (g *Gateway) changeTask(ctx context.Context, id, principal string, change func(*schema.Task) (bool, error)) (*schema.Task, *schema.Error) {
	for attempt := 0; attempt < 8; attempt++ {
		t, rev, rpcErr := g.loadTask(ctx, id, principal)
		if rpcErr != nil {
			return nil, rpcErr
		}
		changed, err := change(t)
		if err != nil {
			return nil, schema.Errorf(schema.CodeInternalError, "%v", err)
		}
		if !changed {
			return nil, nil
		}
		t.LastUpdatedAt = time.Now().UTC()
		val, err := json.Marshal(t)
		if err != nil {
			return nil, schema.Errorf(schema.CodeInternalError, "encoding task")
		}
		if _, err = g.tasks.Update(ctx, id, val, rev); err == nil {
			return t, nil
		}
		if !errors.Is(err, jetstream.ErrKeyExists) {
			g.log.WarnContext(ctx, "storing task", "task", id, "err", err)
			return nil, schema.Errorf(schema.CodeInternalError, "task store unavailable")
		}
	}
	return nil, schema.Errorf(schema.CodeInternalError, "task %q kept changing", id)
}

// answerTask takes a tasks/update's answers into t: answers to open input
// requests are kept (others ignored); once none is open the task works
// again. It reports whether t changed.
func (g *Gateway) answerTask(t *schema.Task, responses map[string]json.RawMessage) (bool, error) {
	if t.Status != schema.TaskInputRequired || len(responses) == 0 {
		return false, nil
	}
	var open map[string]json.RawMessage
	if err := json.Unmarshal(t.InputRequests, &open); err != nil {
		return false, err
	}
	changed := false
	for k, v := range responses {
		if _, asked := open[k]; asked && len(v) > 0 && v[0] == '{' {
			if t.Answers == nil {
				t.Answers = map[string]json.RawMessage{}
			}
			t.Answers[k] = v
			delete(open, k)
			changed = true
		}
	}
	if !changed {
		return false, nil
	}
	if len(open) > 0 {
		t.InputRequests, _ = json.Marshal(open)
		return true, nil
	}
	t.Status, t.InputRequests = schema.TaskWorking, nil
	return true, nil
}

// resumeTask sends a task's request to its group again, with its answers.
func (g *Gateway) resumeTask(ctx context.Context, t *schema.Task) error {
	key, _ := g.nextKey()
	env := &schema.Envelope{Key: key, Method: schema.MethodToolsCall, Name: t.Tool, Principal: t.Principal,
		Revision: t.Revision, Deadline: t.CreatedAt.Add(time.Duration(t.TTLMs) * time.Millisecond).UnixNano(),
		Attempt: 1, ReplyTo: g.replyTo, TaskID: t.TaskID}
	var err error
	if len(t.Args) > 0 {
		if env.Params, err = schema.JSONToMsgpack(nil, t.Args); err != nil {
			return err
		}
	}
	if len(t.ClientCaps) > 0 {
		if env.ClientCaps, err = schema.JSONToMsgpack(nil, t.ClientCaps); err != nil {
			return err
		}
	}
	answers, _ := json.Marshal(t.Answers)
	if env.InputResponses, err = schema.JSONToMsgpack(nil, answers); err != nil {
		return err
	}
	data, err := env.Marshal()
	if err != nil {
		return err
	}
	m := nats.NewMsg(streams.RequestSubject(t.Group, streams.Partition(t.TaskID, g.topo.Partitions)))
	m.Data = data
	m.Header.Set(jetstream.MsgIDHeader, env.Key)
	_, err = g.js.PublishMsg(ctx, m)
	return err
}

// cancelTask tells the worker running a task, if one is, to stop.
func (g *Gateway) cancelTask(id string) {
	g.publishCancel(schema.Cancel{Session: schema.CancelTask, RequestID: id, Reason: "task cancelled by the client"})
}
