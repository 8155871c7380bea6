package replay

import (
	"encoding/json"
	"fmt"

	"github.com/aymanbagabas/go-udiff"

	"github.com/mcpstream/mcpstream/schema"
)

// Outcome is how a re-run call's answer compares with the recorded one.
type Outcome int

// Outcomes of a re-run call.
const (
	// Same: the answer equals the recorded one (the ignored values left
	// out).
	Same Outcome = iota
	// Different: it does not, or one is a result and the other an error.
	Different
	// Failed: the call got no answer (the endpoint unreachable, a
	// transport error, the timeout).
	Failed
	// Unrecorded: there is no recorded answer to compare with.
	Unrecorded
	// Answered: the call was answered, and not compared (no --diff).
	Answered
)

func (o Outcome) String() string {
	switch o {
	case Same:
		return "same"
	case Different:
		return "different"
	case Failed:
		return "failed"
	case Unrecorded:
		return "unrecorded"
	case Answered:
		return "answered"
	}
	return fmt.Sprintf("outcome(%d)", int(o))
}

// Answer is a JSON-RPC answer: a result or an error.
type Answer struct {
	Result json.RawMessage
	Error  *schema.Error
}

// doc is the answer as a document for pointers and comparison:
// {"result": ...} or {"error": {"code", "message", "data"}}.
func (a Answer) doc() (any, error) {
	var b []byte
	var err error
	if a.Error != nil {
		b, err = json.Marshal(map[string]any{"error": a.Error})
	} else {
		b, err = json.Marshal(map[string]json.RawMessage{"result": a.Result})
	}
	if err != nil {
		return nil, err
	}
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		return nil, fmt.Errorf("not JSON: %w", err)
	}
	return v, nil
}

// Compare compares a new answer with the recorded one, both as documents
// {"result": ...} or {"error": ...}, after removing what the ignore
// pointers (from that root, e.g. /result/_meta or /error/data) point at.
// Numbers compare by value (1 and 1.0 are the same), objects whatever the
// order of their members. It returns Same, or Different with a unified
// diff of the two documents as indented JSON, members sorted ("-" the
// recorded answer, "+" the new one).
func Compare(recorded, got Answer, ignore []Pointer) (Outcome, string) {
	r, err := indented(recorded, ignore)
	if err != nil {
		return Different, fmt.Sprintf("the recorded answer: %v", err)
	}
	g, err := indented(got, ignore)
	if err != nil {
		return Different, fmt.Sprintf("the new answer: %v", err)
	}
	if r == g {
		return Same, ""
	}
	return Different, udiff.Unified("recorded", "replayed", r, g)
}

// indented is a's document, the ignored values removed, as indented JSON
// with members sorted.
func indented(a Answer, ignore []Pointer) (string, error) {
	doc, err := a.doc()
	if err != nil {
		return "", err
	}
	for _, p := range ignore {
		p.Remove(doc)
	}
	b, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return "", err
	}
	return string(b) + "\n", nil
}
