package schema

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/vmihailenco/msgpack/v5"
)

// EnvelopeVersion is the version of the Envelope and Reply layout written by
// this build. Decoders accept any version up to it and reject newer ones, so
// a mixed fleet fails loudly instead of misreading fields.
const EnvelopeVersion = 1

// ErrEnvelopeVersion is returned when an envelope or reply comes from a newer
// build than this one.
var ErrEnvelopeVersion = errors.New("schema: envelope version not supported")

// Envelope is one MCP request on its way from a gateway to a worker group, as
// msgpack on a request stream. Field names are short on the wire.
type Envelope struct {
	// V is the layout version (wide on purpose: a value past 255 must be
	// rejected, not wrapped into range).
	V int `msgpack:"v"`
	// Key identifies the request end to end: it is the Nats-Msg-Id, the key of
	// the stored result and the correlation id of the reply.
	Key    string `msgpack:"k"`
	Method string `msgpack:"m"`
	// Name is the tool, resource URI or prompt the method addresses.
	Name string `msgpack:"n,omitempty"`
	// Params is the JSON params of the request (for tools/call, the
	// arguments) compacted to msgpack by [JSONToMsgpack].
	Params    msgpack.RawMessage `msgpack:"p,omitempty"`
	Session   string             `msgpack:"s,omitempty"`
	Principal string             `msgpack:"u,omitempty"`
	// Revision is the MCP protocol revision the client speaks.
	Revision string `msgpack:"r,omitempty"`
	// Deadline is when the gateway stops waiting, in Unix nanoseconds.
	Deadline int64 `msgpack:"d"`
	// Attempt counts the publishes of this request, from 1: the gateway's,
	// and a draining worker's that hands it back on its last delivery.
	Attempt uint16 `msgpack:"a,omitempty"`
	// ReplyTo is the core NATS subject of the gateway waiting for the reply.
	ReplyTo string `msgpack:"t"`
	// ProgressToken is the request's _meta.progressToken, compacted: the
	// handler may report progress against it.
	ProgressToken msgpack.RawMessage `msgpack:"g,omitempty"`
	// RequestID is the client's JSON-RPC id (its JSON text): with Session,
	// it names the request in a notifications/cancelled.
	RequestID string `msgpack:"q,omitempty"`
	// ClientCaps are the client's capabilities (its JSON object,
	// compacted), so a handler knows what it may ask the client.
	ClientCaps msgpack.RawMessage `msgpack:"c,omitempty"`
	// InputResponses and RequestState come with the retry of a request
	// that was answered input_required (revision 2026-07-28 on): the
	// client's answers (a JSON object, compacted) and the opaque state it
	// echoes.
	InputResponses msgpack.RawMessage `msgpack:"x,omitempty"`
	RequestState   string             `msgpack:"y,omitempty"`
	// TaskID is set when the request runs (again) as the task of that id:
	// its outcome goes to the task bucket, not to a waiting gateway.
	TaskID string `msgpack:"j,omitempty"`
	// TraceParent and TraceState are the W3C trace context of the
	// gateway's publish (its PRODUCER span): the worker's spans are its
	// children, on every delivery and in a replay.
	TraceParent string `msgpack:"w,omitempty"`
	TraceState  string `msgpack:"z,omitempty"`
	// Baggage is the W3C baggage of the request (from the client's
	// _meta.baggage or baggage header), as the gateway's propagator
	// wrote it: a worker's handler finds it in its context.
	Baggage string `msgpack:"b,omitempty"`
}

// Cancel asks workers to cancel the handler of a request: the client sent
// notifications/cancelled for it. It travels as msgpack on core NATS to
// streams.CancelSubject; any gateway can send it.
type Cancel struct {
	Session   string `msgpack:"s"`
	RequestID string `msgpack:"q"`
	Reason    string `msgpack:"r,omitempty"`
}

// Sessions of a Cancel that names no session: CancelByKey names a
// stateless request by its envelope key (its client closed the request's
// stream), CancelTask a task by its id (tasks/cancel).
const (
	CancelByKey = "key"
	CancelTask  = "task"
)

// DeadlineTime returns Deadline as a time.Time (zero when unset).
func (e *Envelope) DeadlineTime() time.Time {
	if e.Deadline == 0 {
		return time.Time{}
	}
	return time.Unix(0, e.Deadline)
}

// Expired reports whether the deadline has passed at now.
func (e *Envelope) Expired(now time.Time) bool {
	return e.Deadline != 0 && now.UnixNano() >= e.Deadline
}

// Marshal encodes e as msgpack, stamping the current version. Params must
// be one msgpack value (as [JSONToMsgpack] writes); the error return is kept
// for encoders that can fail.
func (e *Envelope) Marshal() ([]byte, error) {
	e.V = EnvelopeVersion
	n := 96 + len(e.Key) + len(e.Name) + len(e.Session) + len(e.ReplyTo) + len(e.Params) +
		len(e.ClientCaps) + len(e.InputResponses) + len(e.RequestState) + len(e.TaskID) +
		len(e.TraceParent) + len(e.TraceState) + len(e.Baggage)
	return appendEnvelope(make([]byte, 0, n), e), nil
}

// UnmarshalEnvelope decodes an envelope. It returns [ErrEnvelopeVersion] for
// a newer layout and a wrapped error for malformed data (including lengths
// beyond the input, nesting deeper than [MaxDepth] in a field, integers out
// of their field's range and trailing bytes); an envelope without a key,
// method or reply subject is malformed too.
//
// Params, ProgressToken, ClientCaps and InputResponses refer to b, which
// must not change while the envelope is in use; the strings are copies.
func UnmarshalEnvelope(b []byte) (*Envelope, error) {
	e := new(Envelope)
	if err := decodeEnvelope(b, e); err != nil {
		return nil, fmt.Errorf("decoding envelope: %w", err)
	}
	if e.V < 1 || e.V > EnvelopeVersion {
		return nil, fmt.Errorf("decoding envelope: version %d: %w", e.V, ErrEnvelopeVersion)
	}
	if e.Key == "" || e.Method == "" || e.ReplyTo == "" {
		return nil, errors.New("decoding envelope: key, method and reply subject are required")
	}
	return e, nil
}

// ReplyKind tells what a Reply carries.
type ReplyKind uint8

// Reply kinds. Only ReplyResult ends a request. A ReplyNotification carries
// a notification for the client about the request in flight (progress,
// log messages): Method names it and Result holds its params. A
// ReplyRequest carries a request to the client made while serving the
// request (sampling, elicitation, roots): Method and Result as for a
// notification, and ID, its JSON-RPC id (see streams.NewClientRequest).
const (
	ReplyResult ReplyKind = iota
	ReplyNotification
	ReplyRequest
)

// Reply is a worker's answer to an envelope, sent as msgpack on core NATS to
// the envelope's ReplyTo. Exactly one of Result and Error is set on a
// ReplyResult.
type Reply struct {
	V    int       `msgpack:"v"`
	Key  string    `msgpack:"k"`
	Kind ReplyKind `msgpack:"i,omitempty"`
	// Result is the JSON-RPC result compacted to msgpack.
	Result msgpack.RawMessage `msgpack:"r,omitempty"`
	Error  *Error             `msgpack:"e,omitempty"`
	// Cached is set when the result came from the result store, not from a
	// new run of the handler.
	Cached bool `msgpack:"c,omitempty"`
	// RunNs is how long the handler ran, in nanoseconds. The gateway takes
	// it from the call's latency to see the time spent queueing.
	RunNs int64 `msgpack:"n,omitempty"`
	// Method is the notification's or request's method, on a
	// ReplyNotification or a ReplyRequest.
	Method string `msgpack:"m,omitempty"`
	// ID is the JSON-RPC id of a ReplyRequest.
	ID string `msgpack:"q,omitempty"`
}

// Marshal encodes r as msgpack, stamping the current version. Result must
// be one msgpack value.
func (r *Reply) Marshal() ([]byte, error) {
	r.V = EnvelopeVersion
	n := 32 + len(r.Key) + len(r.Result) + len(r.Method) + len(r.ID)
	if r.Error != nil {
		n += 32 + len(r.Error.Message) + len(r.Error.Data)
	}
	return appendReply(make([]byte, 0, n), r), nil
}

// UnmarshalReply decodes a reply. It returns [ErrEnvelopeVersion] for a newer
// layout and a wrapped error for malformed data (as for [UnmarshalEnvelope])
// or a reply without a key.
//
// Result and Error.Data refer to b, which must not change while the reply
// is in use; the strings are copies.
func UnmarshalReply(b []byte) (*Reply, error) {
	r := new(Reply)
	if err := decodeReply(b, r); err != nil {
		return nil, fmt.Errorf("decoding reply: %w", err)
	}
	if r.Result == nil && r.Error == nil && r.Kind == ReplyResult {
		// A JSON null result is msgpack nil, which decodes (as in the
		// msgpack library) as an absent RawMessage: restore it.
		r.Result = msgpack.RawMessage{0xc0}
	}
	if r.V < 1 || r.V > EnvelopeVersion {
		return nil, fmt.Errorf("decoding reply: version %d: %w", r.V, ErrEnvelopeVersion)
	}
	if r.Key == "" {
		return nil, errors.New("decoding reply: key is required")
	}
	return r, nil
}

// Marshal encodes c as msgpack.
func (c *Cancel) Marshal() ([]byte, error) {
	b, err := msgpack.Marshal(c)
	if err != nil {
		return nil, fmt.Errorf("encoding cancel: %w", err)
	}
	return b, nil
}

// UnmarshalCancel decodes a cancellation. It returns a wrapped error for
// malformed data or one that names no request.
func UnmarshalCancel(b []byte) (*Cancel, error) {
	if err := checkMsgpack(b); err != nil {
		return nil, fmt.Errorf("decoding cancel: %w", err)
	}
	var c Cancel
	if err := msgpack.Unmarshal(b, &c); err != nil {
		return nil, fmt.Errorf("decoding cancel: %w", err)
	}
	if c.Session == "" || c.RequestID == "" {
		return nil, errors.New("decoding cancel: session and request id are required")
	}
	return &c, nil
}

// TraceCarrier carries a W3C trace context, the traceparent and
// tracestate keys in any case, and W3C baggage (the baggage key) when
// Baggage is not nil, in string fields, for an OpenTelemetry
// TextMapPropagator (it is a propagation.TextMapCarrier); other keys are
// dropped. [Envelope.Trace] and [RequestMeta.Trace] return theirs.
type TraceCarrier struct{ Parent, State, Baggage *string }

// Trace is the carrier of the envelope's trace context and baggage.
func (e *Envelope) Trace() TraceCarrier {
	return TraceCarrier{Parent: &e.TraceParent, State: &e.TraceState, Baggage: &e.Baggage}
}

// field is the field key names, nil for another key.
func (c TraceCarrier) field(key string) *string {
	switch {
	case strings.EqualFold(key, "traceparent"):
		return c.Parent
	case strings.EqualFold(key, "tracestate"):
		return c.State
	case strings.EqualFold(key, "baggage"):
		return c.Baggage
	}
	return nil
}

// Get returns the value of key.
func (c TraceCarrier) Get(key string) string {
	if f := c.field(key); f != nil {
		return *f
	}
	return ""
}

// Set sets key to value.
func (c TraceCarrier) Set(key, value string) {
	if f := c.field(key); f != nil {
		*f = value
	}
}

// Keys lists the keys set.
func (c TraceCarrier) Keys() []string {
	var keys []string
	if *c.Parent != "" {
		keys = append(keys, "traceparent")
	}
	if *c.State != "" {
		keys = append(keys, "tracestate")
	}
	if c.Baggage != nil && *c.Baggage != "" {
		keys = append(keys, "baggage")
	}
	return keys
}
