package upstream

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcpstream/mcpstream/bridge"
)

// Over HTTP the official SDK's transports are used where they work
// without its Client: mcp.SSEClientTransport for the 2024-11-05 HTTP+SSE
// transport. Its StreamableClientTransport does not: the
// Mcp-Protocol-Version header after initialize, and the session's GET
// stream (where a server sends list_changed), follow the negotiated state
// that only mcp.Client hands it (an unexported hook). The Streamable HTTP
// client used instead is the repository's own, package bridge (what
// `mcpstream stdio` runs): it keeps Mcp-Session-Id and
// Mcp-Protocol-Version, opens the GET stream after initialized, mirrors
// the stateless revision's headers, and speaks newline-delimited JSON on
// its other side, which the SDK's IOTransport reads as for a process.
// With MarkRelated it marks what the server sends on a request's own
// event stream with that request's id, so that log messages and requests
// to the client are relayed to the right call however many run at once.

// headerTransport adds fixed headers (credentials) to every request.
type headerTransport struct {
	base    http.RoundTripper
	headers http.Header
}

func (h headerTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	req = req.Clone(req.Context())
	for k, vs := range h.headers {
		req.Header[k] = append([]string(nil), vs...)
	}
	return h.base.RoundTrip(req)
}

// httpClient is a client without timeouts (streams last) that adds
// headers to every request.
func httpClient(headers http.Header) *http.Client {
	return &http.Client{Transport: headerTransport{base: http.DefaultTransport, headers: headers}}
}

// dialStreamable connects to a Streamable HTTP endpoint through a
// bridge.Bridge over in-memory pipes; the returned stop ends the bridge
// (the session is deleted) and waits for it. When the endpoint forgets
// the session (HTTP 404) the bridge ends, and reading the connection
// fails with its error.
func dialStreamable(url string, headers http.Header, maxMessage int, log *slog.Logger) (mcp.Connection, func(), error) {
	inR, inW := io.Pipe()   // what we send: the bridge's input
	outR, outW := io.Pipe() // what the bridge relays back
	ctx, cancel := context.WithCancel(context.Background())
	b := &bridge.Bridge{URL: url, HTTP: httpClient(headers), Log: log, MaxInFlight: 256, Grace: time.Second, MarkRelated: true}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		err := b.Run(ctx, inR, outW)
		if err != nil {
			log.Debug("streamable HTTP bridge ended", "err", err)
		}
		// The connection's reader gets why: a lost session
		// (bridge.ErrSessionLost) fails the connection, and the pool
		// opens another with a new session.
		_ = outW.CloseWithError(err)
	}()
	c, err := (&mcp.IOTransport{Reader: outR, Writer: inW, MaxLineLength: maxMessage}).Connect(ctx)
	stop := func() {
		_ = inW.Close()
		cancel()
		_ = outR.Close()
		wg.Wait()
	}
	if err != nil {
		stop()
		return nil, nil, err
	}
	return c, stop, nil
}

// dialSSE connects to a 2024-11-05 HTTP+SSE endpoint with the official
// SDK's transport, waiting until ctx ends at most. The event stream lives
// on a context of its own (the transport's GET request is made with the
// context Connect gets), ended by the returned stop.
func dialSSE(ctx context.Context, url string, headers http.Header, maxMessage int) (mcp.Connection, func(), error) {
	sctx, stop := context.WithCancel(context.WithoutCancel(ctx))
	type dialed struct {
		c   mcp.Connection
		err error
	}
	done := make(chan dialed, 1)
	go func() {
		c, err := (&mcp.SSEClientTransport{Endpoint: url, HTTPClient: httpClient(headers), MaxEventSize: maxMessage}).Connect(sctx)
		done <- dialed{c, err}
	}()
	select {
	case d := <-done:
		if d.err != nil {
			stop()
			return nil, nil, d.err
		}
		return d.c, stop, nil
	case <-ctx.Done():
		stop()
		if d := <-done; d.c != nil {
			_ = d.c.Close()
		}
		return nil, nil, context.Cause(ctx)
	}
}
