package gateway_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/mcpstream/mcpstream/gateway"
	"github.com/mcpstream/mcpstream/internal/testkit"
	"github.com/mcpstream/mcpstream/schema"
	"github.com/prometheus/client_golang/prometheus"
)

// TestPrincipalRate checks Config.PrincipalRate over HTTP, without holds
// (PrincipalRateHold negative): a principal's
// requests beyond its burst are refused at once with 429, Retry-After and
// -32000 whose retryAfterMs tells when the next is allowed, and one is
// served again after that; another principal, anonymous requests and a
// limited principal's notifications are not refused.
func TestPrincipalRate(t *testing.T) {
	const rate, burst = 2, 3 // a request every 500ms, bursts of 3
	tg := newTestGateway(t, gateway.Config{PrincipalHeader: "X-User", PrincipalRate: rate, PrincipalBurst: burst, PrincipalRateHold: -1})
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

// listAs posts a stateless tools/list as user within ctx.
func listAs(tg *testGateway, ctx context.Context, user string) <-chan response {
	return tg.postAsync(ctx, statelessBody(1, "tools/list", ""), append(statelessHeaders("tools/list", ""), "X-User", user)...)
}

// TestPrincipalRateHold: with the default PrincipalRateHold (1s), requests
// over a principal's rate wait for their tokens, in turn, and are served;
// those whose token is beyond the hold are held for the hold and refused,
// their retryAfterMs the time left; a held request whose client goes away
// gives its token back; and the gateway holds at most MaxConns / 4
// requests.
func TestPrincipalRateHold(t *testing.T) {
	t.Run("held in turn, refused after the hold", func(t *testing.T) {
		tg := newTestGateway(t, gateway.Config{PrincipalHeader: "X-User", PrincipalRate: 2, PrincipalBurst: 1})
		wantResult(t, <-listAs(tg, context.Background(), "alice")) // the burst
		start := time.Now()
		var chs []<-chan response
		for range 4 { // tokens at 500ms and 1s are held; 1.5s is beyond the hold
			chs = append(chs, listAs(tg, context.Background(), "alice"))
		}
		type answer struct {
			r  response
			at time.Duration
		}
		answers := make(chan answer, len(chs))
		for _, ch := range chs {
			go func() { r := <-ch; answers <- answer{r, time.Since(start)} }()
		}
		var served, refused []time.Duration
		for range chs {
			a := <-answers
			switch a.r.status {
			case http.StatusOK:
				served = append(served, a.at)
			case http.StatusTooManyRequests:
				m := wantError(t, a.r, http.StatusTooManyRequests, schema.CodeOverloaded)
				var data struct {
					RetryAfterMs int `json:"retryAfterMs"`
				}
				if err := json.Unmarshal(m.Error.Data, &data); err != nil || data.RetryAfterMs <= 0 || data.RetryAfterMs > 600 {
					t.Errorf("refused after the hold: data %s (%v), want retryAfterMs in (0, 600]: the time left to 1.5s", m.Error.Data, err)
				}
				refused = append(refused, a.at)
			default:
				t.Fatalf("status %d: %s", a.r.status, a.r.body)
			}
		}
		if len(served) != 2 || len(refused) != 2 {
			t.Fatalf("served at %v, refused at %v; want 2 held and served, 2 held and refused", served, refused)
		}
		if served[0] < 450*time.Millisecond || served[1] < 950*time.Millisecond {
			t.Errorf("held requests served at %v, before their tokens (500ms, 1s)", served)
		}
		if refused[0] < 950*time.Millisecond {
			t.Errorf("refused at %v, before the hold (1s) ended", refused)
		}
	})
	t.Run("a client that goes away gives its token back", func(t *testing.T) {
		reg := prometheus.NewRegistry()
		tg := newTestGateway(t, gateway.Config{PrincipalHeader: "X-User", PrincipalRate: 1, PrincipalBurst: 1, Metrics: reg})
		wantResult(t, <-listAs(tg, context.Background(), "alice"))
		ctx, cancel := context.WithCancel(context.Background())
		gone := listAs(tg, ctx, "alice") // waits for the token at 1s
		testkit.Eventually(t, "a request held", waitFor, func() bool { return gaugeValue(t, reg, "mcpstream_gateway_rate_held") == 1 })
		cancel()
		<-gone
		testkit.Eventually(t, "the hold ended", waitFor, func() bool { return gaugeValue(t, reg, "mcpstream_gateway_rate_held") == 0 })
		// Had the token not come back, the next would be due in 2s, beyond
		// the hold, and refused.
		wantResult(t, <-listAs(tg, context.Background(), "alice"))
	})
	t.Run("at most MaxConns / 4 held", func(t *testing.T) {
		tg := newTestGateway(t, gateway.Config{PrincipalHeader: "X-User", PrincipalRate: 1, PrincipalBurst: 1,
			PrincipalRateHold: 5 * time.Second, MaxConns: 4})
		wantResult(t, <-listAs(tg, context.Background(), "alice"))
		a, b := listAs(tg, context.Background(), "alice"), listAs(tg, context.Background(), "alice")
		var first, second response // in the order they are answered
		select {
		case first = <-a:
			second = <-b
		case first = <-b:
			second = <-a
		}
		// Both tokens (1s, 2s) are within the 5s hold, but the gateway
		// holds one request: the other is refused at once, first.
		if first.status != http.StatusTooManyRequests || second.status != http.StatusOK {
			t.Fatalf("answered %d then %d, want 429 at once (no room to hold it), then 200 after the hold", first.status, second.status)
		}
	})
}

// gaugeValue is the value of the gauge name in reg (0 when absent).
func gaugeValue(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	return 0
}
