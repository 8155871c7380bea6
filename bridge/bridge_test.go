package bridge

import (
	"bufio"
	"io"
	"strings"
	"testing"
)

func TestHeaderValue(t *testing.T) {
	for in, want := range map[string]string{
		"echo":               "echo",
		"Hello, 世界":          "=?base64?SGVsbG8sIOS4lueVjA==?=",
		" padded ":           "=?base64?IHBhZGRlZCA=?=",
		"=?base64?literal?=": "=?base64?PT9iYXNlNjQ/bGl0ZXJhbD89?=",
	} {
		if got := headerValue(in); got != want {
			t.Errorf("headerValue(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestReadLineSkipsOversizedLines(t *testing.T) {
	in := strings.Repeat("x", MaxMessage+10) + "\n{\"ok\":1}\n"
	r := bufio.NewReaderSize(strings.NewReader(in), 64<<10)
	if line, oversized, err := readLine(r); line != nil || !oversized || err != nil {
		t.Fatalf("oversized line: %d bytes, oversized %v, %v; want it skipped and reported", len(line), oversized, err)
	}
	if line, oversized, err := readLine(r); string(line) != "{\"ok\":1}\n" || oversized || err != nil {
		t.Fatalf("next line %q, %v, %v", line, oversized, err)
	}
	if _, _, err := readLine(r); err != io.EOF {
		t.Fatalf("at the end: %v", err)
	}
}

func TestMarkRelated(t *testing.T) {
	got := string(markRelated([]byte(`{"jsonrpc":"2.0","id":5,"method":"sampling/createMessage","params":{"_meta":{"k":1},"maxTokens":3}}`), []byte("12")))
	if !strings.Contains(got, `"io.mcpstream/relatedRequest":12`) || !strings.Contains(got, `"k":1`) || !strings.Contains(got, `"maxTokens":3`) {
		t.Fatalf("marked request %s", got)
	}
	if got := string(markRelated([]byte(`{"jsonrpc":"2.0","method":"notifications/message"}`), []byte(`"a"`))); !strings.Contains(got, `"_meta":{"io.mcpstream/relatedRequest":"a"}`) {
		t.Fatalf("marked notification without params %s", got)
	}
	resp := `{"jsonrpc":"2.0","id":12,"result":{}}`
	if got := string(markRelated([]byte(resp), []byte("12"))); got != resp {
		t.Fatalf("a response was changed: %s", got)
	}
}
