package gateway

import (
	"net/http"
	"testing"
)

func TestAccepts(t *testing.T) {
	for _, tc := range []struct {
		accept        []string // nil: no Accept header
		jsonOK, sseOK bool
	}{
		{nil, true, true},
		{[]string{"application/json, text/event-stream"}, true, true},
		{[]string{"application/json"}, true, false},
		{[]string{"text/event-stream"}, false, true},
		{[]string{"Application/JSON;q=0.9"}, true, false},
		{[]string{"text/*"}, false, true},
		{[]string{"application/*, text/html"}, true, false},
		{[]string{"*/*;q=0.1"}, true, true},
		{[]string{"text/html", "text/event-stream"}, false, true},
		{[]string{"text/html,,"}, false, false},
		{[]string{"application/json;;;"}, false, false},
		{[]string{""}, false, false},
	} {
		r, _ := http.NewRequest(http.MethodPost, "/mcp", nil)
		for _, v := range tc.accept {
			r.Header.Add("Accept", v)
		}
		jsonOK, sseOK := accepts(r)
		if jsonOK != tc.jsonOK || sseOK != tc.sseOK {
			t.Errorf("Accept %q: json %v, sse %v; want %v, %v", tc.accept, jsonOK, sseOK, tc.jsonOK, tc.sseOK)
		}
	}
}

func TestMediaType(t *testing.T) {
	for in, want := range map[string]string{
		"application/json":                 "application/json",
		"application/json; charset=utf-8":  "application/json",
		"APPLICATION/Json":                 "application/json",
		"text/event-stream":                "text/event-stream",
		"text/plain":                       "text/plain",
		"":                                 "",
		"application/json; charset":        "",
		"application/json; charset=\"utf8": "",
	} {
		if got := mediaType(in); got != want {
			t.Errorf("mediaType(%q) = %q, want %q", in, got, want)
		}
	}
}
