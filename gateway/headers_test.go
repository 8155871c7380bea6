package gateway

import (
	"net/http"
	"testing"
)

func TestParamHeaders(t *testing.T) {
	hp := headerParams([]byte(`{"type":"object","properties":{"region":{"type":"string","x-mcp-header":"Region"},` +
		`"n":{"type":"integer","x-mcp-header":"N"},"opts":{"type":"object","properties":{"deep":{"type":"boolean","x-mcp-header":"Deep"}}},"plain":{"type":"string"}}}`))
	if len(hp) != 3 {
		t.Fatalf("headerParams = %+v, want region, n and opts.deep", hp)
	}
	if headerParams([]byte(`{"type":"object","properties":{"a":{"type":"string"}}}`)) != nil {
		t.Error("a schema without x-mcp-header has header params")
	}
	args := []byte(`{"region":"Hello","n":42,"opts":{"deep":true},"plain":"x"}`)
	hdr := func(kv ...string) http.Header {
		h := http.Header{}
		for i := 0; i+1 < len(kv); i += 2 {
			h.Add(kv[i], kv[i+1])
		}
		return h
	}
	ok := []string{"Mcp-Param-Region", "=?base64?SGVsbG8=?=", "mcp-param-n", "42.0", "Mcp-Param-Deep", "true"}
	if err := checkParamHeaders(hp, args, hdr(ok...)); err != nil {
		t.Fatalf("matching headers refused: %v", err)
	}
	for name, h := range map[string]http.Header{
		"missing":         hdr(ok[2:]...),
		"differs":         hdr(append([]string{"Mcp-Param-Region", "Bye"}, ok[2:]...)...),
		"bad padding":     hdr(append([]string{"Mcp-Param-Region", "=?base64?SGVsbG8?="}, ok[2:]...)...),
		"number differs":  hdr("Mcp-Param-Region", "Hello", "Mcp-Param-N", "43", "Mcp-Param-Deep", "true"),
		"bool differs":    hdr("Mcp-Param-Region", "Hello", "Mcp-Param-N", "42", "Mcp-Param-Deep", "false"),
		"control char":    hdr("Mcp-Param-Region", "Hel\x01lo", "Mcp-Param-N", "42", "Mcp-Param-Deep", "true"),
		"header repeated": hdr("Mcp-Param-Region", "Hello", "Mcp-Param-Region", "Hello", "Mcp-Param-N", "42", "Mcp-Param-Deep", "true"),
	} {
		if err := checkParamHeaders(hp, args, h); err == nil || err.Code != -32020 {
			t.Errorf("%s: %v, want -32020", name, err)
		}
	}
	// A value absent (or null) in the body needs no header.
	if err := checkParamHeaders(hp, []byte(`{"region":null}`), hdr()); err != nil {
		t.Errorf("absent values: %v", err)
	}
}
