package gateway_test

import (
	"encoding/json"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/mcpstream/mcpstream/gateway"
	"github.com/mcpstream/mcpstream/internal/testkit"
	"github.com/mcpstream/mcpstream/schema"
)

// TestPrincipalRate checks Config.PrincipalRate over HTTP: a principal's
// requests beyond its burst are refused at once with 429, Retry-After and
// -32000 whose retryAfterMs tells when the next is allowed, and one is
// served again after that; another principal, anonymous requests and a
// limited principal's notifications are not refused.
func TestPrincipalRate(t *testing.T) {
	const rate, burst = 2, 3 // a request every 500ms, bursts of 3
	tg := newTestGateway(t, gateway.Config{PrincipalHeader: "X-User", PrincipalRate: rate, PrincipalBurst: burst})
	list := func(user string) response {
		hs := statelessHeaders("tools/list", "")
		if user != "" {
			hs = append(hs, "X-User", user)
		}
		return tg.post(t, statelessBody(1, "tools/list", ""), hs...)
	}
	for range burst {
		wantResult(t, list("alice"))
	}
	start := time.Now()
	r := list("alice")
	m := wantError(t, r, http.StatusTooManyRequests, schema.CodeOverloaded)
	var data struct {
		Reason       string `json:"reason"`
		RetryAfterMs int    `json:"retryAfterMs"`
	}
	if err := json.Unmarshal(m.Error.Data, &data); err != nil || data.RetryAfterMs <= 0 || data.RetryAfterMs > 1000/rate {
		t.Fatalf("data %s (%v), want retryAfterMs in (0, 500]", m.Error.Data, err)
	}
	if s, err := strconv.Atoi(r.header.Get("Retry-After")); err != nil || s < 1 {
		t.Fatalf("Retry-After %q", r.header.Get("Retry-After"))
	}
	// Others are not limited by alice's bucket.
	for range burst + 2 {
		wantResult(t, list(""))
	}
	wantResult(t, list("bob"))
	if r := tg.post(t, `{"jsonrpc":"2.0","method":"notifications/roots/list_changed"}`, append(statelessHeaders("notifications/roots/list_changed", ""), "X-User", "alice")...); r.status != http.StatusAccepted {
		t.Fatalf("alice's notification: %d %s", r.status, r.body)
	}
	// Alice is served once her bucket holds a token again, not before.
	testkit.Eventually(t, "alice served again", waitFor, func() bool { return list("alice").status == http.StatusOK })
	if d := time.Since(start); d < time.Duration(data.RetryAfterMs)*time.Millisecond*8/10 {
		t.Errorf("served again after %s, before retryAfterMs %d", d, data.RetryAfterMs)
	}
}
