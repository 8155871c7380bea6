package gateway

import (
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mcpstream/mcpstream/schema"
)

// Hostile and slow clients. Every phase of a connection has a deadline,
// but none spans a whole request, which event streams and calls that run
// for minutes need: the request's headers (Config.HeaderTimeout), its body
// (Config.BodyTimeout plus the time Config.MinBodyRate allows for the
// bytes read so far), each write of an answer (writeTimeout, plus the
// time MinBodyRate allows for its bytes: armWrite, and the event streams'
// own), and the wait for the next request on a kept-alive connection
// (Config.IdleTimeout). [Gateway.ConfigureServer] sets the http.Server's
// part; readBody the body's, on the connection, for the time it reads.
// Connections are capped ([Gateway.LimitListener]).

// ConfigureServer sets srv's deadlines for the gateway's clients: the
// headers of a request must arrive within Config.HeaderTimeout, and a
// kept-alive connection may idle for Config.IdleTimeout. It leaves
// ReadTimeout and WriteTimeout off: a request's body has a deadline of
// its own, and a whole-request deadline would cut event streams and long
// calls (net/http cancels a request's context when its connection's read
// deadline passes). It also bounds the headers to 64 KiB.
func (g *Gateway) ConfigureServer(srv *http.Server) {
	srv.ReadHeaderTimeout = g.cfg.HeaderTimeout
	srv.IdleTimeout = g.cfg.IdleTimeout
	srv.ReadTimeout, srv.WriteTimeout = 0, 0
	srv.MaxHeaderBytes = 64 << 10
}

// bodyMemory counts the bytes of request bodies the gateway holds, up to
// Config.MaxBodyMemory: a body's bytes are taken as they are read, and
// given back when its POST has been served (or refused).
type bodyMemory struct {
	max  int64
	used atomic.Int64
}

// take counts n more bytes, or reports false (counting none) when they
// would pass the bound.
func (m *bodyMemory) take(n int64) bool {
	if m.used.Add(n) > m.max {
		m.used.Add(-n)
		return false
	}
	return true
}

// give returns n bytes that take counted.
func (m *bodyMemory) give(n int) { m.used.Add(-int64(n)) }

// errBodyMemory is a body's read refused by bodyMemory.
var errBodyMemory = errors.New("the gateway holds too many request bytes")

// bodyReader reads a request's body under a deadline on its connection
// that moves with the bytes read: base, plus what rate allows for them.
// Each read's bytes are taken from mem.
type bodyReader struct {
	r     io.Reader
	rc    http.ResponseController
	mem   *bodyMemory
	start time.Time
	base  time.Duration
	rate  int64
	n     int64
}

func (b *bodyReader) Read(p []byte) (int, error) {
	// Not every ResponseWriter can set deadlines (ErrNotSupported): then
	// the body is read without one.
	_ = b.rc.SetReadDeadline(b.start.Add(b.base + time.Duration(b.n)*time.Second/time.Duration(b.rate)))
	n, err := b.r.Read(p)
	if n > 0 && !b.mem.take(int64(n)) {
		return 0, errBodyMemory
	}
	b.n += int64(n)
	return n, err
}

// readBody reads a POST's body for every transport, within its bounds:
// over Config.MaxBody it answers 413; past Config.MaxBodyMemory (the
// bodies the gateway holds) 503 with -32000, closing the connection;
// slower than its deadline 408; a body that is not UTF-8 or escapes a
// lone surrogate 400 with -32700; nested deeper than Config.MaxDepth 400
// with -32600; a body that cannot be read 400 with -32700. It then
// returns false. Malformed JSON is left to schema.DecodeMessage (-32700).
// The body's bytes stay counted in the gateway's body memory until the
// caller gives them back (g.bodies.give(len(body))), once the POST has
// been served.
func (g *Gateway) readBody(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	sw := serverWriter(w)
	br := &bodyReader{r: http.MaxBytesReader(sw, r.Body, g.cfg.MaxBody), rc: *http.NewResponseController(sw), mem: &g.bodies, start: time.Now(),
		base: g.cfg.BodyTimeout, rate: g.cfg.MinBodyRate}
	size := r.ContentLength
	if size > g.cfg.MaxBody {
		size = -1 // read up to the bound, then refused
	}
	body, err := readAll(br, size)
	if err != nil {
		g.bodies.give(int(br.n))
		// The deadline stays: what net/http reads of the rest of the body
		// after the answer must not wait on a slow client either.
		var tooBig *http.MaxBytesError
		var ne net.Error
		switch {
		case errors.Is(err, errBodyMemory):
			// The rest of the body is not read: the connection goes.
			w.Header().Set("Connection", "close")
			writeError(w, http.StatusServiceUnavailable, nil, g.overloaded(refusedBodyMemory))
		case errors.As(err, &tooBig):
			writeError(w, http.StatusRequestEntityTooLarge, nil, schema.Errorf(schema.CodeInvalidRequest, "request body exceeds %d bytes", g.cfg.MaxBody))
		case errors.As(err, &ne) && ne.Timeout():
			w.Header().Set("Connection", "close")
			writeError(w, http.StatusRequestTimeout, nil, schema.Errorf(schema.CodeInvalidRequest,
				"request body too slow: %d bytes in %s", br.n, time.Since(br.start).Round(time.Millisecond)))
		default:
			writeError(w, http.StatusBadRequest, nil, schema.Errorf(schema.CodeParseError, "reading body: %v", err))
		}
		return nil, false
	}
	// Answers may take long, and net/http reads on, to see the client go:
	// the body's deadline must not outlast it. Over HTTP/1, net/http clears
	// it itself as the body's end is read (and its background read
	// begins); HTTP/2 reads each stream's body apart, and is told.
	if r.ProtoMajor != 1 {
		_ = br.rc.SetReadDeadline(time.Time{})
	}
	if err := schema.CheckText(body); err != nil {
		g.bodies.give(len(body))
		writeError(w, http.StatusBadRequest, nil, schema.Errorf(schema.CodeParseError, "parse error: %v", err))
		return nil, false
	}
	if err := schema.CheckDepth(body, g.cfg.MaxDepth); err != nil {
		g.bodies.give(len(body))
		writeError(w, http.StatusBadRequest, nil, schema.Errorf(schema.CodeInvalidRequest, "JSON nested deeper than %d", g.cfg.MaxDepth))
		return nil, false
	}
	return body, true
}

// smallBody bounds the body that readAll reads into one buffer of the
// size announced before its bytes arrive: no more than net/http's own
// read buffer of a connection.
const smallBody = 4 << 10

// readAll reads r to its end. A body of a known size up to smallBody
// (size is its Content-Length; -1 when unknown) is read into one buffer of
// that size, since net/http's body of a known length ends there; any other
// as io.ReadAll does, the buffer growing with the bytes that arrive.
func readAll(r io.Reader, size int64) ([]byte, error) {
	if size < 0 || size > smallBody {
		return io.ReadAll(r)
	}
	b := make([]byte, 0, size)
	for len(b) < cap(b) {
		n, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err == io.EOF {
			break
		}
		if err != nil {
			return b, err
		}
	}
	return b, nil
}

// heldAnswer is the most of a response's body net/http holds in its
// buffer until the handler returns (its bufferBeforeChunkingSize): a body
// no larger reaches the connection only as the response is flushed, under
// the deadline front arms then.
const heldAnswer = 2 << 10

// armWrite bounds the writes of an answer of n more bytes to a client
// that does not read: writeTimeout, plus what Config.MinBodyRate allows
// for n. net/http clears the deadline once the response is flushed.
func (g *Gateway) armWrite(w http.ResponseWriter, n int) {
	d := writeTimeout + time.Duration(n)*time.Second/time.Duration(g.cfg.MinBodyRate)
	_ = http.NewResponseController(serverWriter(w)).SetWriteDeadline(time.Now().Add(d))
}

// LimitListener returns ln with at most Config.MaxConns connections open
// at once (event streams, which the gateway takes over from the
// http.Server, included). A connection beyond the cap is accepted and
// answered at once with 503, Retry-After and a JSON-RPC overloaded error
// (-32000), then closed, rather than left in the backlog to time out; at
// most 64 such answers are under way at a time (beyond them, connections
// are closed unanswered), each within a second. Closing the listener
// waits for them.
func (g *Gateway) LimitListener(ln net.Listener) net.Listener {
	return &connLimiter{Listener: ln, g: g, open: make(chan struct{}, g.cfg.MaxConns), refusing: make(chan struct{}, 64)}
}

type connLimiter struct {
	net.Listener
	g        *Gateway
	open     chan struct{} // a token per open connection
	refusing chan struct{} // a token per refusal under way
	wg       sync.WaitGroup
}

func (l *connLimiter) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		select {
		case l.open <- struct{}{}:
			return &limitedConn{Conn: c, l: l}, nil
		default:
			l.refuse(c)
		}
	}
}

func (l *connLimiter) Close() error {
	err := l.Listener.Close()
	l.wg.Wait()
	return err
}

// refuse answers a connection beyond the cap with 503 and closes it. The
// request is read (a little of it, briefly) after the answer is sent, so
// that closing does not reset the connection before the client reads the
// answer.
func (l *connLimiter) refuse(c net.Conn) {
	select {
	case l.refusing <- struct{}{}:
	default:
		_ = c.Close()
		return
	}
	e := l.g.overloaded(refusedConnLimit)
	body := schema.AppendError(nil, nil, e)
	resp := "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nRetry-After: 1\r\nConnection: close\r\nContent-Length: " +
		strconv.Itoa(len(body)) + "\r\n\r\n" + string(body)
	l.wg.Go(func() {
		defer func() { <-l.refusing }()
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(time.Second))
		if _, err := io.WriteString(c, resp); err != nil {
			return
		}
		if cw, ok := c.(interface{ CloseWrite() error }); ok {
			_ = cw.CloseWrite()
			_, _ = io.Copy(io.Discard, io.LimitReader(c, 64<<10))
		}
	})
}

// limitedConn gives its token back when closed.
type limitedConn struct {
	net.Conn
	l    *connLimiter
	once sync.Once
}

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { <-c.l.open })
	return err
}
