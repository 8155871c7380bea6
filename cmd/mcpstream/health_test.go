package main

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestHealth: mcpstream health exits 0 on a 2xx answer, printing it, and
// 1 on another status or no answer, naming it.
func TestHealth(t *testing.T) {
	ready := true
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if !ready {
			http.Error(w, "draining", http.StatusServiceUnavailable)
			return
		}
		io.WriteString(w, "ready\n")
	}))
	defer srv.Close()
	var out, errs bytes.Buffer
	if code := run([]string{"health", "--url", srv.URL + "/readyz"}, &out, &errs); code != 0 || out.String() != "ready\n" {
		t.Errorf("ready: exit %d, stdout %q, stderr %q", code, out.String(), errs.String())
	}
	ready = false
	errs.Reset()
	if code := run([]string{"health", "--url", srv.URL + "/readyz"}, io.Discard, &errs); code != 1 || !strings.Contains(errs.String(), "503 Service Unavailable: draining") {
		t.Errorf("not ready: exit %d, stderr %q", code, errs.String())
	}
	srv.Close()
	errs.Reset()
	if code := run([]string{"health", "--url", srv.URL + "/readyz", "--timeout", "1s"}, io.Discard, &errs); code != 1 || !strings.Contains(errs.String(), "asking") {
		t.Errorf("no server: exit %d, stderr %q", code, errs.String())
	}
}
