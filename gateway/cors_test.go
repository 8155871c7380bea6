package gateway

import (
	"net/http"
	"strings"
	"testing"
)

func TestWithResponseHeaders(t *testing.T) {
	first := append(append([]byte{}, sseHead...), "event: x\ndata: 1\n\n"...)
	if got := withResponseHeaders(first, http.Header{}); string(got) != string(first) {
		t.Fatalf("without CORS headers the head changed:\n%q", got)
	}
	h := http.Header{}
	h.Set("Access-Control-Allow-Origin", "http://localhost:6274")
	h.Set("Access-Control-Expose-Headers", "Mcp-Session-Id")
	h.Add("Vary", "Origin")
	h.Add("Vary", "bad\r\nX-Injected: 1")
	got := string(withResponseHeaders(first, h))
	head, body, ok := strings.Cut(got, "\r\n\r\n")
	if !ok || body != "event: x\ndata: 1\n\n" {
		t.Fatalf("events after the head changed: %q", got)
	}
	for _, line := range []string{"Access-Control-Allow-Origin: http://localhost:6274", "Access-Control-Expose-Headers: Mcp-Session-Id", "Vary: Origin", "Content-Type: text/event-stream"} {
		if !strings.Contains(head+"\r\n", "\r\n"+line+"\r\n") {
			t.Errorf("head lacks %q:\n%s", line, head)
		}
	}
	if strings.Contains(got, "X-Injected") {
		t.Errorf("a header value with CR LF went into the head:\n%s", head)
	}
	if !strings.HasPrefix(got, "HTTP/1.1 200 OK\r\n") {
		t.Errorf("status line moved:\n%s", head)
	}
}
