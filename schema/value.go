package schema

import (
	"math"
	"strconv"
	"strings"
	"unicode/utf8"
)

// MsgpackValue decodes one msgpack value to what encoding/json's Unmarshal
// into an `any` gives for its [MsgpackToJSON] expansion: map[string]any,
// []any, float64, string, bool or nil, invalid UTF-8 in a string replaced
// by U+FFFD per byte. It fails where MsgpackToJSON fails. A worker
// validates a tool's arguments against its input schema this way without
// parsing their JSON once more.
func MsgpackValue(src []byte) (any, error) {
	m := mpReader{in: src}
	v, err := m.anyValue(0)
	if err != nil {
		return nil, err
	}
	if m.pos != len(m.in) {
		return nil, m.errorf("trailing data")
	}
	return v, nil
}

// maxExactInt is the largest integer every float64 holds exactly: those
// beyond it are rounded as encoding/json rounds their decimal text.
const maxExactInt = 1 << 53

func (m *mpReader) anyValue(depth int) (any, error) {
	k, u, err := m.head()
	if err != nil {
		return nil, err
	}
	switch k {
	case headNil:
		return nil, nil
	case headFalse:
		return false, nil
	case headTrue:
		return true, nil
	case headUint:
		if u <= maxExactInt {
			return float64(u), nil
		}
		return strconv.ParseFloat(strconv.FormatUint(u, 10), 64)
	case headInt:
		if i := int64(u); -maxExactInt <= i && i <= maxExactInt {
			return float64(i), nil
		}
		return strconv.ParseFloat(strconv.FormatInt(int64(u), 10), 64)
	case headFloat32:
		// JSON carries a float32's shortest decimal at its own precision,
		// which does not read back as its float64 value.
		f := float64(math.Float32frombits(uint32(u)))
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return nil, m.errorf("%v has no JSON form", f)
		}
		return strconv.ParseFloat(strconv.FormatFloat(f, 'g', -1, 32), 64)
	case headFloat64:
		f := math.Float64frombits(u)
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return nil, m.errorf("%v has no JSON form", f)
		}
		return f, nil // its shortest decimal reads back as itself
	case headStr:
		return m.anyString(u)
	case headArray:
		return m.anyArray(u, depth)
	default: // headMap
		return m.anyObject(u, depth)
	}
}

// anyString reads a string of n bytes as JSON would carry it: each byte of
// invalid UTF-8 is U+FFFD (appendJSONString).
func (m *mpReader) anyString(n uint64) (string, error) {
	s, ok := m.take(n)
	if !ok {
		return "", m.errorf("truncated string")
	}
	if utf8.Valid(s) {
		return string(s), nil
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRune(s[i:])
		if r == utf8.RuneError && size == 1 {
			b.WriteRune(utf8.RuneError)
		} else {
			b.Write(s[i : i+size])
		}
		i += size
	}
	return b.String(), nil
}

func (m *mpReader) anyArray(n uint64, depth int) ([]any, error) {
	if depth >= MaxDepth {
		return nil, ErrTooDeep
	}
	if n > uint64(len(m.in)-m.pos) { // every element takes at least one byte
		return nil, m.errorf("array length %d exceeds input", n)
	}
	a := make([]any, n)
	for i := range a {
		v, err := m.anyValue(depth + 1)
		if err != nil {
			return nil, err
		}
		a[i] = v
	}
	return a, nil
}

func (m *mpReader) anyObject(n uint64, depth int) (map[string]any, error) {
	if depth >= MaxDepth {
		return nil, ErrTooDeep
	}
	if n > uint64(len(m.in)-m.pos)/2 { // every entry takes at least two bytes
		return nil, m.errorf("map length %d exceeds input", n)
	}
	o := make(map[string]any, n)
	for range n {
		klen, err := m.keyLen()
		if err != nil {
			return nil, err
		}
		k, err := m.anyString(klen)
		if err != nil {
			return nil, err
		}
		v, err := m.anyValue(depth + 1)
		if err != nil {
			return nil, err
		}
		o[k] = v
	}
	return o, nil
}
