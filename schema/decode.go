package schema

// Hand-written msgpack decoders for the two structs on the hot path, the
// counterparts of encode.go. They read what the msgpack library would
// decode from the struct tags, with the library's rules: map keys may be
// str, bin or nil; unknown keys are skipped; a repeated key overwrites (a
// repeated error map merges into the error decoded before, as the library
// decodes into the pointer it already set); nil reads as the zero value;
// string fields take str or bin; integer fields take any integer encoding.
//
// They differ from the library on purpose in two ways:
//   - an integer out of range for its field (Attempt, Kind, Deadline,
//     RunNs, Error.Code) is an error, where the library wraps it; a version
//     beyond int's range is clamped, so the version check rejects it;
//   - a struct must be a map (or nil): the library also takes an array of
//     the fields in declaration order, which nothing writes.
//
// They check the input as checkMsgpack does, in the same pass: nesting at
// most MaxDepth+2 deep, no length beyond the input, no trailing bytes.
// FuzzDecodeEnvelopeDiff and FuzzDecodeReplyDiff compare them with the
// library.

import (
	"fmt"
	"math"
	"strings"
)

// Indexes of an Envelope's string fields among those decodeEnvelope reads.
const (
	envKey = iota
	envMethod
	envName
	envSession
	envPrincipal
	envRevision
	envReplyTo
	envRequestID
	envRequestState
	envTaskID
	envTraceParent
	envTraceState
	envBaggage
	envStrings
)

// decodeEnvelope decodes the msgpack map b into e, which must be zero.
// The raw fields (Params, ProgressToken, ClientCaps, InputResponses) refer
// to b; the strings are copied.
func decodeEnvelope(b []byte, e *Envelope) error {
	var strs [envStrings][]byte
	m := mpReader{in: b}
	err := m.decodeMap(func(k byte) (err error) {
		switch k {
		case 'v':
			e.V, err = m.version()
		case 'k':
			strs[envKey], err = m.strBytes()
		case 'm':
			strs[envMethod], err = m.strBytes()
		case 'n':
			strs[envName], err = m.strBytes()
		case 'p':
			e.Params, err = m.raw(1)
		case 's':
			strs[envSession], err = m.strBytes()
		case 'u':
			strs[envPrincipal], err = m.strBytes()
		case 'r':
			strs[envRevision], err = m.strBytes()
		case 'd':
			e.Deadline, err = m.int64()
		case 'a':
			var a uint64
			a, err = m.uint(math.MaxUint16)
			e.Attempt = uint16(a)
		case 't':
			strs[envReplyTo], err = m.strBytes()
		case 'g':
			e.ProgressToken, err = m.raw(1)
		case 'q':
			strs[envRequestID], err = m.strBytes()
		case 'c':
			e.ClientCaps, err = m.raw(1)
		case 'x':
			e.InputResponses, err = m.raw(1)
		case 'y':
			strs[envRequestState], err = m.strBytes()
		case 'j':
			strs[envTaskID], err = m.strBytes()
		case 'w':
			strs[envTraceParent], err = m.strBytes()
		case 'z':
			strs[envTraceState], err = m.strBytes()
		case 'b':
			strs[envBaggage], err = m.strBytes()
		default:
			err = m.skip(1)
		}
		return err
	})
	if err != nil {
		return err
	}
	dst := [envStrings]*string{
		envKey:          &e.Key,
		envMethod:       &e.Method,
		envName:         &e.Name,
		envSession:      &e.Session,
		envPrincipal:    &e.Principal,
		envRevision:     &e.Revision,
		envReplyTo:      &e.ReplyTo,
		envRequestID:    &e.RequestID,
		envRequestState: &e.RequestState,
		envTaskID:       &e.TaskID,
		envTraceParent:  &e.TraceParent,
		envTraceState:   &e.TraceState,
		envBaggage:      &e.Baggage,
	}
	setStrings(dst[:], strs[:])
	return nil
}

// Indexes of a Reply's string fields among those decodeReply reads.
const (
	repKey = iota
	repMethod
	repID
	repErrMessage
	repStrings
)

// decodeReply decodes the msgpack map b into r, which must be zero. Result
// and Error.Data refer to b; the strings are copied.
func decodeReply(b []byte, r *Reply) error {
	var strs [repStrings][]byte
	m := mpReader{in: b}
	err := m.decodeMap(func(k byte) (err error) {
		switch k {
		case 'v':
			r.V, err = m.version()
		case 'k':
			strs[repKey], err = m.strBytes()
		case 'i':
			var kind uint64
			kind, err = m.uint(math.MaxUint8)
			r.Kind = ReplyKind(kind)
		case 'r':
			r.Result, err = m.raw(1)
		case 'e':
			r.Error, err = m.replyError(r.Error, &strs[repErrMessage])
		case 'c':
			r.Cached, err = m.boolean()
		case 'n':
			r.RunNs, err = m.int64()
		case 'm':
			strs[repMethod], err = m.strBytes()
		case 'q':
			strs[repID], err = m.strBytes()
		default:
			err = m.skip(1)
		}
		return err
	})
	if err != nil {
		return err
	}
	dst := [repStrings]*string{repKey: &r.Key, repMethod: &r.Method, repID: &r.ID}
	if r.Error != nil {
		dst[repErrMessage] = &r.Error.Message
	}
	setStrings(dst[:], strs[:])
	return nil
}

// replyError reads a Reply's error: nil, or a map decoded into cur (into a
// new Error when cur is nil), as the library decodes a repeated key into
// the struct it already holds. The message is left in *msg, for the caller
// to copy with the other strings.
func (m *mpReader) replyError(cur *Error, msg *[]byte) (*Error, error) {
	n, err := m.mapHeader()
	if err != nil || n < 0 {
		return nil, err
	}
	e := cur
	if e == nil {
		e = new(Error)
		*msg = nil
	}
	err = m.fields(n, func(k byte) (err error) {
		switch k {
		case 'c':
			var c int64
			c, err = m.int64()
			e.Code = int(c)
			if err == nil && int64(e.Code) != c {
				err = m.errorf("integer %d overflows int", c)
			}
		case 'm':
			*msg, err = m.strBytes()
		case 'd':
			e.Data, err = m.strBytes()
		default:
			err = m.skip(2)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return e, nil
}

// decodeMap decodes the whole input, one msgpack map (or nil, read as
// empty) and nothing after it: read reads the value of each key, given its
// one-byte wire name (see fields).
func (m *mpReader) decodeMap(read func(k byte) error) error {
	n, err := m.mapHeader()
	if err != nil {
		return err
	}
	if err := m.fields(n, read); err != nil {
		return err
	}
	if m.pos != len(m.in) {
		return m.errorf("trailing data")
	}
	return nil
}

// fields reads the n keys and values of a map: read reads the value of
// each key, given its one-byte wire name (0 for a longer or empty key,
// which names no field).
func (m *mpReader) fields(n int, read func(k byte) error) error {
	for range n {
		k, err := m.strBytes()
		if err != nil {
			return fmt.Errorf("map key: %w", err)
		}
		if err := read(fieldKey(k)); err != nil {
			return fmt.Errorf("field %q: %w", k, err)
		}
	}
	return nil
}

// fieldKey returns the one-byte wire name k, or 0, which names no field,
// for a longer or empty (or nil) key.
func fieldKey(k []byte) byte {
	if len(k) != 1 {
		return 0
	}
	return k[0]
}

// version reads the layout version. An integer beyond int's range is
// clamped to it: it is then unsupported, as the version checks report.
func (m *mpReader) version() (int, error) {
	u, neg, err := m.integer()
	switch {
	case err != nil:
		return 0, err
	case neg:
		if i := int64(u); int64(int(i)) == i {
			return int(i), nil
		}
		return math.MinInt, nil
	case u > math.MaxInt:
		return math.MaxInt, nil
	}
	return int(u), nil
}

// setStrings sets *dst[i] to string(src[i]) for every non-nil dst[i],
// copying all of them into one allocation; the strings must be empty
// before. A string shares its memory with the others.
func setStrings(dst []*string, src [][]byte) {
	n := 0
	for i, b := range src {
		if dst[i] != nil {
			n += len(b)
		}
	}
	if n == 0 {
		return
	}
	var sb strings.Builder
	sb.Grow(n)
	for i, b := range src {
		if dst[i] != nil {
			sb.Write(b)
		}
	}
	all := sb.String()
	for i, b := range src {
		if dst[i] != nil && len(b) > 0 {
			*dst[i], all = all[:len(b)], all[len(b):]
		}
	}
}
