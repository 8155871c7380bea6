package schema

import (
	"encoding/binary"
	"fmt"
	"math"
	"strconv"
	"unicode/utf8"
)

// MsgpackToJSON expands one msgpack value (as written by [JSONToMsgpack] or
// any msgpack encoder using nil, bool, int, float, str, array and map with
// string keys) to JSON text appended to dst. It returns an error for
// truncated or trailing data, types JSON cannot hold (bin, ext, non-string
// map keys, NaN and infinities) and nesting deeper than [MaxDepth]. With
// dst nil, the output is allocated once with room for one and a half times
// len(src) (it grows if JSON takes more).
func MsgpackToJSON(dst, src []byte) ([]byte, error) {
	m := mpReader{in: src, out: dst}
	if dst == nil {
		m.out = make([]byte, 0, len(src)+len(src)/2+16)
	}
	if err := m.value(0); err != nil {
		return dst, err
	}
	if m.pos != len(m.in) {
		return dst, m.errorf("trailing data")
	}
	return m.out, nil
}

type mpReader struct {
	in  []byte
	pos int
	out []byte
}

func (m *mpReader) errorf(format string, args ...any) error {
	return fmt.Errorf("schema: msgpack at offset %d: %s", m.pos, fmt.Sprintf(format, args...))
}

// take returns the next n bytes, or false if fewer remain.
func (m *mpReader) take(n uint64) ([]byte, bool) {
	if n > uint64(len(m.in)-m.pos) {
		return nil, false
	}
	b := m.in[m.pos : m.pos+int(n)]
	m.pos += int(n)
	return b, true
}

func (m *mpReader) uintN(size int) (uint64, bool) {
	b, ok := m.take(uint64(size))
	if !ok {
		return 0, false
	}
	switch size {
	case 1:
		return uint64(b[0]), true
	case 2:
		return uint64(binary.BigEndian.Uint16(b)), true
	case 4:
		return uint64(binary.BigEndian.Uint32(b)), true
	default:
		return binary.BigEndian.Uint64(b), true
	}
}

// headKind is what a msgpack value that JSON can hold is, from its header
// (head).
type headKind uint8

const (
	headNil headKind = iota
	headFalse
	headTrue
	headUint    // the value in u
	headInt     // the value's int64 bits in u
	headFloat32 // its bits in u
	headFloat64 // its bits in u
	headStr     // its length in u; the bytes follow
	headArray   // its length in u; the elements follow
	headMap     // its number of entries in u; the entries follow
)

// head reads the header of a value JSON can hold: nil, bool, int, float,
// str, array or map. It fails on truncated data and on other types (bin,
// ext, unused bytes).
func (m *mpReader) head() (headKind, uint64, error) {
	b, ok := m.take(1)
	if !ok {
		return 0, 0, m.errorf("unexpected end of input")
	}
	c := b[0]
	switch {
	case c <= 0x7f:
		return headUint, uint64(c), nil
	case c >= 0xe0:
		return headInt, uint64(int64(int8(c))), nil
	case c >= 0xa0 && c <= 0xbf:
		return headStr, uint64(c & 0x1f), nil
	case c >= 0x90 && c <= 0x9f:
		return headArray, uint64(c & 0x0f), nil
	case c >= 0x80 && c <= 0x8f:
		return headMap, uint64(c & 0x0f), nil
	}
	switch c {
	case 0xc0:
		return headNil, 0, nil
	case 0xc2:
		return headFalse, 0, nil
	case 0xc3:
		return headTrue, 0, nil
	case 0xcc, 0xcd, 0xce, 0xcf:
		u, ok := m.uintN(1 << (c - 0xcc))
		if !ok {
			return 0, 0, m.errorf("truncated integer")
		}
		return headUint, u, nil
	case 0xd0, 0xd1, 0xd2, 0xd3:
		size := 1 << (c - 0xd0)
		u, ok := m.uintN(size)
		if !ok {
			return 0, 0, m.errorf("truncated integer")
		}
		shift := 64 - 8*size
		return headInt, uint64(int64(u<<shift) >> shift), nil
	case 0xca, 0xcb:
		u, ok := m.uintN(4 << (c - 0xca))
		if !ok {
			return 0, 0, m.errorf("truncated float")
		}
		return headFloat32 + headKind(c-0xca), u, nil
	case 0xd9, 0xda, 0xdb:
		n, ok := m.uintN(1 << (c - 0xd9))
		if !ok {
			return 0, 0, m.errorf("truncated string header")
		}
		return headStr, n, nil
	case 0xdc, 0xdd:
		n, ok := m.uintN(2 << (c - 0xdc))
		if !ok {
			return 0, 0, m.errorf("truncated array header")
		}
		return headArray, n, nil
	case 0xde, 0xdf:
		n, ok := m.uintN(2 << (c - 0xde))
		if !ok {
			return 0, 0, m.errorf("truncated map header")
		}
		return headMap, n, nil
	}
	return 0, 0, m.errorf("msgpack type 0x%02x has no JSON form", c)
}

// keyLen reads a map key's header and returns its length: a key must be a
// string, as JSON's are.
func (m *mpReader) keyLen() (uint64, error) {
	b, ok := m.take(1)
	if !ok {
		return 0, m.errorf("truncated map key")
	}
	switch c := b[0]; {
	case c >= 0xa0 && c <= 0xbf:
		return uint64(c & 0x1f), nil
	case c == 0xd9 || c == 0xda || c == 0xdb:
		n, ok := m.uintN(1 << (c - 0xd9))
		if !ok {
			return 0, m.errorf("truncated map key")
		}
		return n, nil
	default:
		return 0, m.errorf("map key of type 0x%02x is not a string", c)
	}
}

func (m *mpReader) value(depth int) error {
	k, u, err := m.head()
	if err != nil {
		return err
	}
	switch k {
	case headNil:
		m.out = append(m.out, "null"...)
	case headFalse:
		m.out = append(m.out, "false"...)
	case headTrue:
		m.out = append(m.out, "true"...)
	case headUint:
		m.out = strconv.AppendUint(m.out, u, 10)
	case headInt:
		m.out = strconv.AppendInt(m.out, int64(u), 10)
	case headFloat32:
		return m.float(float64(math.Float32frombits(uint32(u))), 32)
	case headFloat64:
		return m.float(math.Float64frombits(u), 64)
	case headStr:
		return m.str(u)
	case headArray:
		return m.array(u, depth)
	case headMap:
		return m.object(u, depth)
	}
	return nil
}

// float writes f as encoding/json does.
func (m *mpReader) float(f float64, bits int) error {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return m.errorf("%v has no JSON form", f)
	}
	format := byte('f')
	if abs := math.Abs(f); abs != 0 {
		if bits == 64 && (abs < 1e-6 || abs >= 1e21) || bits == 32 && (float32(abs) < 1e-6 || float32(abs) >= 1e21) {
			format = 'e'
		}
	}
	m.out = strconv.AppendFloat(m.out, f, format, -1, bits)
	if format == 'e' {
		// clean up e-09 to e-9
		n := len(m.out)
		if n >= 4 && m.out[n-4] == 'e' && m.out[n-3] == '-' && m.out[n-2] == '0' {
			m.out[n-2] = m.out[n-1]
			m.out = m.out[:n-1]
		}
	}
	return nil
}

func (m *mpReader) str(n uint64) error {
	s, ok := m.take(n)
	if !ok {
		return m.errorf("truncated string")
	}
	m.out = appendJSONString(m.out, string(s))
	return nil
}

func (m *mpReader) array(n uint64, depth int) error {
	if depth >= MaxDepth {
		return ErrTooDeep
	}
	if n > uint64(len(m.in)-m.pos) { // every element takes at least one byte
		return m.errorf("array length %d exceeds input", n)
	}
	m.out = append(m.out, '[')
	for i := uint64(0); i < n; i++ {
		if i > 0 {
			m.out = append(m.out, ',')
		}
		if err := m.value(depth + 1); err != nil {
			return err
		}
	}
	m.out = append(m.out, ']')
	return nil
}

func (m *mpReader) object(n uint64, depth int) error {
	if depth >= MaxDepth {
		return ErrTooDeep
	}
	if n > uint64(len(m.in)-m.pos)/2 { // every entry takes at least two bytes
		return m.errorf("map length %d exceeds input", n)
	}
	m.out = append(m.out, '{')
	for i := uint64(0); i < n; i++ {
		if i > 0 {
			m.out = append(m.out, ',')
		}
		klen, err := m.keyLen()
		if err != nil {
			return err
		}
		if err := m.str(klen); err != nil {
			return err
		}
		m.out = append(m.out, ':')
		if err := m.value(depth + 1); err != nil {
			return err
		}
	}
	m.out = append(m.out, '}')
	return nil
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends s as a JSON string. Invalid UTF-8 becomes
// U+FFFD; U+2028 and U+2029 are escaped so the text is safe in JavaScript.
func appendJSONString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i++
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// checkMsgpack validates the structure of one msgpack value without
// decoding it: every declared length fits in the input, nesting is at most
// [MaxDepth] + 2 (an envelope's own maps around params), and nothing
// trails. It runs before the msgpack library decodes untrusted bytes, which
// would otherwise grow buffers towards whatever length a message declares.
func checkMsgpack(b []byte) error {
	m := mpReader{in: b}
	if err := m.skip(0); err != nil {
		return err
	}
	if m.pos != len(m.in) {
		return m.errorf("trailing data")
	}
	return nil
}

func (m *mpReader) skip(depth int) error {
	if depth > MaxDepth+2 {
		return ErrTooDeep
	}
	b, ok := m.take(1)
	if !ok {
		return m.errorf("unexpected end of input")
	}
	c := b[0]
	var n uint64     // bytes to skip
	var items uint64 // nested values to skip
	switch {
	case c <= 0x7f || c >= 0xe0 || c == 0xc0 || c == 0xc2 || c == 0xc3:
		return nil
	case c >= 0xa0 && c <= 0xbf:
		n = uint64(c & 0x1f)
	case c >= 0x90 && c <= 0x9f:
		items = uint64(c & 0x0f)
	case c >= 0x80 && c <= 0x8f:
		items = 2 * uint64(c&0x0f)
	case c == 0xcc || c == 0xd0:
		n = 1
	case c == 0xcd || c == 0xd1:
		n = 2
	case c == 0xce || c == 0xd2 || c == 0xca:
		n = 4
	case c == 0xcf || c == 0xd3 || c == 0xcb:
		n = 8
	case c == 0xd4, c == 0xd5, c == 0xd6, c == 0xd7, c == 0xd8: // fixext 1..16, plus the type byte
		n = 1 + 1<<(c-0xd4)
	case c == 0xd9 || c == 0xc4:
		l, ok := m.uintN(1)
		if !ok {
			return m.errorf("truncated header")
		}
		n = l
	case c == 0xda || c == 0xc5:
		l, ok := m.uintN(2)
		if !ok {
			return m.errorf("truncated header")
		}
		n = l
	case c == 0xdb || c == 0xc6:
		l, ok := m.uintN(4)
		if !ok {
			return m.errorf("truncated header")
		}
		n = l
	case c == 0xc7 || c == 0xc8 || c == 0xc9: // ext 8/16/32
		l, ok := m.uintN(1 << (c - 0xc7))
		if !ok {
			return m.errorf("truncated header")
		}
		n = l + 1
	case c == 0xdc || c == 0xdd:
		l, ok := m.uintN(2 << (c - 0xdc))
		if !ok {
			return m.errorf("truncated header")
		}
		items = l
	case c == 0xde || c == 0xdf:
		l, ok := m.uintN(2 << (c - 0xde))
		if !ok {
			return m.errorf("truncated header")
		}
		items = 2 * l
	default:
		return m.errorf("invalid msgpack type 0x%02x", c)
	}
	if n > 0 {
		if _, ok := m.take(n); !ok {
			return m.errorf("length %d exceeds input", n)
		}
		return nil
	}
	if items > uint64(len(m.in)-m.pos) { // every item takes at least one byte
		return m.errorf("%d items exceed input", items)
	}
	for i := uint64(0); i < items; i++ {
		if err := m.skip(depth + 1); err != nil {
			return err
		}
	}
	return nil
}

// The readers below decode single msgpack values for the hand-written
// struct decoders (decode.go). Byte slices they return refer to m.in.

// mapHeader reads a map header and returns its number of entries, or -1 for
// nil. Like skip, it rejects a count that cannot fit in the rest of the
// input (every entry takes at least two bytes).
func (m *mpReader) mapHeader() (int, error) {
	b, ok := m.take(1)
	if !ok {
		return 0, m.errorf("unexpected end of input")
	}
	var n uint64
	switch c := b[0]; {
	case c >= 0x80 && c <= 0x8f:
		n = uint64(c & 0x0f)
	case c == 0xde || c == 0xdf:
		if n, ok = m.uintN(2 << (c - 0xde)); !ok {
			return 0, m.errorf("truncated map header")
		}
	case c == 0xc0:
		return -1, nil
	default:
		return 0, m.errorf("msgpack type 0x%02x is not a map", c)
	}
	if n > uint64(len(m.in)-m.pos)/2 {
		return 0, m.errorf("map length %d exceeds input", n)
	}
	return int(n), nil
}

// strBytes reads a str or bin value and returns its bytes, capped so that
// appending to them cannot write into the input: nil for msgpack nil, a
// non-nil empty slice for an empty str or bin.
func (m *mpReader) strBytes() ([]byte, error) {
	b, ok := m.take(1)
	if !ok {
		return nil, m.errorf("unexpected end of input")
	}
	var n uint64
	switch c := b[0]; {
	case c >= 0xa0 && c <= 0xbf:
		n = uint64(c & 0x1f)
	case c == 0xd9 || c == 0xda || c == 0xdb:
		if n, ok = m.uintN(1 << (c - 0xd9)); !ok {
			return nil, m.errorf("truncated string header")
		}
	case c == 0xc4 || c == 0xc5 || c == 0xc6:
		if n, ok = m.uintN(1 << (c - 0xc4)); !ok {
			return nil, m.errorf("truncated bin header")
		}
	case c == 0xc0:
		return nil, nil
	default:
		return nil, m.errorf("msgpack type 0x%02x is not a string", c)
	}
	s, ok := m.take(n)
	if !ok {
		return nil, m.errorf("length %d exceeds input", n)
	}
	return s[:n:n], nil
}

// integer reads a msgpack integer in any encoding (positive or negative
// fixint, uint8-64, int8-64); nil reads as 0. neg tells whether the value
// is negative, and then u holds its int64 bits.
func (m *mpReader) integer() (u uint64, neg bool, err error) {
	b, ok := m.take(1)
	if !ok {
		return 0, false, m.errorf("unexpected end of input")
	}
	switch c := b[0]; {
	case c <= 0x7f:
		return uint64(c), false, nil
	case c >= 0xe0:
		return uint64(int64(int8(c))), true, nil
	case c == 0xc0:
		return 0, false, nil
	case c >= 0xcc && c <= 0xcf:
		if u, ok = m.uintN(1 << (c - 0xcc)); !ok {
			return 0, false, m.errorf("truncated integer")
		}
		return u, false, nil
	case c >= 0xd0 && c <= 0xd3:
		size := 1 << (c - 0xd0)
		if u, ok = m.uintN(size); !ok {
			return 0, false, m.errorf("truncated integer")
		}
		shift := 64 - 8*size
		i := int64(u<<shift) >> shift
		return uint64(i), i < 0, nil
	default:
		return 0, false, m.errorf("msgpack type 0x%02x is not an integer", c)
	}
}

// int64 reads an integer that must fit in an int64.
func (m *mpReader) int64() (int64, error) {
	u, neg, err := m.integer()
	if err != nil {
		return 0, err
	}
	if !neg && u > math.MaxInt64 {
		return 0, m.errorf("integer %d overflows int64", u)
	}
	return int64(u), nil
}

// uint reads an integer that must lie in [0, limit].
func (m *mpReader) uint(limit uint64) (uint64, error) {
	u, neg, err := m.integer()
	if err != nil {
		return 0, err
	}
	if neg {
		return 0, m.errorf("negative integer %d for an unsigned field", int64(u))
	}
	if u > limit {
		return 0, m.errorf("integer %d exceeds %d", u, limit)
	}
	return u, nil
}

// boolean reads true, false or nil (false).
func (m *mpReader) boolean() (bool, error) {
	b, ok := m.take(1)
	if !ok {
		return false, m.errorf("unexpected end of input")
	}
	switch b[0] {
	case 0xc3:
		return true, nil
	case 0xc2, 0xc0:
		return false, nil
	default:
		return false, m.errorf("msgpack type 0x%02x is not a bool", b[0])
	}
}

// raw reads one value of any type, checked as skip does at depth, and
// returns its encoding (capped as strBytes does), or nil for msgpack nil.
func (m *mpReader) raw(depth int) ([]byte, error) {
	start := m.pos
	if err := m.skip(depth); err != nil {
		return nil, err
	}
	if m.in[start] == 0xc0 {
		return nil, nil
	}
	return m.in[start:m.pos:m.pos], nil
}
