package bridge

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"math/rand/v2"
	"mime"
	"net/http"
	"strconv"
	"time"

	"github.com/mcpstream/mcpstream/schema"
)

// sseState is what a reader of an SSE stream keeps across its
// reconnections: the last event id the stream set, sent back as
// Last-Event-ID, and the reconnection time it asked for (retry:).
type sseState struct {
	lastID string
	retry  time.Duration // 0 when the stream set none
}

// events relays the data of each event of an SSE stream until it ends;
// with related set (MarkRelated), the server's requests and notifications
// on it are marked with that request id. With st set, it records there
// the stream's event ids and reconnection time.
func (b *Bridge) events(body io.Reader, initialize bool, related schema.ID, st *sseState) {
	sc := bufio.NewScanner(body)
	sc.Buffer(make([]byte, 64<<10), MaxMessage)
	var data []byte
	var id string // the last event id buffer, kept across reconnections
	if st != nil {
		id = st.lastID
	}
	for sc.Scan() {
		line := sc.Bytes()
		if len(line) == 0 {
			if st != nil {
				st.lastID = id // set at each dispatch, as the SSE spec has it
			}
			if len(data) > 0 {
				if initialize {
					b.learn(&schema.Message{Method: schema.MethodInitialize}, data)
				}
				if related != nil {
					data = markRelated(data, related)
				}
				b.send(data)
			}
			data = data[:0]
			continue
		}
		field, value, _ := bytes.Cut(line, []byte(":"))
		value = bytes.TrimPrefix(value, []byte(" "))
		switch string(field) {
		case "data":
			if len(data) > 0 {
				data = append(data, '\n')
			}
			data = append(data, value...)
		case "id":
			if bytes.IndexByte(value, 0) < 0 {
				id = string(value)
			}
		case "retry":
			if ms, err := strconv.ParseUint(string(value), 10, 32); err == nil && st != nil {
				st.retry = time.Duration(ms) * time.Millisecond
			}
		}
	}
	if len(data) > 0 {
		if related != nil {
			data = markRelated(data, related)
		}
		b.send(data)
	}
}

// The session's GET stream is opened again after it ends, after a delay:
// streamRetryMin (jittered), or the reconnection time the stream set
// (retry:), doubled for each time in a row it failed to open or ended
// within streamStable of opening, up to streamRetryMax; a refusal's
// Retry-After, within streamRetryMax, instead.
const (
	streamRetryMin = 250 * time.Millisecond
	streamRetryMax = 30 * time.Second
	streamStable   = 30 * time.Second
)

// openStream opens the session's GET stream, for the server's own
// notifications and requests, once per session, and keeps it open (see
// followStream) in a goroutine that Run waits for.
func (b *Bridge) openStream(ctx context.Context) {
	b.mu.Lock()
	session, version, opened := b.session, b.version, b.streams
	b.streams = true
	b.mu.Unlock()
	if session == "" || opened {
		return
	}
	b.bg.Add(1)
	go func() {
		defer b.bg.Done()
		b.followStream(ctx, session, version)
	}()
}

// followStream relays the session's GET stream, and opens it again
// whenever it ends (the gateway restarted or closed it, the connection
// dropped), with Last-Event-ID set to the last event id seen on it, so
// that the server replays what it missed, until ctx ends or the bridge
// shuts down. It stops for good when the endpoint answers 404 (the
// session is lost: the bridge ends), 405 (the endpoint offers no GET
// stream) or another client error.
func (b *Bridge) followStream(ctx context.Context, session, version string) {
	var st sseState
	fails := 0 // in a row
	for {
		select {
		case <-ctx.Done():
			return
		case <-b.closing:
			return // no stream is opened once the bridge shuts down
		default:
		}
		began := time.Now()
		status, after, err := b.streamOnce(ctx, session, version, &st)
		switch {
		case ctx.Err() != nil:
			return
		case status == http.StatusNotFound:
			b.sessionLost(session, "the GET stream")
			return
		case status == http.StatusMethodNotAllowed:
			b.Log.Info("the endpoint offers no GET stream: the server's own messages cannot reach the client", "url", b.URL)
			return
		case status >= 400 && status < 500 && status != http.StatusRequestTimeout && status != http.StatusTooManyRequests:
			b.Log.Warn("the endpoint refused the GET stream: the server's own messages cannot reach the client",
				"status", status, "url", b.URL)
			return
		case status == http.StatusOK && time.Since(began) >= streamStable:
			fails = 0 // it was open a while: start over
		}
		delay := streamRetryDelay(st.retry, fails, after)
		fails++
		b.Log.Debug("the GET stream ended: opening it again", "status", status, "err", err, "in", delay, "last_event_id", st.lastID)
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return
		case <-b.closing:
			t.Stop()
			return
		}
	}
}

// streamRetryDelay is the delay before opening the GET stream again after
// fails failures in a row, with retry the stream's reconnection time (0:
// none) and after a refusal's Retry-After (0: none).
func streamRetryDelay(retry time.Duration, fails int, after time.Duration) time.Duration {
	if after > 0 {
		return min(after, streamRetryMax)
	}
	d := retry
	if d <= 0 {
		// Jittered, so that the clients of a gateway that restarts come
		// back apart.
		d = streamRetryMin/2 + rand.N(streamRetryMin/2+1)
	}
	for range fails {
		if d >= streamRetryMax {
			break
		}
		d *= 2
	}
	return min(d, streamRetryMax)
}

// streamOnce opens the GET stream once, resuming after st.lastID, and
// relays it until it ends. It returns the status of the answer (0 when
// there was none), and the Retry-After of a refusal.
func (b *Bridge) streamOnce(ctx context.Context, session, version string, st *sseState) (status int, retryAfter time.Duration, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, b.URL, nil)
	if err != nil {
		return 0, 0, err
	}
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set(schema.HeaderSessionID, session)
	req.Header.Set(schema.HeaderProtocolVersion, version)
	if st.lastID != "" {
		req.Header.Set("Last-Event-ID", st.lastID)
	}
	resp, err := b.HTTP.Do(req)
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s > 0 {
		retryAfter = time.Duration(s) * time.Second
	}
	mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if resp.StatusCode == http.StatusOK && mt == "text/event-stream" {
		b.events(resp.Body, false, nil, st)
	}
	return resp.StatusCode, retryAfter, nil
}
