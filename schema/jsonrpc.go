package schema

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
)

// Version is the only JSON-RPC version MCP speaks.
const Version = "2.0"

// ID is a JSON-RPC request id exactly as the client sent it: the raw bytes of
// a JSON string or number. Keeping the bytes means a reply carries the id back
// byte for byte (1.0 stays 1.0, "007" stays "007"). The zero ID means "no id".
type ID []byte

// Valid reports whether id is a JSON string or a JSON number, the two forms
// MCP allows (null is not a valid request id).
func (id ID) Valid() bool {
	if len(id) == 0 || !ValidJSON(id) {
		return false
	}
	c := id[0]
	return c == '"' || c == '-' || (c >= '0' && c <= '9')
}

// String returns the id's JSON text.
func (id ID) String() string { return string(id) }

// MarshalJSON writes the id's bytes unchanged, or null for the zero ID.
func (id ID) MarshalJSON() ([]byte, error) {
	if len(id) == 0 {
		return []byte("null"), nil
	}
	return id, nil
}

// UnmarshalJSON keeps the raw bytes; a JSON null becomes the zero ID.
func (id *ID) UnmarshalJSON(b []byte) error {
	if bytes.Equal(b, []byte("null")) {
		*id = nil
		return nil
	}
	*id = append((*id)[:0], b...)
	return nil
}

// Message is one JSON-RPC 2.0 message: a request (Method and ID), a
// notification (Method, no ID) or a response (Result or Error, with ID).
type Message struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      ID              `json:"id,omitempty"`
	Method  string          `json:"method,omitempty"`
	Params  json.RawMessage `json:"params,omitempty"`
	Result  json.RawMessage `json:"result,omitempty"`
	Error   *Error          `json:"error,omitempty"`

	hasID bool
}

// Kind tells what a Message is.
type Kind uint8

// The kinds of JSON-RPC message.
const (
	KindInvalid Kind = iota
	KindRequest
	KindNotification
	KindResponse
)

// Kind classifies m. It assumes m passed [DecodeMessage].
func (m *Message) Kind() Kind {
	switch {
	case m.Method != "" && m.hasID:
		return KindRequest
	case m.Method != "":
		return KindNotification
	case m.hasID && (m.Result != nil || m.Error != nil):
		return KindResponse
	}
	return KindInvalid
}

// ErrBatch is returned by [DecodeMessage] when the body is a JSON array: a
// JSON-RPC batch, which revisions from 2025-06-18 on do not allow.
var ErrBatch = errors.New("jsonrpc: batch requests are not supported")

// DecodeMessage parses one JSON-RPC message. The message's ID, Params and
// Result alias data. It returns a *Error with
// [CodeParseError] when data is not JSON, [ErrBatch] (wrapped in a *Error with
// [CodeInvalidRequest]) for an array, and a *Error with [CodeInvalidRequest]
// when the JSON is not a valid JSON-RPC 2.0 message.
func DecodeMessage(data []byte) (*Message, *Error) {
	data = trimJSONSpace(data)
	if len(data) == 0 {
		return nil, &Error{Code: CodeParseError, Message: "parse error: empty body"}
	}
	if data[0] == '[' {
		if !ValidJSON(data) {
			return nil, &Error{Code: CodeParseError, Message: "parse error: invalid JSON"}
		}
		return nil, &Error{Code: CodeInvalidRequest, Message: ErrBatch.Error(), err: ErrBatch}
	}
	if data[0] != '{' {
		if !ValidJSON(data) {
			return nil, &Error{Code: CodeParseError, Message: "parse error: invalid JSON"}
		}
		return nil, &Error{Code: CodeInvalidRequest, Message: "invalid request: not a JSON object"}
	}
	// Member names match exactly (struct decoding would also accept
	// "JSONRPC" or "Method"). A member of the message repeated is refused:
	// RFC 8259 leaves which value counts to each parser, so a proxy and
	// the gateway could see two different requests.
	if !ValidJSON(data) {
		return nil, &Error{Code: CodeParseError, Message: "parse error: invalid JSON"}
	}
	var (
		version, idRaw, method, params, result, errRaw []byte
		hasVersion, hasResult, hasError, hasMethod     bool
		repeated                                       string
		hasParams, hasID                               bool
	)
	if err := ScanObject(data, func(k, v []byte) {
		var seen *bool
		switch string(k) {
		case "jsonrpc":
			seen = &hasVersion
		case "id":
			seen = &hasID
		case "method":
			seen = &hasMethod
		case "params":
			seen = &hasParams
		case "result":
			seen = &hasResult
		case "error":
			seen = &hasError
		default:
			return
		}
		if *seen && repeated == "" {
			repeated = string(k)
		}
		*seen = true
		switch string(k) {
		case "jsonrpc":
			version, hasVersion = v, true
		case "id":
			idRaw = v
		case "method":
			method, hasMethod = v, true
		case "params":
			params = v
		case "result":
			result, hasResult = v, true
		case "error":
			errRaw, hasError = v, true
		}
	}); err != nil {
		return nil, &Error{Code: CodeParseError, Message: "parse error: " + err.Error()}
	}
	if repeated != "" {
		return nil, invalidRequest("member %q repeated", repeated)
	}
	if !hasVersion || string(version) != `"2.0"` {
		return nil, invalidRequest(`"jsonrpc" must be "2.0"`)
	}
	m := &Message{JSONRPC: Version}
	if hasMethod && string(idRaw) == "null" {
		// JSON-RPC makes a notification a request without an id member;
		// MCP allows no null id.
		return nil, invalidRequest(`"id" must not be null`)
	}
	if idRaw != nil && string(idRaw) != "null" {
		m.ID = ID(idRaw)
		if !m.ID.Valid() {
			return nil, invalidRequest(`"id" must be a string or a number`)
		}
		m.hasID = true
	}
	if hasMethod {
		var ok bool
		if m.Method, ok = methodName(method); !ok {
			return nil, invalidRequest(`"method" must be a string`)
		}
		if m.Method == "" {
			return nil, invalidRequest(`"method" must not be empty`)
		}
		if hasResult || hasError {
			return nil, invalidRequest("a request must not carry result or error")
		}
		if params != nil && string(params) != "null" {
			if params[0] != '{' && params[0] != '[' {
				return nil, invalidRequest(`"params" must be an object or an array`)
			}
			m.Params = params
		}
		return m, nil
	}
	// A response.
	if !m.hasID {
		return nil, invalidRequest(`a message needs "method" or an "id" with "result" or "error"`)
	}
	switch {
	case hasResult && hasError:
		return nil, invalidRequest("a response must not carry both result and error")
	case hasResult:
		m.Result = result
	case hasError:
		var e struct {
			Code    *int            `json:"code"`
			Message *string         `json:"message"`
			Data    json.RawMessage `json:"data"`
		}
		if errRaw[0] != '{' || json.Unmarshal(errRaw, &e) != nil || e.Code == nil || e.Message == nil {
			return nil, invalidRequest(`"error" must be an object with a numeric "code" and a string "message"`)
		}
		m.Error = &Error{Code: *e.Code, Message: *e.Message, Data: e.Data}
	default:
		return nil, invalidRequest("a response needs result or error")
	}
	return m, nil
}

// trimJSONSpace trims the four whitespace characters JSON allows.
func trimJSONSpace(b []byte) []byte {
	isSpace := func(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }
	for len(b) > 0 && isSpace(b[0]) {
		b = b[1:]
	}
	for len(b) > 0 && isSpace(b[len(b)-1]) {
		b = b[:len(b)-1]
	}
	return b
}

func invalidRequest(format string, args ...any) *Error {
	return &Error{Code: CodeInvalidRequest, Message: "invalid request: " + fmt.Sprintf(format, args...)}
}

// AppendResult appends the JSON text of a success response for id to dst.
// result must be valid JSON.
func AppendResult(dst []byte, id ID, result []byte) []byte {
	dst = append(dst, `{"jsonrpc":"2.0","id":`...)
	dst = appendID(dst, id)
	dst = append(dst, `,"result":`...)
	dst = append(dst, result...)
	return append(dst, '}')
}

// AppendResultFunc is [AppendResult] with the result written by fn, which
// appends it to the buffer it is given. It returns nil when fn fails.
func AppendResultFunc(dst []byte, id ID, fn func([]byte) ([]byte, error)) []byte {
	dst = append(dst, `{"jsonrpc":"2.0","id":`...)
	dst = appendID(dst, id)
	return appendMemberFunc(dst, `,"result":`, fn)
}

// appendMemberFunc appends the last member of an object, name (with its
// comma and colon) and the value fn appends, and closes the object; nil if
// fn fails.
func appendMemberFunc(dst []byte, name string, fn func([]byte) ([]byte, error)) []byte {
	dst, err := fn(append(dst, name...))
	if err != nil {
		return nil
	}
	return append(dst, '}')
}

// AppendError appends the JSON text of an error response for id to dst. A
// zero id is written as null, as JSON-RPC requires when the id is unknown.
func AppendError(dst []byte, id ID, e *Error) []byte {
	dst = append(dst, `{"jsonrpc":"2.0","id":`...)
	dst = appendID(dst, id)
	dst = append(dst, `,"error":`...)
	b, err := json.Marshal(e)
	if err != nil { // only a Data that is not valid JSON gets here
		b, _ = json.Marshal(&Error{Code: e.Code, Message: e.Message})
	}
	dst = append(dst, b...)
	return append(dst, '}')
}

// AppendNotification appends a notification with the given method and params
// (valid JSON or nil) to dst.
func AppendNotification(dst []byte, method string, params []byte) []byte {
	dst = append(dst, `{"jsonrpc":"2.0","method":`...)
	dst = appendJSONString(dst, method)
	if len(params) > 0 {
		dst = append(dst, `,"params":`...)
		dst = append(dst, params...)
	}
	return append(dst, '}')
}

// AppendNotificationFunc is [AppendNotification] with the params written by
// fn. It returns nil when fn fails.
func AppendNotificationFunc(dst []byte, method string, fn func([]byte) ([]byte, error)) []byte {
	dst = append(dst, `{"jsonrpc":"2.0","method":`...)
	dst = appendJSONString(dst, method)
	return appendMemberFunc(dst, `,"params":`, fn)
}

func appendID(dst []byte, id ID) []byte {
	if len(id) == 0 {
		return append(dst, "null"...)
	}
	return append(dst, id...)
}

// methodName is jsonString of a request's method member, except that the
// methods most requests name come back as the package's constants, not as
// a new string each.
func methodName(raw []byte) (string, bool) {
	if len(raw) >= 2 && raw[0] == '"' {
		switch string(raw[1 : len(raw)-1]) { // compared without a copy
		case MethodToolsCall:
			return MethodToolsCall, true
		case MethodToolsList:
			return MethodToolsList, true
		case MethodResourcesRead:
			return MethodResourcesRead, true
		case MethodPromptsGet:
			return MethodPromptsGet, true
		case MethodCompletionComplete:
			return MethodCompletionComplete, true
		case MethodPing:
			return MethodPing, true
		}
	}
	return jsonString(raw)
}
