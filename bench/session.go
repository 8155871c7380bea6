package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"
)

// Client opens MCP sessions one by one at a Streamable HTTP endpoint, over
// the driver's HTTP/1.1 transport, for harnesses that drive sessions
// themselves (sessions that come and go, streams held for a while) rather
// than through a [Run]. It is safe for concurrent use.
type Client struct {
	hc  *http.Client
	url string
}

// NewClient returns a client of the endpoint url that keeps up to conns
// idle keep-alive connections.
func NewClient(url string, conns int) *Client {
	return &Client{hc: newHTTPClient(conns, 1), url: url}
}

// CloseIdleConnections closes the client's idle connections.
func (c *Client) CloseIdleConnections() { c.hc.CloseIdleConnections() }

// Session is one MCP session of a [Client]. Calls on it may run
// concurrently.
type Session struct {
	s *session
}

// Open initializes a new session (initialize, then
// notifications/initialized). Its error's kind is [ErrorKind].
func (c *Client) Open(ctx context.Context) (*Session, error) {
	s := &session{hc: c.hc, url: c.url}
	if err := s.initialize(ctx); err != nil {
		return nil, err
	}
	return &Session{s: s}, nil
}

// ID is the session's Mcp-Session-Id ("" from a stateless server).
func (s *Session) ID() string { return s.s.id }

// Call makes one tools/call with params, a JSON object with the tool's name
// and arguments (see [CallParams]); nil means a result whose isError is not
// true. If ctx ends first, the call's connection is closed at once, as a
// client that goes away mid-call does, and the error is ctx's.
func (s *Session) Call(ctx context.Context, params []byte) error {
	return s.s.call(ctx, params)
}

// OpenStream opens the session's GET event stream; the caller reads it and
// closes it. Ending ctx ends the stream.
func (s *Session) OpenStream(ctx context.Context) (io.ReadCloser, error) {
	resp, err := s.s.openStream(ctx)
	if err != nil {
		return nil, err
	}
	return resp.Body, nil
}

// Delete ends the session as a client that is done with it does: HTTP
// DELETE with its Mcp-Session-Id, answered 2xx.
func (s *Session) Delete(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodDelete, s.s.url, nil)
	if err != nil {
		return &callError{KindTransport, err}
	}
	req.Header[headerSessionID] = []string{s.s.id}
	req.Header[headerProtocolVersion] = []string{s.s.proto}
	resp, err := s.s.hc.Do(req)
	if err != nil {
		return &callError{classifyTransport(err), err}
	}
	closeBody(resp)
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return &callError{httpKind(resp.StatusCode), fmt.Errorf("DELETE: HTTP %s", resp.Status)}
	}
	return nil
}

// ErrorKind classifies an error of a Client or Session as one of the Kind
// constants, "http-<status>" or "rpc-<code>"; "" for nil.
func ErrorKind(err error) string { return errKind(err) }

// CallParams are the params of a tools/call of tool with args (a JSON
// object; nil for none).
func CallParams(tool string, args json.RawMessage) ([]byte, error) {
	if len(args) == 0 {
		args = json.RawMessage("{}")
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(args, &obj); err != nil || obj == nil {
		return nil, errors.New("bench: tool arguments must be a JSON object")
	}
	return json.Marshal(struct {
		Name      string          `json:"name"`
		Arguments json.RawMessage `json:"arguments"`
	}{tool, args})
}

// PIDCPU is the CPU time (user and system) process pid has used so far,
// from /proc, or -1 where that cannot be read; its resolution is 10 ms.
func PIDCPU(pid int) time.Duration { return pidCPU(pid) }
