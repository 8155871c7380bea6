package replay

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/mcpstream/mcpstream/schema"
)

// result is an Answer with result s.
func result(s string) Answer { return Answer{Result: json.RawMessage(s)} }

// TestCompare: equal answers are Same whatever their spacing, member order
// and number spelling; a changed value, a missing member, an empty member
// against an absent one and a result against an error are Different, with
// a diff naming what changed; no recorded answer is Unrecorded, no new one
// Failed.
func TestCompare(t *testing.T) {
	unknown := &schema.Error{Code: -32602, Message: `unknown tool "nope"`}
	for name, c := range map[string]struct {
		recorded, got Answer
		ignore        []string
		want          Outcome
		diffHas       []string
	}{
		"equal":         {result(`{"content":[{"type":"text","text":"hi"}]}`), result(`{ "content" : [ {"text":"hi","type":"text"} ] }`), nil, Same, nil},
		"numbers":       {result(`{"n":1,"f":0.5,"big":9007199254740993,"e":100}`), result(`{"n":1.0,"f":5e-1,"big":9007199254740993.0,"e":1E2}`), nil, Same, nil},
		"big ints":      {result(`{"big":9007199254740993}`), result(`{"big":9007199254740992}`), nil, Different, []string{"9007199254740993", "9007199254740992"}},
		"changed text":  {result(`{"content":[{"type":"text","text":"hello"}]}`), result(`{"content":[{"type":"text","text":"hi"}]}`), nil, Different, []string{`"hello"`, `"hi"`, "-", "+"}},
		"ignored text":  {result(`{"content":[{"type":"text","text":"hello"}]}`), result(`{"content":[{"type":"text","text":"hi"}]}`), []string{"/result/content/0/text"}, Same, nil},
		"ignored all":   {result(`{"content":[{"type":"text","text":"a"},{"type":"text","text":"b"}],"t":1}`), result(`{"content":[{"type":"text","text":"c"},{"type":"text","text":"d"}],"t":2}`), []string{"/result/content/*/text", "/result/t"}, Same, nil},
		"ignore other":  {result(`{"content":[{"type":"text","text":"hello"}]}`), result(`{"content":[{"type":"text","text":"hi"}]}`), []string{"/result/content/1/text", "/content/0/text"}, Different, []string{"hello"}},
		"absent member": {result(`{"content":[],"isError":false}`), result(`{"content":[]}`), nil, Different, []string{"isError"}},
		"absent empty":  {result(`{"content":[]}`), result(`{}`), nil, Different, []string{"content"}},
		"null member":   {result(`{"structuredContent":null}`), result(`{}`), nil, Different, []string{"structuredContent"}},
		"error same":    {Answer{Error: unknown}, Answer{Error: &schema.Error{Code: -32602, Message: `unknown tool "nope"`}}, nil, Same, nil},
		"error code":    {Answer{Error: unknown}, Answer{Error: &schema.Error{Code: -32601, Message: `unknown tool "nope"`}}, nil, Different, []string{"32602", "32601"}},
		"error message ignored": {Answer{Error: unknown}, Answer{Error: &schema.Error{Code: -32602, Message: "no such tool"}},
			[]string{"/error/message"}, Same, nil},
		"error data": {Answer{Error: &schema.Error{Code: 1, Message: "m", Data: json.RawMessage(`{"retryAfterMs":100}`)}},
			Answer{Error: &schema.Error{Code: 1, Message: "m", Data: json.RawMessage(`{"retryAfterMs":200}`)}}, nil, Different, []string{"retryAfterMs", "100", "200"}},
		"error data ignored": {Answer{Error: &schema.Error{Code: 1, Message: "m", Data: json.RawMessage(`{"retryAfterMs":100}`)}},
			Answer{Error: &schema.Error{Code: 1, Message: "m", Data: json.RawMessage(`{"retryAfterMs":200}`)}}, []string{"/error/data/retryAfterMs"}, Same, nil},
		"result vs error": {result(`{"content":[]}`), Answer{Error: unknown}, nil, Different, []string{"result", "error"}},
		"error vs result": {Answer{Error: unknown}, result(`{"content":[]}`), []string{"/error/message"}, Different, []string{"result", "error"}},
		"unrecorded":      {Answer{}, result(`{"content":[]}`), nil, Unrecorded, nil},
		"unrecorded both": {Answer{}, Answer{}, nil, Unrecorded, nil},
		"no answer":       {result(`{"content":[]}`), Answer{}, nil, Failed, []string{"no answer"}},
		"bad recorded":    {result(`{"content":`), result(`{}`), nil, Different, []string{"recorded"}},
		"bad new":         {result(`{}`), result(`{} {}`), nil, Different, []string{"new", "more than one"}},
	} {
		var ignore []Pointer
		for _, s := range c.ignore {
			ignore = append(ignore, pointer(t, s))
		}
		got, diff := Compare(c.recorded, c.got, ignore)
		if got != c.want {
			t.Errorf("%s: %v, want %v; diff:\n%s", name, got, c.want, diff)
			continue
		}
		if (got == Same || got == Unrecorded) && diff != "" {
			t.Errorf("%s: %v with a diff:\n%s", name, got, diff)
		}
		for _, s := range c.diffHas {
			if !strings.Contains(diff, s) {
				t.Errorf("%s: diff does not mention %q:\n%s", name, s, diff)
			}
		}
	}
}

// TestCompareKeepsAnswers: comparing does not change the answers it is
// given, so that an ignored member is still printed.
func TestCompareKeepsAnswers(t *testing.T) {
	rec := result(`{"content":[{"type":"text","text":"hello"}]}`)
	got := Answer{Error: &schema.Error{Code: 1, Message: "m", Data: json.RawMessage(`{"a":1}`)}}
	if o, _ := Compare(rec, got, []Pointer{pointer(t, "/result/content"), pointer(t, "/error/data/a")}); o != Different {
		t.Fatalf("outcome %v", o)
	}
	if string(rec.Result) != `{"content":[{"type":"text","text":"hello"}]}` || string(got.Error.Data) != `{"a":1}` {
		t.Errorf("answers changed: %s %s", rec.Result, got.Error.Data)
	}
}

// TestOutcomeString: each outcome has the name re-run lines write; the
// zero value is not one of them.
func TestOutcomeString(t *testing.T) {
	for o, want := range map[Outcome]string{Same: "same", Different: "different", Failed: "failed", Unrecorded: "unrecorded", 0: "Outcome(0)"} {
		if o.String() != want {
			t.Errorf("%d: %q, want %q", int(o), o.String(), want)
		}
	}
}
