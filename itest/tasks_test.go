package itest

import (
	"encoding/json"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mcpstream/mcpstream/internal/testkit"
)

// statelessCall posts a 2026-07-28 request with the tasks extension
// declared, with the headers the revision requires, and decodes its result.
func statelessCall(t *testing.T, url, method, name, params string) map[string]json.RawMessage {
	t.Helper()
	const meta = `"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28",` +
		`"io.modelcontextprotocol/clientCapabilities":{"elicitation":{},"extensions":{"io.modelcontextprotocol/tasks":{}}}}`
	body := `{"jsonrpc":"2.0","id":1,"method":"` + method + `","params":{` + params + `,` + meta + `}}`
	r := post(t, url, body, "MCP-Protocol-Version", "2026-07-28", "Mcp-Method", method, "Mcp-Name", name)
	var resp struct {
		Result map[string]json.RawMessage `json:"result"`
		Error  json.RawMessage            `json:"error"`
	}
	if err := json.Unmarshal(r.body, &resp); err != nil || resp.Result == nil || r.status != http.StatusOK {
		t.Fatalf("%s %s: status %d: %s", method, name, r.status, r.body)
	}
	return resp.Result
}

// awaitTask polls tasks/get at url (as the extension has clients do) until
// the task has status.
func awaitTask(t *testing.T, url, id, status string) map[string]json.RawMessage {
	t.Helper()
	var got map[string]json.RawMessage
	testkit.Eventually(t, "task "+id+" with status "+status, 30*time.Second, func() bool {
		got = statelessCall(t, url, "tasks/get", id, `"taskId":"`+id+`"`)
		return string(got["status"]) == `"`+status+`"`
	})
	return got
}

// TestTasksOutliveGatewayAndWorker: a task started through gateway A is
// followed and answered through gateway B, another process, because its
// state lives in the task bucket; a worker killed while running a task is
// replaced, and the redelivered envelope goes on with the same task.
func TestTasksOutliveGatewayAndWorker(t *testing.T) {
	dev, endpointA, natsURL := startDev(t, true, "--examples", "0", "--ack-wait", "2s")
	a := start(t, "worker-a", "worker", "--nats", natsURL, "--examples", "conformance", "--log-level", "warn")
	a.waitLine(workerRE, 30*time.Second)
	gwB := start(t, "gateway-b", "gateway", "--nats", natsURL, "--addr", "127.0.0.1:0", "--log-level", "warn")
	endpointB := gwB.waitLine(endpointRE, 30*time.Second)[1]

	created := statelessCall(t, endpointA, "tools/call", "slow_compute", `"name":"slow_compute","arguments":{"seconds":3,"label":"survivor"}`)
	var id string
	if json.Unmarshal(created["taskId"], &id) != nil || string(created["resultType"]) != `"task"` || string(created["status"]) != `"working"` {
		t.Fatalf("tools/call answered %v, want a working task", created)
	}
	if _, has := created["requestState"]; has {
		t.Error("a task handle carries a requestState")
	}
	awaitTask(t, endpointB, id, "working")
	if code := a.signal(syscall.SIGKILL, 10*time.Second); code == 0 {
		t.Fatal("worker A exited cleanly after SIGKILL")
	}
	b := start(t, "worker-b", "worker", "--nats", natsURL, "--examples", "conformance", "--log-level", "warn")
	b.waitLine(workerRE, 30*time.Second)
	done := awaitTask(t, endpointB, id, "completed")
	if !strings.Contains(string(done["result"]), "survivor: computed in 3s") || string(done["resultType"]) != `"complete"` {
		t.Fatalf("completed task: %v", done)
	}

	// A task that asks: the question shows on B, the answer goes in on B,
	// and the worker runs the handler again with it.
	asked := statelessCall(t, endpointA, "tools/call", "confirm_delete", `"name":"confirm_delete","arguments":{"filename":"a.txt"}`)
	_ = json.Unmarshal(asked["taskId"], &id)
	waiting := awaitTask(t, endpointB, id, "input_required")
	var requests map[string]struct {
		Method string `json:"method"`
	}
	if json.Unmarshal(waiting["inputRequests"], &requests) != nil || requests["confirm"].Method != "elicitation/create" {
		t.Fatalf("input_required task: %v", waiting)
	}
	ack := statelessCall(t, endpointB, "tasks/update", id, `"taskId":"`+id+`","inputResponses":{"confirm":{"action":"accept","content":{"ok":true}}}`)
	if len(ack) != 2 || string(ack["resultType"]) != `"complete"` {
		t.Errorf("tasks/update ack %v, want resultType and _meta only", ack)
	}
	if done := awaitTask(t, endpointB, id, "completed"); !strings.Contains(string(done["result"]), "a.txt deleted") {
		t.Fatalf("answered task: %v", done)
	}

	// Cancelled while it works: the worker stops, and the task stays
	// cancelled; cancelling again is acknowledged.
	long := statelessCall(t, endpointA, "tools/call", "slow_compute", `"name":"slow_compute","arguments":{"seconds":60}`)
	_ = json.Unmarshal(long["taskId"], &id)
	for range 2 {
		statelessCall(t, endpointB, "tasks/cancel", id, `"taskId":"`+id+`"`)
	}
	awaitTask(t, endpointA, id, "cancelled")
	b.stop()
	gwB.stop()
	dev.stop()
}
