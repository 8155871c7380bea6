package gateway

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// TestSharedHeaderValues checks that the header values every answer
// shares reach the client and come back from net/http unchanged, even
// when a handler adds to one after setting it: the next response must not
// see another's value.
func TestSharedHeaderValues(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/sse" {
			setSSEHeaders(w.Header())
			w.Header().Add("Cache-Control", "no-store")
			w.WriteHeader(http.StatusOK)
			_, _ = w.Write([]byte("data: {}\n\n"))
			return
		}
		w.Header().Add("Content-Type", "charset=utf-8") // after the shared value: a slice of its own
		writeErrorBody(w, http.StatusServiceUnavailable, []byte(`{}`))
	}))
	defer srv.Close()
	for range 2 {
		for _, path := range []string{"/json", "/sse"} {
			resp, err := http.Get(srv.URL + path)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			want := "application/json"
			if path == "/sse" {
				want = "text/event-stream"
			}
			if got := resp.Header.Get("Content-Type"); got != want {
				t.Errorf("%s: Content-Type %q, want %q", path, got, want)
			}
		}
	}
	for _, c := range []struct {
		v    []string
		want string
	}{{jsonContentType, "application/json"}, {sseContentType, "text/event-stream"}, {noCache, "no-cache"}, {noBuffering, "no"}} {
		if len(c.v) != 1 || cap(c.v) != 1 || c.v[0] != c.want {
			t.Errorf("shared value %q (cap %d) changed, want [%q]", c.v, cap(c.v), c.want)
		}
	}
	h := http.Header{}
	setJSONContentType(h)
	if n := testing.AllocsPerRun(100, func() { setJSONContentType(h) }); n != 0 {
		t.Errorf("setting Content-Type: %v allocations, want 0", n)
	}
}
