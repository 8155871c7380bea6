package replay

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/big"

	"github.com/aymanbagabas/go-udiff"
	"github.com/google/go-cmp/cmp"

	"github.com/mcpstream/mcpstream/schema"
)

// Outcome is what comparing a call's new answer with its recorded one
// found. The zero value is no outcome; its String is "Outcome(0)".
type Outcome int

const (
	// Same: the new answer equals the recorded one (less what was
	// ignored).
	Same Outcome = iota + 1
	// Different: it does not; a result against an error is Different.
	Different
	// Failed: the call got no answer (transport error, timeout, refused
	// connection).
	Failed
	// Unrecorded: the line has no recorded answer to compare with.
	Unrecorded
)

// String is the outcome as re-run lines write it: "same", "different",
// "failed" or "unrecorded".
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
	}
	return fmt.Sprintf("Outcome(%d)", int(o))
}

// Answer is the answer to one call: a JSON-RPC result object, or a
// JSON-RPC error. An Answer with neither is no answer.
type Answer struct {
	Result json.RawMessage
	Error  *schema.Error
}

// empty reports whether a holds no answer.
func (a Answer) empty() bool { return len(a.Result) == 0 && a.Error == nil }

// numberPrecision is the precision, in bits, numbers are compared at:
// exact for every integer and float64 an MCP server sends.
const numberPrecision = 256

// Compare compares the answer a call got with the one recorded for it and
// returns the outcome and, when Different, a readable diff: a unified
// diff of the two documents as indented JSON, members sorted ("-" lines
// recorded, "+" lines got).
//
// Each answer is decoded (numbers as [json.Number]) into a document with
// one member, {"result": <result>} or {"error": {"code", "message",
// "data"}}, and the ignore pointers are removed from both documents: they
// are written from that root, so /result/content/0/text and
// /error/message both work. Numbers compare by value (1, 1.0 and 1e0 are
// equal); nothing else is normalised: an absent member differs from an
// empty one, and a result differs from an error.
//
// It returns Unrecorded when recorded has neither result nor error,
// Failed when got has neither, and Different with the reason when an
// answer is not JSON.
func Compare(recorded, got Answer, ignore []Pointer) (Outcome, string) {
	if recorded.empty() {
		return Unrecorded, ""
	}
	if got.empty() {
		return Failed, "no answer"
	}
	want, err := answerDoc(recorded)
	if err != nil {
		return Different, "the recorded answer: " + err.Error()
	}
	have, err := answerDoc(got)
	if err != nil {
		return Different, "the new answer: " + err.Error()
	}
	for _, p := range ignore {
		p.Remove(want)
		p.Remove(have)
	}
	if cmp.Equal(want, have, cmp.Comparer(sameNumber)) {
		return Same, ""
	}
	return Different, udiff.Unified("recorded", "replayed", indented(want), indented(have))
}

// indented is doc as indented JSON, members sorted, numbers as written.
func indented(doc map[string]any) string {
	b, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return fmt.Sprint(doc)
	}
	return string(b) + "\n"
}

// answerDoc decodes a into {"result": …} or {"error": …}.
func answerDoc(a Answer) (map[string]any, error) {
	if a.Error != nil {
		b, err := json.Marshal(a.Error)
		if err != nil {
			return nil, fmt.Errorf("encoding error %d: %w", a.Error.Code, err)
		}
		v, err := decodeJSON(b)
		if err != nil {
			return nil, fmt.Errorf("decoding the data of error %d: %w", a.Error.Code, err)
		}
		return map[string]any{"error": v}, nil
	}
	v, err := decodeJSON(a.Result)
	if err != nil {
		return nil, fmt.Errorf("decoding the result: %w", err)
	}
	return map[string]any{"result": v}, nil
}

// decodeJSON decodes the one JSON value b holds, numbers as json.Number.
func decodeJSON(b []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if dec.More() {
		return nil, fmt.Errorf("more than one JSON value in %.40q", b)
	}
	return v, nil
}

// sameNumber reports whether a and b are the same number (-0 is 0).
// Numbers that cannot be read, or too large for a big.Float's exponent,
// are the same only when written the same.
func sameNumber(a, b json.Number) bool {
	if a == b {
		return true
	}
	x, _, errX := big.ParseFloat(string(a), 10, numberPrecision, big.ToNearestEven)
	y, _, errY := big.ParseFloat(string(b), 10, numberPrecision, big.ToNearestEven)
	return errX == nil && errY == nil && !x.IsInf() && !y.IsInf() && x.Cmp(y) == 0
}
