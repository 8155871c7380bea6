package schema

import "encoding/json"

// Methods a server sends to the client (server-to-client requests).
const (
	MethodSamplingCreateMessage = "sampling/createMessage"
	MethodElicitationCreate     = "elicitation/create"
	MethodRootsList             = "roots/list"
)

// ClientCapability names the client capability a server-to-client method
// needs ("sampling", "elicitation", "roots"), or "" for another method.
func ClientCapability(method string) string {
	switch method {
	case MethodSamplingCreateMessage:
		return "sampling"
	case MethodElicitationCreate:
		return "elicitation"
	case MethodRootsList:
		return "roots"
	}
	return ""
}

// HasCapability reports whether capabilities (a client's capabilities
// object, JSON) declare capability ("sampling", "elicitation", ...).
func HasCapability(capabilities []byte, capability string) bool {
	found := false
	if len(capabilities) > 0 {
		_ = ScanObject(capabilities, func(k, _ []byte) {
			if string(k) == capability {
				found = true
			}
		})
	}
	return found
}

// HasExtension reports whether capabilities (JSON) declare extension in
// their extensions.
func HasExtension(capabilities []byte, extension string) bool {
	var caps struct {
		Extensions map[string]json.RawMessage `json:"extensions"`
	}
	if len(capabilities) == 0 || json.Unmarshal(capabilities, &caps) != nil {
		return false
	}
	_, ok := caps.Extensions[extension]
	return ok
}

// HeaderGatewayError marks an answer to a worker's request to the client
// that a gateway made itself because it could not relay the request; other
// answers carry the session (HeaderSessionID) of the client that sent them.
const HeaderGatewayError = "Mcp-Gateway-Error"

// AppendRequestFunc appends a JSON-RPC request with a string id whose params
// fn appends; nil if fn fails.
func AppendRequestFunc(dst []byte, id, method string, fn func([]byte) ([]byte, error)) []byte {
	dst = append(dst, `{"jsonrpc":"2.0","id":`...)
	dst = appendJSONString(dst, id)
	dst = append(dst, `,"method":`...)
	dst = appendJSONString(dst, method)
	return appendMemberFunc(dst, `,"params":`, fn)
}

// SamplingMessage is one message of a sampling request or its result.
type SamplingMessage struct {
	Role    string  `json:"role"`
	Content Content `json:"content"`
}

// ModelPreferences are a sampling request's hints about the model to use.
type ModelPreferences struct {
	Hints                []ModelHint `json:"hints,omitempty"`
	CostPriority         float64     `json:"costPriority,omitempty"`
	SpeedPriority        float64     `json:"speedPriority,omitempty"`
	IntelligencePriority float64     `json:"intelligencePriority,omitempty"`
}

// ModelHint names a model or model family.
type ModelHint struct {
	Name string `json:"name,omitempty"`
}

// CreateMessageParams are the params of sampling/createMessage.
type CreateMessageParams struct {
	Messages         []SamplingMessage `json:"messages"`
	MaxTokens        int               `json:"maxTokens"`
	SystemPrompt     string            `json:"systemPrompt,omitempty"`
	Temperature      *float64          `json:"temperature,omitempty"`
	StopSequences    []string          `json:"stopSequences,omitempty"`
	ModelPreferences *ModelPreferences `json:"modelPreferences,omitempty"`
	IncludeContext   string            `json:"includeContext,omitempty"`
}

// CreateMessageResult is the client's answer to sampling/createMessage.
type CreateMessageResult struct {
	Role       string  `json:"role"`
	Content    Content `json:"content"`
	Model      string  `json:"model"`
	StopReason string  `json:"stopReason,omitempty"`
}

// ElicitParams are the params of elicitation/create (form mode):
// RequestedSchema is a flat JSON Schema object of primitive properties.
type ElicitParams struct {
	Message         string          `json:"message"`
	RequestedSchema json.RawMessage `json:"requestedSchema"`
}

// ElicitResult is the client's answer to elicitation/create: Action is
// "accept" (with Content), "decline" or "cancel".
type ElicitResult struct {
	Action  string         `json:"action"`
	Content map[string]any `json:"content,omitempty"`
}

// Root is a directory or file the client exposes.
type Root struct {
	URI  string `json:"uri"`
	Name string `json:"name,omitempty"`
}

// ListRootsResult is the client's answer to roots/list.
type ListRootsResult struct {
	Roots []Root `json:"roots"`
}
