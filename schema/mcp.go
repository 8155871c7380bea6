package schema

import (
	"encoding/json"
	"slices"
)

// MCP protocol revisions.
const (
	Revision20241105 = "2024-11-05"
	Revision20250326 = "2025-03-26"
	Revision20250618 = "2025-06-18"
	Revision20251125 = "2025-11-25"
	Revision20260728 = "2026-07-28"
)

// SessionRevisions are the served revisions with sessions (initialize,
// Mcp-Session-Id), newest first: the ones initialize negotiates. 2024-11-05,
// served only over the HTTP+SSE transport, is negotiated there.
var SessionRevisions = []string{Revision20251125, Revision20250618, Revision20250326}

// AllowsBatches reports whether rev lets a client send JSON-RPC batches
// (only 2025-03-26 among the served revisions).
func AllowsBatches(rev string) bool { return rev == Revision20250326 }

// LatestRevision is the newest session revision.
const LatestRevision = Revision20251125

// IsSessionRevision reports whether rev is one of [SessionRevisions].
func IsSessionRevision(rev string) bool { return slices.Contains(SessionRevisions, rev) }

// Negotiate picks the revision to answer an initialize that asked for
// requested: the same one when it is served, otherwise the latest (the
// client then decides whether it can continue).
func Negotiate(requested string) string {
	if IsSessionRevision(requested) {
		return requested
	}
	return LatestRevision
}

// MCP method names.
const (
	MethodInitialize    = "initialize"
	MethodPing          = "ping"
	MethodToolsList     = "tools/list"
	MethodToolsCall     = "tools/call"
	MethodResourcesList = "resources/list"
	MethodResourcesRead = "resources/read"
	MethodPromptsList   = "prompts/list"
	MethodPromptsGet    = "prompts/get"

	NotificationInitialized     = "notifications/initialized"
	NotificationCancelled       = "notifications/cancelled"
	NotificationProgress        = "notifications/progress"
	NotificationMessage         = "notifications/message"
	MethodLoggingSetLevel       = "logging/setLevel"
	NotificationToolListChanged = "notifications/tools/list_changed"
)

// HTTP headers of the Streamable HTTP transport.
const (
	HeaderSessionID       = "Mcp-Session-Id"
	HeaderProtocolVersion = "Mcp-Protocol-Version"
)

// Tool is an MCP tool definition as listed by tools/list.
type Tool struct {
	Name         string          `json:"name"`
	Title        string          `json:"title,omitempty"`
	Description  string          `json:"description,omitempty"`
	InputSchema  json.RawMessage `json:"inputSchema"`
	OutputSchema json.RawMessage `json:"outputSchema,omitempty"`
	Annotations  json.RawMessage `json:"annotations,omitempty"`
	// Execution says how the tool runs: {"taskSupport":"optional"} or
	// "required" for a tool that may or must answer with a task.
	Execution json.RawMessage `json:"execution,omitempty"`
}

// Idempotent reports whether a request for method may run twice with no
// harm: completion/complete (suggestions change nothing), and tools/call of
// a tool (t, nil when unknown) whose annotations set readOnlyHint or
// idempotentHint. Workers store no result for such a request, so a
// redelivery runs it again, and a gateway runs it again when its reply
// may have been lost. It is the one place the rule is decided.
func Idempotent(method string, t *Tool) bool {
	switch method {
	case MethodCompletionComplete:
		return true
	case MethodToolsCall:
		var a map[string]any
		if t == nil || len(t.Annotations) == 0 || json.Unmarshal(t.Annotations, &a) != nil {
			return false
		}
		hint := func(k string) bool { v, _ := a[k].(bool); return v }
		return hint("readOnlyHint") || hint("idempotentHint")
	}
	return false
}

// ToolEntry is a tool's record in the registry KV: the definition and the
// worker group that serves it.
type ToolEntry struct {
	Tool
	Group string `json:"group"`
	// QueueTargetNs, if set, is the longest wait the gateways let a call of
	// this tool expect behind its group's backlog before they refuse it
	// (instead of the group's target).
	QueueTargetNs int64 `json:"queueTargetNs,omitempty"`
	// Version changes whenever the definition changes.
	Version string `json:"version"`
}

// CallToolParams are the params of tools/call.
type CallToolParams struct {
	Name      string          `json:"name"`
	Arguments json.RawMessage `json:"arguments,omitempty"`
	Meta      json.RawMessage `json:"_meta,omitempty"`
}

// Content is one item of a tool result's content: "text" (Text), "image"
// and "audio" (Data, base64, with MimeType), or "resource" (Resource). Only
// the fields of its Type are set.
type Content struct {
	Type     string            `json:"type"`
	Text     string            `json:"text,omitempty"`
	Data     string            `json:"data,omitempty"`
	MimeType string            `json:"mimeType,omitempty"`
	Resource *ResourceContents `json:"resource,omitempty"`
}

// ResourceContents is a resource's contents: Text, or Blob (base64).
type ResourceContents struct {
	URI      string `json:"uri"`
	MimeType string `json:"mimeType,omitempty"`
	Text     string `json:"text,omitempty"`
	Blob     string `json:"blob,omitempty"`
}

// ToolResult is the result of tools/call.
type ToolResult struct {
	Content           []Content `json:"content"`
	StructuredContent any       `json:"structuredContent,omitempty"`
	IsError           bool      `json:"isError,omitempty"`
}

// Implementation names a client or server.
type Implementation struct {
	Name    string `json:"name"`
	Title   string `json:"title,omitempty"`
	Version string `json:"version"`
}

// InitializeParams are the params of initialize.
type InitializeParams struct {
	ProtocolVersion string          `json:"protocolVersion"`
	Capabilities    json.RawMessage `json:"capabilities,omitempty"`
	ClientInfo      Implementation  `json:"clientInfo"`
}

// InitializeResult is the result of initialize.
type InitializeResult struct {
	ProtocolVersion string         `json:"protocolVersion"`
	Capabilities    map[string]any `json:"capabilities"`
	ServerInfo      Implementation `json:"serverInfo"`
	Instructions    string         `json:"instructions,omitempty"`
}

// Prompt is an MCP prompt definition as listed by prompts/list.
type Prompt struct {
	Name        string           `json:"name"`
	Title       string           `json:"title,omitempty"`
	Description string           `json:"description,omitempty"`
	Arguments   []PromptArgument `json:"arguments,omitempty"`
}

// PromptArgument is one argument a prompt takes.
type PromptArgument struct {
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	Required    bool   `json:"required,omitempty"`
}

// PromptEntry is a prompt's record in the registry KV.
type PromptEntry struct {
	Prompt
	Group   string `json:"group"`
	Version string `json:"version"`
}

// PromptMessage is one message of a prompt.
type PromptMessage struct {
	Role    string  `json:"role"`
	Content Content `json:"content"`
}

// PromptResult is the result of prompts/get.
type PromptResult struct {
	Description string          `json:"description,omitempty"`
	Messages    []PromptMessage `json:"messages"`
}
