package schema

import (
	"encoding/json"
	"fmt"
)

// JSON-RPC 2.0 error codes.
const (
	CodeParseError     = -32700
	CodeInvalidRequest = -32600
	CodeMethodNotFound = -32601
	CodeInvalidParams  = -32602
	CodeInternalError  = -32603
)

// MCP and mcpstream error codes in the implementation-defined range.
const (
	// CodeResourceNotFound is MCP's "resource not found" (2025 revisions).
	CodeResourceNotFound = -32002
	// CodeRequestTimeout answers a request whose deadline passed before a
	// worker replied (the code MCP SDKs use for a request timeout).
	CodeRequestTimeout = -32001
	// CodeOverloaded answers a request refused by admission control or by a
	// full stream. Its data carries retryAfterMs.
	CodeOverloaded = -32000
)

// Error codes the MCP specification defines from revision 2026-07-28 on.
const (
	// CodeHeaderMismatch: HTTP headers missing, malformed or not matching
	// the body (HTTP 400).
	CodeHeaderMismatch = -32020
	// CodeMissingClientCapability: the request needs a capability the
	// client did not declare; data.requiredCapabilities lists it.
	CodeMissingClientCapability = -32021
	// CodeUnsupportedVersion: the requested revision is not served;
	// data.supported lists the served ones.
	CodeUnsupportedVersion = -32022
)

// Error is a JSON-RPC error object. It is also a Go error.
type Error struct {
	Code    int             `json:"code" msgpack:"c"`
	Message string          `json:"message" msgpack:"m"`
	Data    json.RawMessage `json:"data,omitempty" msgpack:"d,omitempty"`

	err error // the Go error this one stands for, if any (not on the wire)
}

func (e *Error) Error() string {
	return fmt.Sprintf("jsonrpc error %d: %s", e.Code, e.Message)
}

// Unwrap returns the Go error e stands for, such as [ErrBatch].
func (e *Error) Unwrap() error { return e.err }

// Errorf builds an *Error with a formatted message.
func Errorf(code int, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// OverloadedError is the JSON-RPC answer to work refused for lack of room;
// retryAfterMs in its data tells the client when to try again.
func OverloadedError(reason string, retryAfterMs int) *Error {
	data, _ := json.Marshal(struct {
		Reason       string `json:"reason"`
		RetryAfterMs int    `json:"retryAfterMs"`
	}{reason, retryAfterMs})
	return &Error{Code: CodeOverloaded, Message: "server overloaded: " + reason, Data: data}
}
