package gateway

import (
	"net/http"
	"testing"
)

// TestHTTPVersion: network.protocol.version is written as the conventions
// write it: "1.1", "2", "3" (not "2.0").
func TestHTTPVersion(t *testing.T) {
	for _, c := range []struct {
		major, minor int
		want         string
	}{{1, 0, "1.0"}, {1, 1, "1.1"}, {2, 0, "2"}, {3, 0, "3"}} {
		if got := httpVersion(&http.Request{ProtoMajor: c.major, ProtoMinor: c.minor}); got != c.want {
			t.Errorf("HTTP/%d.%d: %q, want %q", c.major, c.minor, got, c.want)
		}
	}
}
