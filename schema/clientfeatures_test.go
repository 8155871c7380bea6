package schema_test

import (
	"encoding/json"
	"testing"

	"github.com/mcpstream/mcpstream/schema"
)

func TestAppendRequestFunc(t *testing.T) {
	b := schema.AppendRequestFunc(nil, "mcps-1", schema.MethodElicitationCreate, func(dst []byte) ([]byte, error) {
		return append(dst, `{"message":"hi \"you\""}`...), nil
	})
	var msg schema.Message
	if err := json.Unmarshal(b, &msg); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	if string(msg.ID) != `"mcps-1"` || msg.Method != "elicitation/create" || string(msg.Params) != `{"message":"hi \"you\""}` {
		t.Errorf("request %s", b)
	}
	if schema.ClientCapability(schema.MethodSamplingCreateMessage) != "sampling" || schema.ClientCapability("ping") != "" {
		t.Error("ClientCapability")
	}
}

func TestParseCompleteParams(t *testing.T) {
	p, err := schema.ParseCompleteParams([]byte(`{"ref":{"type":"ref/resource","uri":"a://{x}"},"argument":{"name":"x","value":"1"},"context":{"arguments":{"y":"2"}}}`))
	if err != nil || p.Target() != "a://{x}" || p.Argument.Value != "1" || p.Context.Arguments["y"] != "2" || p.Ref.String() != "ref/resource a://{x}" {
		t.Fatalf("ParseCompleteParams = %+v, %v", p, err)
	}
	for _, bad := range []string{``, `[]`, `{"ref":{"type":"ref/prompt"},"argument":{"name":"a"}}`,
		`{"ref":{"type":"ref/resource"},"argument":{"name":"a"}}`, `{"ref":{"type":"x","name":"n"},"argument":{"name":"a"}}`,
		`{"ref":{"type":"ref/prompt","name":"n"},"argument":{"value":"v"}}`} {
		if _, err := schema.ParseCompleteParams([]byte(bad)); err == nil || err.Code != schema.CodeInvalidParams {
			t.Errorf("ParseCompleteParams(%s) = %v, want -32602", bad, err)
		}
	}
}
