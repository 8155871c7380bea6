package schema

import (
	"encoding/base64"
	"encoding/json"
	"strconv"
	"strings"
)

// The stateless revision (2026-07-28) and later carry the protocol version
// and the client's capabilities in every request's _meta, and mirror the
// method and target into HTTP headers.

// StatelessRevisions are the served revisions without sessions, newest first.
var StatelessRevisions = []string{Revision20260728}

// IsStateless reports whether rev is a served revision without sessions.
func IsStateless(rev string) bool { return rev == Revision20260728 }

// SupportedVersions is every served revision, stateless ones first: the list that
// server/discover and UnsupportedProtocolVersion errors give.
func SupportedVersions() []string {
	return append(append([]string{}, StatelessRevisions...), SessionRevisions...)
}

// Methods and notifications of the stateless revision.
const (
	MethodServerDiscover            = "server/discover"
	MethodSubscriptionsListen       = "subscriptions/listen"
	NotificationSubscriptionsAck    = "notifications/subscriptions/acknowledged"
	NotificationPromptListChanged   = "notifications/prompts/list_changed"
	NotificationResourceListChanged = "notifications/resources/list_changed"
)

// Request headers of the stateless revision (besides HeaderProtocolVersion).
const (
	HeaderMethod      = "Mcp-Method"
	HeaderName        = "Mcp-Name"
	HeaderParamPrefix = "Mcp-Param-"
)

// NameMember is the params member a method's Mcp-Name header mirrors
// ("name", "uri" or "taskId"), or "" for a method without one.
func NameMember(method string) string {
	switch method {
	case MethodToolsCall, MethodPromptsGet:
		return "name"
	case MethodResourcesRead:
		return "uri"
	case MethodTasksGet, MethodTasksUpdate, MethodTasksCancel:
		return "taskId"
	}
	return ""
}

// _meta keys of the stateless revision.
const (
	MetaProtocolVersion    = "io.modelcontextprotocol/protocolVersion"
	MetaClientInfo         = "io.modelcontextprotocol/clientInfo"
	MetaClientCapabilities = "io.modelcontextprotocol/clientCapabilities"
	MetaLogLevel           = "io.modelcontextprotocol/logLevel"
	MetaSubscriptionID     = "io.modelcontextprotocol/subscriptionId"
	MetaServerInfo         = "io.modelcontextprotocol/serverInfo"
)

// RequestMeta is what a request says about itself in params._meta: a
// stateless request its revision, client and log level; any request its
// progress token and the W3C trace context and baggage its client
// injected (traceparent, tracestate, baggage: unprefixed keys, as MCP
// clients write them, SEP-414).
type RequestMeta struct {
	ProtocolVersion    string
	ClientCapabilities json.RawMessage
	ClientInfo         json.RawMessage
	LogLevel           string
	ProgressToken      json.RawMessage
	TraceParent        string
	TraceState         string
	Baggage            string
}

// Trace is the carrier of the trace context and the baggage the client
// sent in _meta.
func (m *RequestMeta) Trace() TraceCarrier {
	return TraceCarrier{Parent: &m.TraceParent, State: &m.TraceState, Baggage: &m.Baggage}
}

// ParseRequestMeta reads the _meta member of params (raw JSON, may be nil).
// It returns ok false when params or _meta is not an object.
func ParseRequestMeta(params []byte) (m RequestMeta, ok bool) {
	if len(params) == 0 {
		return m, true
	}
	var meta []byte
	if ScanObject(params, func(k, v []byte) {
		if string(k) == "_meta" {
			meta = v
		}
	}) != nil {
		return m, false
	}
	if meta == nil {
		return m, true
	}
	if len(meta) == 0 || meta[0] != '{' {
		return m, false
	}
	_ = ScanObject(meta, func(k, v []byte) {
		switch string(k) {
		case MetaProtocolVersion:
			unmarshalString(v, &m.ProtocolVersion)
		case MetaClientCapabilities:
			m.ClientCapabilities = v
		case MetaClientInfo:
			m.ClientInfo = v
		case MetaLogLevel:
			unmarshalString(v, &m.LogLevel)
		case "progressToken":
			m.ProgressToken = v
		case "traceparent":
			unmarshalString(v, &m.TraceParent)
		case "tracestate":
			unmarshalString(v, &m.TraceState)
		case "baggage":
			unmarshalString(v, &m.Baggage)
		}
	})
	return m, true
}

// unmarshalString is json.Unmarshal(v, dst) through a copy of *dst: the
// copy escapes to the heap, when this runs, and dst does not, so a caller's
// value holding *dst can stay on the stack (ParseRequestMeta's result,
// once an allocation for every request with params).
func unmarshalString(v []byte, dst *string) {
	s := *dst
	_ = json.Unmarshal(v, &s)
	*dst = s
}

// DecodeHeaderValue decodes a Mcp-Name or Mcp-Param-* header value: the
// "=?base64?...?=" form is base64 (standard, padded) of the UTF-8 value;
// any other value is taken as is, and must be visible ASCII, space or tab.
// ok is false for a malformed value.
func DecodeHeaderValue(v string) (string, bool) {
	if strings.HasPrefix(v, "=?base64?") && strings.HasSuffix(v, "?=") && len(v) >= len("=?base64??=") {
		// Only both markers make the sentinel form; a value with one is
		// taken literally.
		b, err := base64.StdEncoding.DecodeString(v[len("=?base64?") : len(v)-len("?=")])
		if err != nil {
			return "", false
		}
		return string(b), true
	}
	for i := 0; i < len(v); i++ {
		if c := v[i]; c != '\t' && (c < 0x20 || c > 0x7e) {
			return "", false
		}
	}
	return v, true
}

// UnsupportedVersionError is the -32022 error for a revision not served,
// listing the supported ones.
func UnsupportedVersionError(rev string) *Error {
	data, _ := json.Marshal(struct {
		Supported []string `json:"supported"`
		Requested string   `json:"requested,omitempty"`
	}{SupportedVersions(), rev})
	return &Error{Code: CodeUnsupportedVersion, Message: "Unsupported protocol version: " + rev, Data: data}
}

// CacheHints are the caching fields of a cacheable result.
type CacheHints struct {
	TTLMs int64
	Scope string // "public" or "private"
}

// AppendCompleteResult appends result (a JSON object) with the fields a
// stateless revision requires of a final result: resultType "complete"
// unless the result has a resultType already (an interim result, which
// gets no cache hints), cache hints when hints is not nil and the result has
// none, and _meta with serverInfo when the result has no _meta. It returns nil if result is not an object.
func AppendCompleteResult(dst, result []byte, hints *CacheHints, serverInfo []byte) []byte {
	var hasType, hasTTL, hasScope, hasMeta bool
	if len(result) == 0 || result[0] != '{' || ScanObject(result, func(k, _ []byte) {
		switch string(k) {
		case "resultType":
			hasType = true
		case "ttlMs":
			hasTTL = true
		case "cacheScope":
			hasScope = true
		case "_meta":
			hasMeta = true
		}
	}) != nil {
		return nil
	}
	dst = append(dst, '{')
	start := len(dst)
	field := func(name string) {
		if len(dst) > start {
			dst = append(dst, ',')
		}
		dst = appendJSONString(dst, name)
		dst = append(dst, ':')
	}
	if !hasType {
		field("resultType")
		dst = append(dst, `"complete"`...)
	}
	if hasType {
		hints = nil // an interim result is not cacheable
	}
	if hints != nil && !hasTTL {
		field("ttlMs")
		dst = strconv.AppendInt(dst, hints.TTLMs, 10)
	}
	if hints != nil && !hasScope {
		field("cacheScope")
		dst = appendJSONString(dst, hints.Scope)
	}
	if !hasMeta && serverInfo != nil {
		field("_meta")
		dst = append(dst, `{"`+MetaServerInfo+`":`...)
		dst = append(dst, serverInfo...)
		dst = append(dst, '}')
	}
	rest := result[1:] // the members and the closing brace
	if len(dst) > start && !isEmptyObjectTail(rest) {
		dst = append(dst, ',')
	}
	return append(dst, rest...)
}

func isEmptyObjectTail(b []byte) bool {
	for _, c := range b {
		switch c {
		case ' ', '\t', '\r', '\n':
		case '}':
			return true
		default:
			return false
		}
	}
	return false
}
