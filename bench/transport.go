package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"syscall"
	"time"
)

// directTransport is the driver's HTTP/1.1 round tripper: the goroutine
// that makes a call writes the request and reads the response on a pooled
// keep-alive connection itself. net/http's Transport hands every request
// to a writer and a reader goroutine of its connection instead, which
// costs the driver CPU that it shares with the server it measures.
//
// It speaks plain HTTP/1.1 (no proxy, no compression) and passes https
// requests to a fallback; it keeps at most cap(idle) idle connections, and
// retries a request once on a new connection when a reused one turns out
// closed before any response.
type directTransport struct {
	dial     func(ctx context.Context, network, addr string) (net.Conn, error)
	idle     chan *directConn // idle keep-alive connections
	fallback http.RoundTripper
}

// directConn is one connection with its buffers.
type directConn struct {
	host string // the host:port it is connected to
	c    net.Conn
	br   *bufio.Reader
	bw   *bufio.Writer
}

// pastDeadline interrupts a connection's pending reads and writes.
var pastDeadline = time.Unix(1, 0)

func newDirectTransport(maxIdle int, dial func(ctx context.Context, network, addr string) (net.Conn, error), fallback http.RoundTripper) *directTransport {
	return &directTransport{dial: dial, idle: make(chan *directConn, max(1, maxIdle)), fallback: fallback}
}

// RoundTrip sends req and returns its response; the response's body gives
// the connection back when read to its end and closed. A call interrupted
// by req's context returns the context's error.
func (t *directTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Scheme != "http" {
		return t.fallback.RoundTrip(req)
	}
	ctx := req.Context()
	host := req.URL.Host
	if req.URL.Port() == "" {
		host = net.JoinHostPort(req.URL.Hostname(), "80")
	}
	for attempt := 0; ; attempt++ {
		dc, reused, err := t.get(ctx, host)
		if err != nil {
			closeRequestBody(req)
			return nil, err
		}
		resp, err := t.exchange(ctx, dc, req)
		if err == nil {
			return resp, nil
		}
		if reused && attempt == 0 && ctx.Err() == nil && req.GetBody != nil && staleConn(err) {
			body, gerr := req.GetBody()
			if gerr == nil { // the server closed an idle connection: once more on a new one
				req = req.Clone(ctx)
				req.Body = body
				continue
			}
		}
		closeRequestBody(req)
		return nil, err
	}
}

// exchange writes req on dc and reads the response's head. On error dc is
// closed.
func (t *directTransport) exchange(ctx context.Context, dc *directConn, req *http.Request) (*http.Response, error) {
	stop := context.AfterFunc(ctx, func() { _ = dc.c.SetDeadline(pastDeadline) })
	err := req.Write(dc.bw)
	if err == nil {
		err = dc.bw.Flush()
	}
	var resp *http.Response
	if err == nil {
		resp, err = http.ReadResponse(dc.br, req)
	}
	if err != nil {
		stop()
		_ = dc.c.Close()
		if cerr := ctx.Err(); cerr != nil {
			return nil, fmt.Errorf("%w (%v)", cerr, err)
		}
		return nil, err
	}
	resp.Body = &directBody{ReadCloser: resp.Body, ctx: ctx, t: t, dc: dc, stop: stop, reuse: !resp.Close}
	return resp, nil
}

// get returns an idle connection to host, or a new one.
func (t *directTransport) get(ctx context.Context, host string) (*directConn, bool, error) {
	select {
	case dc := <-t.idle:
		if dc.host == host {
			return dc, true, nil
		}
		_ = dc.c.Close()
	default:
	}
	c, err := t.dial(ctx, "tcp", host)
	if err != nil {
		return nil, false, err
	}
	return &directConn{host: host, c: c, br: bufio.NewReaderSize(c, 16<<10), bw: bufio.NewWriterSize(c, 16<<10)}, false, nil
}

// put keeps dc for reuse, or closes it when the pool is full.
func (t *directTransport) put(dc *directConn) {
	select {
	case t.idle <- dc:
	default:
		_ = dc.c.Close()
	}
}

// CloseIdleConnections closes the idle connections, the fallback's too
// (http.Client calls it).
func (t *directTransport) CloseIdleConnections() {
	if f, ok := t.fallback.(interface{ CloseIdleConnections() }); ok {
		f.CloseIdleConnections()
	}
	for {
		select {
		case dc := <-t.idle:
			_ = dc.c.Close()
		default:
			return
		}
	}
}

// staleConn reports whether err is a reused connection found closed by the
// server before it answered.
func staleConn(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

func closeRequestBody(req *http.Request) {
	if req.Body != nil {
		_ = req.Body.Close()
	}
}

// directBody is a response body that gives its connection back to the
// pool once read to the end and closed.
type directBody struct {
	io.ReadCloser
	ctx   context.Context
	t     *directTransport
	dc    *directConn
	stop  func() bool
	reuse bool // the server keeps the connection open
	eof   bool
	once  sync.Once
}

func (b *directBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	switch {
	case err == io.EOF:
		b.eof = true
	case err != nil && b.ctx.Err() != nil:
		err = fmt.Errorf("%w (%v)", b.ctx.Err(), err)
	}
	return n, err
}

func (b *directBody) Close() error {
	b.once.Do(func() {
		err := b.ReadCloser.Close()
		// stop is false once the context has poisoned the connection.
		if b.stop() && b.eof && b.reuse && err == nil {
			b.t.put(b.dc)
			return
		}
		_ = b.dc.c.Close()
	})
	return nil
}
