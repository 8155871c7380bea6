package bench

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
)

// maxResponse bounds the bytes read from one response.
const maxResponse = 16 << 20

// rpcResponse is the part of a JSON-RPC response the driver looks at.
type rpcResponse struct {
	ID     json.RawMessage `json:"id"`
	Result json.RawMessage `json:"result"`
	Error  *struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// readResponse reads the JSON-RPC response to request id from resp, whose
// body is either one JSON object (application/json) or an event stream
// (text/event-stream) on which the response is the data of one event. A
// JSON-RPC error comes back as a *callError of kind "rpc-<code>".
func readResponse(resp *http.Response, id int64) (json.RawMessage, error) {
	body := io.LimitReader(resp.Body, maxResponse)
	ct := resp.Header.Get("Content-Type")
	if isEventStream(ct) {
		return readEventStream(body, id)
	}
	if !isJSON(ct) {
		return nil, &callError{KindBadResponse, fmt.Errorf("unexpected Content-Type %q", ct)}
	}
	b, err := io.ReadAll(body)
	if err != nil {
		return nil, err
	}
	msg, err := decodeResponse(b, id)
	if err != nil {
		return nil, err
	}
	if msg == nil {
		return nil, &callError{KindBadResponse, fmt.Errorf("response id does not match request id %d: %.200s", id, b)}
	}
	return msgResult(msg)
}

// readEventStream reads server-sent events until one carries the JSON-RPC
// response to request id. Other events (notifications, server-to-client
// requests, responses to other ids, comments) are skipped.
func readEventStream(r io.Reader, id int64) (json.RawMessage, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), maxResponse)
	var data []byte
	var lastErr error
	// dispatch looks at the data of the event that just ended.
	dispatch := func() *rpcResponse {
		if len(data) == 0 {
			return nil
		}
		msg, err := decodeResponse(data, id)
		data = data[:0]
		if err != nil {
			lastErr = err
			return nil
		}
		return msg
	}
	for sc.Scan() {
		line := sc.Bytes()
		switch {
		case len(line) == 0:
			if msg := dispatch(); msg != nil {
				return msgResult(msg)
			}
		case bytes.HasPrefix(line, []byte("data:")):
			v := line[5:]
			if len(v) > 0 && v[0] == ' ' {
				v = v[1:]
			}
			if len(data) > 0 {
				data = append(data, '\n')
			}
			data = append(data, v...)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if msg := dispatch(); msg != nil { // a last event without its blank line
		return msgResult(msg)
	}
	if lastErr != nil {
		return nil, lastErr
	}
	return nil, &callError{KindBadResponse, fmt.Errorf("event stream ended without the response to request %d", id)}
}

// decodeResponse decodes b as a JSON-RPC message. It returns nil, nil for a
// message that is not the response to id.
func decodeResponse(b []byte, id int64) (*rpcResponse, error) {
	var msg rpcResponse
	if err := json.Unmarshal(b, &msg); err != nil {
		return nil, &callError{KindBadResponse, fmt.Errorf("decoding JSON-RPC message: %w: %.200s", err, b)}
	}
	if msg.Result == nil && msg.Error == nil {
		return nil, nil // a notification or a server-to-client request
	}
	if string(bytes.TrimSpace(msg.ID)) != strconv.FormatInt(id, 10) {
		if msg.Error != nil && string(bytes.TrimSpace(msg.ID)) == "null" {
			return &msg, nil // an error about a request the server could not read
		}
		return nil, nil
	}
	return &msg, nil
}

// msgResult is the result of a response, or its JSON-RPC error.
func msgResult(msg *rpcResponse) (json.RawMessage, error) {
	if msg.Error != nil {
		return nil, &callError{"rpc-" + strconv.Itoa(msg.Error.Code), errors.New(msg.Error.Message)}
	}
	return msg.Result, nil
}

// isToolError reports whether a tools/call result has isError: true.
func isToolError(result json.RawMessage) bool {
	if !bytes.Contains(result, []byte(`"isError"`)) {
		return false
	}
	var r struct {
		IsError bool `json:"isError"`
	}
	return json.Unmarshal(result, &r) == nil && r.IsError
}

// isEventStream reports whether a Content-Type is text/event-stream.
func isEventStream(ct string) bool { return mediaType(ct) == "text/event-stream" }

// isJSON reports whether a Content-Type is application/json.
func isJSON(ct string) bool { return mediaType(ct) == "application/json" }

// mediaType is the lower-case media type of a Content-Type, without
// parameters.
func mediaType(ct string) string {
	mt, _, _ := strings.Cut(ct, ";")
	return strings.ToLower(strings.TrimSpace(mt))
}
