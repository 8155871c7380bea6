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
	b, ok := m.take(1)
	if !ok {
		return nil, m.errorf("unexpected end of input")
	}
	c := b[0]
	switch {
	case c <= 0x7f:
		return float64(c), nil
	case c >= 0xe0:
		return float64(int8(c)), nil
	case c >= 0xa0 && c <= 0xbf:
		return m.anyString(uint64(c & 0x1f))
	case c >= 0x90 && c <= 0x9f:
		return m.anyArray(uint64(c&0x0f), depth)
	case c >= 0x80 && c <= 0x8f:
		return m.anyObject(uint64(c&0x0f), depth)
	}
	switch c {
	case 0xc0:
		return nil, nil
	case 0xc2:
		return false, nil
	case 0xc3:
		return true, nil
	case 0xcc, 0xcd, 0xce, 0xcf:
		u, ok := m.uintN(1 << (c - 0xcc))
		if !ok {
			return nil, m.errorf("truncated integer")
		}
		if u <= maxExactInt {
			return float64(u), nil
		}
		return strconv.ParseFloat(strconv.FormatUint(u, 10), 64)
	case 0xd0, 0xd1, 0xd2, 0xd3:
		size := 1 << (c - 0xd0)
		u, ok := m.uintN(size)
		if !ok {
			return nil, m.errorf("truncated integer")
		}
		shift := 64 - 8*size
		i := int64(u<<shift) >> shift
		if -maxExactInt <= i && i <= maxExactInt {
			return float64(i), nil
		}
		return strconv.ParseFloat(strconv.FormatInt(i, 10), 64)
	case 0xcb:
		u, ok := m.uintN(8)
		if !ok {
			return nil, m.errorf("truncated float")
		}
		f := math.Float64frombits(u)
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return nil, m.errorf("%v has no JSON form", f)
		}
		return f, nil // its shortest decimal reads back as itself
	case 0xca:
		// What JSON carries is a float32's shortest decimal at its own
		// precision, which does not read back as its float64 value.
		m.pos--
		start := len(m.out)
		if err := m.value(depth); err != nil {
			return nil, err
		}
		f, err := strconv.ParseFloat(string(m.out[start:]), 64)
		m.out = m.out[:start]
		return f, err
	case 0xd9, 0xda, 0xdb:
		n, ok := m.uintN(1 << (c - 0xd9))
		if !ok {
			return nil, m.errorf("truncated string header")
		}
		return m.anyString(n)
	case 0xdc, 0xdd:
		n, ok := m.uintN(2 << (c - 0xdc))
		if !ok {
			return nil, m.errorf("truncated array header")
		}
		return m.anyArray(n, depth)
	case 0xde, 0xdf:
		n, ok := m.uintN(2 << (c - 0xde))
		if !ok {
			return nil, m.errorf("truncated map header")
		}
		return m.anyObject(n, depth)
	default:
		return nil, m.errorf("msgpack type 0x%02x has no JSON form", c)
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
		b, ok := m.take(1)
		if !ok {
			return nil, m.errorf("truncated map key")
		}
		var klen uint64
		switch c := b[0]; {
		case c >= 0xa0 && c <= 0xbf:
			klen = uint64(c & 0x1f)
		case c == 0xd9 || c == 0xda || c == 0xdb:
			if klen, ok = m.uintN(1 << (c - 0xd9)); !ok {
				return nil, m.errorf("truncated map key")
			}
		default:
			return nil, m.errorf("map key of type 0x%02x is not a string", c)
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
