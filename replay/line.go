package replay

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/mcpstream/mcpstream/schema"
	"github.com/mcpstream/mcpstream/streams"
)

// TimeFormat is how a line writes times: RFC 3339 in UTC with
// nanoseconds (what the stream stored), a fixed width so that lines sort
// as text and a time given back to --since or --until selects exactly.
const TimeFormat = "2006-01-02T15:04:05.000000000Z07:00"

// Line is one recorded request as replay prints it, one JSON object a
// line. Result, Error and Duration are set only when the group records its
// results and they were asked for ([Options.Results]); Result and Error
// exclude each other.
type Line struct {
	Seq       uint64          `json:"seq"`
	Stream    string          `json:"stream"`
	Time      string          `json:"time"`
	Group     string          `json:"group"`
	Key       string          `json:"key"`
	Session   string          `json:"session,omitempty"`
	Principal string          `json:"principal,omitempty"`
	Revision  string          `json:"revision,omitempty"`
	Method    string          `json:"method"`
	Tool      string          `json:"tool,omitempty"`
	Arguments json.RawMessage `json:"arguments,omitempty"`
	TraceID   string          `json:"trace_id,omitempty"`
	Attempt   int             `json:"attempt"`
	Deadline  string          `json:"deadline,omitempty"`
	// Rerun is set on a request that a re-run ([Rerun]) sent: its client
	// declared the experimental capability [RerunCapability].
	Rerun bool `json:"rerun,omitempty"`

	Result   json.RawMessage `json:"result,omitempty"`
	Error    *schema.Error   `json:"error,omitempty"`
	Duration string          `json:"duration,omitempty"`

	// at is Time parsed, for pacing a re-run (--rate original).
	at time.Time
	// live is set on a request read after the range (Follow).
	live bool
}

// At is when the request was stored in its stream.
func (l *Line) At() time.Time { return l.at }

// Live reports whether the request was read after the range, as it was
// stored (with Follow).
func (l *Line) Live() bool { return l.live }

// NewLine decodes a recorded request into its line. It returns an error
// naming the message when its envelope or its arguments cannot be decoded.
func NewLine(m *streams.Recorded) (*Line, error) {
	env := m.Envelope
	l := &Line{Seq: m.Seq, Stream: m.Stream, Time: m.Time.UTC().Format(TimeFormat), Group: m.Group,
		Key: env.Key, Session: env.Session, Principal: env.Principal, Revision: env.Revision,
		Method: env.Method, Tool: env.Name, TraceID: TraceID(env.TraceParent),
		Attempt: max(int(env.Attempt), 1), Rerun: SentByRerun(env), at: m.Time, live: m.Live}
	if d := env.DeadlineTime(); !d.IsZero() {
		l.Deadline = d.UTC().Format(TimeFormat)
	}
	if len(env.Params) > 0 {
		args, err := schema.MsgpackToJSON(nil, env.Params)
		if err != nil {
			return nil, fmt.Errorf("decoding the arguments of %s seq %d: %w", m.Stream, m.Seq, err)
		}
		l.Arguments = args
	}
	return l, nil
}

// TraceID is the trace id of a W3C traceparent ("00-<trace id>-<span
// id>-<flags>"), or "" when there is none.
func TraceID(traceparent string) string {
	parts := strings.Split(traceparent, "-")
	if len(parts) < 4 || len(parts[1]) != 32 {
		return ""
	}
	return parts[1]
}

// RerunCapability is the experimental client capability a re-run's
// client sessions declare ([Rerun]): the gateway keeps a session's
// capabilities in every envelope it sends, so the requests a re-run sent
// are known as such wherever they are read, by any later replay too.
const RerunCapability = "io.mcpstream/replay"

// SentByRerun reports whether env was sent by a re-run: its client
// declared [RerunCapability].
func SentByRerun(env *schema.Envelope) bool {
	if env == nil || !bytes.Contains(env.ClientCaps, []byte(RerunCapability)) {
		return false
	}
	caps, err := schema.MsgpackToJSON(nil, env.ClientCaps)
	if err != nil {
		return false
	}
	var c struct {
		Experimental map[string]json.RawMessage `json:"experimental"`
	}
	if json.Unmarshal(caps, &c) != nil {
		return false
	}
	_, ok := c.Experimental[RerunCapability]
	return ok
}
