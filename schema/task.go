package schema

import (
	"encoding/json"
	"fmt"
	"time"
)

// The tasks extension (io.modelcontextprotocol/tasks) on revision 2026-07-28:
// a tool may answer a tools/call with a task handle instead of its result;
// the client polls tasks/get, answers input requests with tasks/update and
// may tasks/cancel. Task state lives in the task bucket.

// ExtensionTasks names the tasks extension in capabilities.extensions.
const ExtensionTasks = "io.modelcontextprotocol/tasks"

// Methods of the tasks extension.
const (
	MethodTasksGet    = "tasks/get"
	MethodTasksUpdate = "tasks/update"
	MethodTasksCancel = "tasks/cancel"
)

// Task statuses; the last three are terminal.
const (
	TaskWorking       = "working"
	TaskInputRequired = "input_required"
	TaskCompleted     = "completed"
	TaskFailed        = "failed"
	TaskCancelled     = "cancelled"
)

// Task support a tool declares (Tool.Execution.TaskSupport).
const (
	TaskSupportOptional = "optional"
	TaskSupportRequired = "required"
)

// TaskSupport is the task support the tool declares in its execution
// member: [TaskSupportOptional], [TaskSupportRequired], or "" for none (or
// a malformed member). It is the one place the member is read.
func (t *Tool) TaskSupport() string {
	var e struct {
		TaskSupport string `json:"taskSupport"`
	}
	if t == nil || len(t.Execution) == 0 || json.Unmarshal(t.Execution, &e) != nil {
		return ""
	}
	return e.TaskSupport
}

// TaskExecution is the execution member of a tool with task support
// support (nil for ""). It returns an error for a value that is neither
// [TaskSupportOptional] nor [TaskSupportRequired].
func TaskExecution(support string) (json.RawMessage, error) {
	switch support {
	case "":
		return nil, nil
	case TaskSupportOptional, TaskSupportRequired:
		return json.Marshal(map[string]string{"taskSupport": support})
	}
	return nil, fmt.Errorf("task support %q is neither %s nor %s", support, TaskSupportOptional, TaskSupportRequired)
}

// TaskPollIntervalMs is the polling interval suggested to clients.
const TaskPollIntervalMs = 500

// Task is a task's record in the task bucket. The first fields are what
// clients see (tasks/get); the rest is what mcpstream needs to run the
// task's request again once its input arrives.
type Task struct {
	TaskID        string          `json:"taskId"`
	Status        string          `json:"status"`
	StatusMessage string          `json:"statusMessage,omitempty"`
	CreatedAt     time.Time       `json:"createdAt"`
	LastUpdatedAt time.Time       `json:"lastUpdatedAt"`
	TTLMs         int64           `json:"ttlMs"`
	Result        json.RawMessage `json:"result,omitempty"`
	Error         *Error          `json:"error,omitempty"`
	InputRequests json.RawMessage `json:"inputRequests,omitempty"`

	Group      string                     `json:"group"`
	Tool       string                     `json:"tool"`
	Args       json.RawMessage            `json:"args,omitempty"`
	Principal  string                     `json:"principal,omitempty"`
	Revision   string                     `json:"revision"`
	ClientCaps json.RawMessage            `json:"clientCaps,omitempty"`
	Answers    map[string]json.RawMessage `json:"answers,omitempty"`
}

// Terminal reports whether the task's status can no longer change.
func (t *Task) Terminal() bool {
	return t.Status == TaskCompleted || t.Status == TaskFailed || t.Status == TaskCancelled
}

// View is what a client sees of t: the fields of a DetailedTask (without
// resultType, which the gateway adds).
func (t *Task) View() ([]byte, error) {
	return json.Marshal(struct {
		TaskID         string          `json:"taskId"`
		Status         string          `json:"status"`
		StatusMessage  string          `json:"statusMessage,omitempty"`
		CreatedAt      string          `json:"createdAt"`
		LastUpdatedAt  string          `json:"lastUpdatedAt"`
		TTLMs          int64           `json:"ttlMs"`
		PollIntervalMs int64           `json:"pollIntervalMs"`
		Result         json.RawMessage `json:"result,omitempty"`
		Error          *Error          `json:"error,omitempty"`
		InputRequests  json.RawMessage `json:"inputRequests,omitempty"`
	}{t.TaskID, t.Status, t.StatusMessage, t.CreatedAt.UTC().Format(time.RFC3339Nano), t.LastUpdatedAt.UTC().Format(time.RFC3339Nano),
		t.TTLMs, TaskPollIntervalMs, t.Result, t.Error, t.InputRequests})
}

// CreateTaskResult is the answer to a request that became a task: the
// task's view with resultType "task".
func (t *Task) CreateTaskResult() ([]byte, error) {
	v, err := t.View()
	if err != nil {
		return nil, err
	}
	return append([]byte(`{"resultType":"task",`), v[1:]...), nil
}
