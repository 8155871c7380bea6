package schema

import (
	"encoding/json"
	"fmt"
)

// MethodCompletionComplete asks for suggestions for an argument of a prompt
// or a resource template.
const MethodCompletionComplete = "completion/complete"

// Reference types of completion/complete.
const (
	RefPrompt   = "ref/prompt"
	RefResource = "ref/resource"
)

// MaxCompletionValues is the most values a completion result may carry.
const MaxCompletionValues = 100

// CompleteParams are the params of completion/complete.
type CompleteParams struct {
	Ref      CompleteRef      `json:"ref"`
	Argument CompleteArgument `json:"argument"`
	Context  *CompleteContext `json:"context,omitempty"`
}

// CompleteRef names what is completed: a prompt (Type RefPrompt, Name) or a
// resource template (Type RefResource, URI: the template).
type CompleteRef struct {
	Type string `json:"type"`
	Name string `json:"name,omitempty"`
	URI  string `json:"uri,omitempty"`
}

// CompleteArgument is the argument being completed and its partial value.
type CompleteArgument struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// CompleteContext holds the arguments already resolved.
type CompleteContext struct {
	Arguments map[string]string `json:"arguments,omitempty"`
}

// Completion is the result's suggestions, at most MaxCompletionValues.
type Completion struct {
	Values  []string `json:"values"`
	Total   int      `json:"total,omitempty"`
	HasMore bool     `json:"hasMore,omitempty"`
}

// CompleteResult is the result of completion/complete.
type CompleteResult struct {
	Completion Completion `json:"completion"`
}

// ParseCompleteParams decodes and checks completion/complete params: the
// reference must be a prompt with a name or a resource with a URI, and the
// argument must have a name. The error is -32602.
func ParseCompleteParams(params []byte) (*CompleteParams, *Error) {
	var p CompleteParams
	if len(params) == 0 {
		return nil, Errorf(CodeInvalidParams, "completion/complete needs params")
	}
	if err := json.Unmarshal(params, &p); err != nil {
		return nil, Errorf(CodeInvalidParams, "completion/complete params: %v", err)
	}
	switch {
	case p.Ref.Type == RefPrompt && p.Ref.Name == "", p.Ref.Type == RefResource && p.Ref.URI == "":
		return nil, Errorf(CodeInvalidParams, "completion/complete: a %s reference needs its %s", p.Ref.Type, map[string]string{RefPrompt: "name", RefResource: "uri"}[p.Ref.Type])
	case p.Ref.Type != RefPrompt && p.Ref.Type != RefResource:
		return nil, Errorf(CodeInvalidParams, "completion/complete: unknown reference type %q (want %s or %s)", p.Ref.Type, RefPrompt, RefResource)
	case p.Argument.Name == "":
		return nil, Errorf(CodeInvalidParams, "completion/complete: the argument needs a name")
	}
	return &p, nil
}

// Target is the prompt name or the template URI the params refer to.
func (p *CompleteParams) Target() string {
	if p.Ref.Type == RefPrompt {
		return p.Ref.Name
	}
	return p.Ref.URI
}

// String names the reference, as "ref/prompt greet".
func (r CompleteRef) String() string {
	if r.Type == RefPrompt {
		return fmt.Sprintf("%s %s", r.Type, r.Name)
	}
	return fmt.Sprintf("%s %s", r.Type, r.URI)
}
