package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// countingServer is a loopback HTTP server that counts the connections
// it accepts.
func countingServer(t *testing.T, h http.HandlerFunc) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var conns atomic.Int32
	ts := httptest.NewUnstartedServer(h)
	ts.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	ts.Start()
	t.Cleanup(ts.Close)
	return ts, &conns
}

func postString(t *testing.T, ctx context.Context, hc *http.Client, url, body string) (string, error) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

func TestDirectTransportReusesConnections(t *testing.T) {
	ts, conns := countingServer(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if r.URL.Query().Get("chunked") != "" {
			w.Write(b[:1]) // flushed before the rest: a chunked body
			w.(http.Flusher).Flush()
			b = b[1:]
		}
		w.Write(b)
	})
	hc := newHTTPClient(4, 1)
	defer hc.CloseIdleConnections()
	for i := range 50 {
		url := ts.URL
		if i%2 == 1 {
			url += "?chunked=1"
		}
		want := fmt.Sprintf("call %d", i)
		got, err := postString(t, context.Background(), hc, url, want)
		if err != nil || got != want {
			t.Fatalf("call %d: %q, %v; want %q", i, got, err, want)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("50 calls one after another used %d connections, want 1", n)
	}
}

func TestDirectTransportRetriesClosedIdleConnection(t *testing.T) {
	var calls atomic.Int32
	ts, conns := countingServer(t, func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		io.Copy(w, r.Body)
	})
	hc := newHTTPClient(4, 1)
	defer hc.CloseIdleConnections()
	if got, err := postString(t, context.Background(), hc, ts.URL, "one"); err != nil || got != "one" {
		t.Fatalf("first call: %q, %v", got, err)
	}
	ts.CloseClientConnections() // the server drops the idle keep-alive connection
	if got, err := postString(t, context.Background(), hc, ts.URL, "two"); err != nil || got != "two" {
		t.Fatalf("call on a connection the server closed: %q, %v", got, err)
	}
	if n, c := conns.Load(), calls.Load(); n != 2 || c != 2 {
		t.Errorf("%d connections and %d calls served, want 2 and 2", n, c)
	}
}

func TestDirectTransportContext(t *testing.T) {
	release := make(chan struct{})
	arrived := make(chan struct{}, 1)
	ts, conns := countingServer(t, func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/slow") {
			if r.URL.Path == "/slow-cancel" {
				arrived <- struct{}{}
			}
			select {
			case <-release:
			case <-r.Context().Done():
			}
		}
		w.Write([]byte("ok"))
	})
	defer close(release)
	hc := newHTTPClient(4, 1)
	defer hc.CloseIdleConnections()

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := postString(t, ctx, hc, ts.URL+"/slow-deadline", "x")
	if !errors.Is(err, context.DeadlineExceeded) || errKind(err) != KindTimeout {
		t.Errorf("past its deadline: %v (kind %q), want context.DeadlineExceeded, a timeout", err, errKind(err))
	}
	ctx, cancel = context.WithCancel(context.Background())
	go func() {
		<-arrived // the request is in the server's hands
		cancel()
	}()
	_, err = postString(t, ctx, hc, ts.URL+"/slow-cancel", "x")
	if !errors.Is(err, context.Canceled) || errKind(err) != KindCanceled {
		t.Errorf("cancelled: %v (kind %q), want context.Canceled", err, errKind(err))
	}
	// Neither interrupted connection goes back to the pool.
	if got, err := postString(t, context.Background(), hc, ts.URL, "x"); err != nil || got != "ok" {
		t.Fatalf("call after the interrupted ones: %q, %v", got, err)
	}
	if n := conns.Load(); n != 3 {
		t.Errorf("%d connections, want 3 (no interrupted one reused)", n)
	}
}

func TestDirectTransportUnreadBodyClosesConnection(t *testing.T) {
	ts, conns := countingServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.Write(bytes.Repeat([]byte("x"), 100<<10))
	})
	hc := newHTTPClient(4, 1)
	defer hc.CloseIdleConnections()
	for range 2 {
		req, _ := http.NewRequest(http.MethodGet, ts.URL, nil)
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(resp.Body, make([]byte, 10)); err != nil {
			t.Fatal(err)
		}
		resp.Body.Close() // 100 KB left unread: the connection cannot be reused
	}
	if n := conns.Load(); n != 2 {
		t.Errorf("%d connections, want 2", n)
	}
}

func TestDirectTransportHTTPSFallback(t *testing.T) {
	ts := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(w, r.Body)
	}))
	defer ts.Close()
	hc := &http.Client{Transport: newDirectTransport(1, (&net.Dialer{}).DialContext, ts.Client().Transport)}
	defer hc.CloseIdleConnections()
	if got, err := postString(t, context.Background(), hc, ts.URL, "over tls"); err != nil || got != "over tls" {
		t.Fatalf("https through the fallback: %q, %v", got, err)
	}
}
