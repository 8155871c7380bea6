package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// ProtocolVersion is the MCP revision the driver negotiates.
const ProtocolVersion = "2025-11-25"

// Header names and values of the Streamable HTTP transport.
const (
	headerSessionID       = "Mcp-Session-Id"
	headerProtocolVersion = "MCP-Protocol-Version"
	acceptPost            = "application/json, text/event-stream"
	acceptStream          = "text/event-stream"
	contentJSON           = "application/json"
)

// newHTTPClient returns a client that keeps up to conns idle keep-alive
// connections to the target (see [directTransport]), and whose connections
// take their source address round-robin from 127.0.0.1 ..
// 127.0.0.sourceIPs.
func newHTTPClient(conns, sourceIPs int) *http.Client {
	var next atomic.Uint32
	dialer := func(ctx context.Context, network, addr string) (net.Conn, error) {
		d := net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
		if sourceIPs > 1 {
			n := next.Add(1) % uint32(sourceIPs)
			d.LocalAddr = &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(1+n))}
		}
		return d.DialContext(ctx, network, addr)
	}
	// https targets go through net/http's Transport.
	fallback := &http.Transport{
		DialContext:         dialer,
		MaxIdleConns:        conns,
		MaxIdleConnsPerHost: conns,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}
	return &http.Client{Transport: newDirectTransport(conns, dialer, fallback)}
}

// session is one MCP session of the driver.
type session struct {
	hc     *http.Client
	url    string
	id     string      // Mcp-Session-Id; empty for stateless servers
	proto  string      // negotiated protocol revision; empty before initialize
	header http.Header // sent with every request; canonical keys
	nextID atomic.Int64
	rec    *recorder
}

// callError is a failed request, classified by kind (see the Kind
// constants).
type callError struct {
	kind string
	err  error
}

func (e *callError) Error() string { return e.kind + ": " + e.err.Error() }
func (e *callError) Unwrap() error { return e.err }

// retryLater is an HTTP refusal that said when to try again (Retry-After,
// in seconds as HTTP has it).
type retryLater struct {
	*callError
	after time.Duration
}

func (e *retryLater) Unwrap() error { return e.callError }

// errKind is the error kind of err; "" for nil.
func errKind(err error) string {
	if err == nil {
		return ""
	}
	var ce *callError
	if errors.As(err, &ce) {
		return ce.kind
	}
	return classifyTransport(err)
}

// classifyTransport sorts an error from the HTTP round trip into timeout,
// canceled or transport.
func classifyTransport(err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return KindTimeout
	case errors.Is(err, context.Canceled):
		return KindCanceled
	default:
		return KindTransport
	}
}

// post sends one JSON-RPC message and returns the response; the caller
// closes its body.
func (s *session) post(ctx context.Context, body []byte) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url, bytes.NewReader(body))
	if err != nil {
		return nil, &callError{KindTransport, err}
	}
	h := req.Header
	for k, v := range s.header {
		h[k] = v
	}
	h["Content-Type"] = []string{contentJSON}
	h["Accept"] = []string{acceptPost}
	if s.id != "" {
		h[headerSessionID] = []string{s.id}
	}
	if s.proto != "" {
		h[headerProtocolVersion] = []string{s.proto}
	}
	resp, err := s.hc.Do(req)
	if err != nil {
		return nil, &callError{classifyTransport(err), err}
	}
	return resp, nil
}

// request sends a JSON-RPC request with a fresh id and returns its result.
// params must be JSON.
func (s *session) request(ctx context.Context, method string, params []byte) (json.RawMessage, *http.Response, error) {
	id := s.nextID.Add(1)
	body := make([]byte, 0, 64+len(method)+len(params))
	body = append(body, `{"jsonrpc":"2.0","id":`...)
	body = strconv.AppendInt(body, id, 10)
	body = append(body, `,"method":"`...)
	body = append(body, method...)
	body = append(body, `","params":`...)
	body = append(body, params...)
	body = append(body, '}')
	resp, err := s.post(ctx, body)
	if err != nil {
		return nil, nil, err
	}
	defer closeBody(resp)
	if resp.StatusCode != http.StatusOK {
		ce := &callError{httpKind(resp.StatusCode), fmt.Errorf("%s: HTTP %s", method, resp.Status)}
		if after := retryAfter(resp.Header.Get("Retry-After")); after > 0 {
			return nil, resp, &retryLater{ce, after}
		}
		return nil, resp, ce
	}
	result, err := readResponse(resp, id)
	if err != nil {
		if k := classifyTransport(err); k != KindTransport {
			return nil, resp, &callError{k, err}
		}
		return nil, resp, err
	}
	return result, resp, nil
}

// initialize opens the session: initialize, then notifications/initialized.
func (s *session) initialize(ctx context.Context) error {
	params := `{"protocolVersion":"` + ProtocolVersion + `","capabilities":{},"clientInfo":{"name":"mcpstream-bench","version":"1"}}`
	result, resp, err := s.request(ctx, "initialize", []byte(params))
	if err != nil {
		return fmt.Errorf("initialize: %w", err)
	}
	var ir struct {
		ProtocolVersion string `json:"protocolVersion"`
	}
	if err := json.Unmarshal(result, &ir); err != nil || ir.ProtocolVersion == "" {
		return &callError{KindBadResponse, fmt.Errorf("initialize: result without protocolVersion: %.200s", result)}
	}
	s.id = resp.Header.Get(headerSessionID)
	s.proto = ir.ProtocolVersion
	nresp, err := s.post(ctx, []byte(`{"jsonrpc":"2.0","method":"notifications/initialized"}`))
	if err != nil {
		return fmt.Errorf("notifications/initialized: %w", err)
	}
	closeBody(nresp)
	if nresp.StatusCode != http.StatusAccepted && nresp.StatusCode != http.StatusOK {
		return &callError{httpKind(nresp.StatusCode), fmt.Errorf("notifications/initialized: HTTP %s, want 202", nresp.Status)}
	}
	return nil
}

// call runs one tools/call with the prepared params; nil means the call
// succeeded: a result whose isError is not true.
func (s *session) call(ctx context.Context, params []byte) error {
	result, _, err := s.request(ctx, "tools/call", params)
	if err != nil {
		return err
	}
	if isToolError(result) {
		return &callError{KindToolError, errors.New("result has isError: true")}
	}
	return nil
}

// openStream opens the session's GET event stream. On success the caller
// owns the response and closes its body to end the stream.
func (s *session) openStream(ctx context.Context) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.url, nil)
	if err != nil {
		return nil, &callError{KindTransport, err}
	}
	for k, v := range s.header {
		req.Header[k] = v
	}
	req.Header.Set("Accept", acceptStream)
	if s.id != "" {
		req.Header.Set(headerSessionID, s.id)
	}
	if s.proto != "" {
		req.Header.Set(headerProtocolVersion, s.proto)
	}
	resp, err := s.hc.Do(req)
	if err != nil {
		return nil, &callError{classifyTransport(err), err}
	}
	if resp.StatusCode != http.StatusOK || !isEventStream(resp.Header.Get("Content-Type")) {
		closeBody(resp)
		kind := httpKind(resp.StatusCode)
		if resp.StatusCode == http.StatusOK {
			kind = KindBadResponse
		}
		return nil, &callError{kind, fmt.Errorf("GET stream: HTTP %s, Content-Type %q", resp.Status, resp.Header.Get("Content-Type"))}
	}
	return resp, nil
}

// initializeRetrying is initialize, tried again after the Retry-After (at
// least 100ms) while the server refuses it with HTTP 429, until ctx ends.
func (s *session) initializeRetrying(ctx context.Context) error {
	for {
		err := s.initialize(ctx)
		if errKind(err) != KindHTTP429 {
			return err
		}
		var later *retryLater
		wait := 100 * time.Millisecond
		if errors.As(err, &later) {
			wait = max(wait, later.after)
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return err
		}
	}
}

// retryAfter parses a Retry-After header given in seconds; 0 when absent
// or a date.
func retryAfter(v string) time.Duration {
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil || n < 0 {
		return 0
	}
	return time.Duration(n) * time.Second
}

// canonicalHeader is h with canonical keys, for sessions to copy as is.
func canonicalHeader(h http.Header) http.Header {
	if len(h) == 0 {
		return nil
	}
	c := make(http.Header, len(h))
	for k, v := range h {
		c[http.CanonicalHeaderKey(k)] = v
	}
	return c
}

// httpKind is the error kind of an HTTP status.
func httpKind(status int) string {
	if status == http.StatusServiceUnavailable {
		return KindHTTP503
	}
	return "http-" + strconv.Itoa(status)
}

// closeBody drains a little of what is left of a response body, so that the
// connection can be reused, and closes it.
func closeBody(resp *http.Response) {
	_, _ = io.CopyN(io.Discard, resp.Body, 64<<10)
	_ = resp.Body.Close()
}

// Probe opens one MCP session at url (initialize, then
// notifications/initialized) and reports whether the server answered
// properly; use it to wait for a server to be ready.
func Probe(ctx context.Context, url string) error { return ProbeAs(ctx, url, nil) }

// ProbeAs is Probe with header sent with each request (the credentials of
// a server that refuses anonymous clients).
func ProbeAs(ctx context.Context, url string, header http.Header) error {
	hc := newHTTPClient(1, 1)
	defer hc.CloseIdleConnections()
	s := &session{hc: hc, url: url, header: canonicalHeader(header)}
	return s.initialize(ctx)
}

// ProbeCall opens one MCP session at url, makes one tools/call of tool with
// args (a JSON object) as a Run does, accepting either response type, and
// returns the media type the server chose for the call's response:
// application/json (one JSON body) or text/event-stream.
func ProbeCall(ctx context.Context, url, tool string, args json.RawMessage) (string, error) {
	hc := newHTTPClient(1, 1)
	defer hc.CloseIdleConnections()
	s := &session{hc: hc, url: url}
	if err := s.initialize(ctx); err != nil {
		return "", err
	}
	params, err := json.Marshal(struct {
		Name      string          `json:"name"`
		Arguments json.RawMessage `json:"arguments"`
	}{tool, args})
	if err != nil {
		return "", err
	}
	result, resp, err := s.request(ctx, "tools/call", params)
	if err != nil {
		return "", fmt.Errorf("tools/call %s: %w", tool, err)
	}
	if isToolError(result) {
		return "", fmt.Errorf("tools/call %s: result has isError: true", tool)
	}
	return mediaType(resp.Header.Get("Content-Type")), nil
}
