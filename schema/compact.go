package schema

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// MaxDepth is the deepest nesting of arrays and objects that the compaction
// functions and [CheckDepth] accept by default.
const MaxDepth = 64

// ErrTooDeep is returned for JSON or msgpack nested deeper than allowed.
var ErrTooDeep = errors.New("schema: value nested too deeply")

// CheckDepth returns [ErrTooDeep] when the JSON text data nests arrays and
// objects deeper than max. It does not validate the JSON.
func CheckDepth(data []byte, max int) error {
	depth := 0
	inString := false
	for i := 0; i < len(data); i++ {
		c := data[i]
		if inString {
			switch c {
			case '\\':
				i++
			case '"':
				inString = false
			}
			continue
		}
		switch c {
		case '"':
			inString = true
		case '{', '[':
			depth++
			if depth > max {
				return ErrTooDeep
			}
		case '}', ']':
			depth--
		}
	}
	return nil
}

// JSONToMsgpack compacts one JSON value to msgpack, appending to dst. Object
// keys keep their order; integers become msgpack integers, other numbers
// float64; strings are unescaped (invalid UTF-8 becomes U+FFFD, as in
// encoding/json). It returns an error for invalid JSON, trailing data, a
// number out of float64 range or nesting deeper than [MaxDepth]. With dst
// nil, the output is allocated once with room for len(src) bytes, which
// msgpack seldom exceeds (it grows if it does).
func JSONToMsgpack(dst, src []byte) ([]byte, error) {
	c := jsonReader{in: src, out: dst}
	if dst == nil {
		c.out = make([]byte, 0, len(src)+8)
	}
	if err := c.value(0); err != nil {
		return dst, err
	}
	c.skipSpace()
	if c.pos != len(c.in) {
		return dst, c.errorf("trailing data")
	}
	return c.out, nil
}

type jsonReader struct {
	in  []byte
	pos int
	out []byte
}

func (c *jsonReader) errorf(format string, args ...any) error {
	return fmt.Errorf("schema: JSON at offset %d: %s", c.pos, fmt.Sprintf(format, args...))
}

func (c *jsonReader) skipSpace() {
	for c.pos < len(c.in) {
		switch c.in[c.pos] {
		case ' ', '\t', '\n', '\r':
			c.pos++
		default:
			return
		}
	}
}

func (c *jsonReader) value(depth int) error {
	c.skipSpace()
	if c.pos >= len(c.in) {
		return c.errorf("unexpected end of input")
	}
	switch ch := c.in[c.pos]; {
	case ch == '{':
		if depth >= MaxDepth {
			return ErrTooDeep
		}
		return c.object(depth + 1)
	case ch == '[':
		if depth >= MaxDepth {
			return ErrTooDeep
		}
		return c.array(depth + 1)
	case ch == '"':
		s, err := c.str()
		if err != nil {
			return err
		}
		c.out = appendMsgpackStr(c.out, s)
		return nil
	case ch == 't':
		return c.literal("true", 0xc3)
	case ch == 'f':
		return c.literal("false", 0xc2)
	case ch == 'n':
		return c.literal("null", 0xc0)
	case ch == '-' || (ch >= '0' && ch <= '9'):
		return c.number()
	default:
		return c.errorf("unexpected character %q", ch)
	}
}

func (c *jsonReader) literal(word string, code byte) error {
	if len(c.in)-c.pos < len(word) || string(c.in[c.pos:c.pos+len(word)]) != word {
		return c.errorf("invalid literal")
	}
	c.pos += len(word)
	c.out = append(c.out, code)
	return nil
}

// container writes a 5-byte placeholder header, lets fill write the
// elements, then writes the real header, shrinking it when the count fits.
func (c *jsonReader) container(fix, b16, b32 byte, fill func() (int, error)) error {
	start := len(c.out)
	c.out = append(c.out, b32, 0, 0, 0, 0)
	n, err := fill()
	if err != nil {
		return err
	}
	body := start + 5
	var hdr []byte
	switch {
	case n < 16:
		hdr = []byte{fix | byte(n)}
	case n <= math.MaxUint16:
		hdr = []byte{b16, byte(n >> 8), byte(n)}
	default:
		binary.BigEndian.PutUint32(c.out[start+1:], uint32(n))
		return nil
	}
	copy(c.out[start:], hdr)
	moved := copy(c.out[start+len(hdr):], c.out[body:])
	c.out = c.out[:start+len(hdr)+moved]
	return nil
}

func (c *jsonReader) object(depth int) error {
	c.pos++ // '{'
	return c.container(0x80, 0xde, 0xdf, func() (int, error) {
		n := 0
		c.skipSpace()
		if c.pos < len(c.in) && c.in[c.pos] == '}' {
			c.pos++
			return 0, nil
		}
		for {
			c.skipSpace()
			if c.pos >= len(c.in) || c.in[c.pos] != '"' {
				return 0, c.errorf("expected object key")
			}
			k, err := c.str()
			if err != nil {
				return 0, err
			}
			c.out = appendMsgpackStr(c.out, k)
			c.skipSpace()
			if c.pos >= len(c.in) || c.in[c.pos] != ':' {
				return 0, c.errorf("expected ':'")
			}
			c.pos++
			if err := c.value(depth); err != nil {
				return 0, err
			}
			n++
			c.skipSpace()
			if c.pos >= len(c.in) {
				return 0, c.errorf("unexpected end of object")
			}
			switch c.in[c.pos] {
			case ',':
				c.pos++
			case '}':
				c.pos++
				return n, nil
			default:
				return 0, c.errorf("expected ',' or '}'")
			}
		}
	})
}

func (c *jsonReader) array(depth int) error {
	c.pos++ // '['
	return c.container(0x90, 0xdc, 0xdd, func() (int, error) {
		n := 0
		c.skipSpace()
		if c.pos < len(c.in) && c.in[c.pos] == ']' {
			c.pos++
			return 0, nil
		}
		for {
			if err := c.value(depth); err != nil {
				return 0, err
			}
			n++
			c.skipSpace()
			if c.pos >= len(c.in) {
				return 0, c.errorf("unexpected end of array")
			}
			switch c.in[c.pos] {
			case ',':
				c.pos++
			case ']':
				c.pos++
				return n, nil
			default:
				return 0, c.errorf("expected ',' or ']'")
			}
		}
	})
}

// str reads a JSON string at c.pos and returns its unescaped bytes. The
// result aliases the input when the string has no escapes.
func (c *jsonReader) str() ([]byte, error) {
	c.pos++ // opening quote
	start := c.pos
	for c.pos < len(c.in) {
		ch := c.in[c.pos]
		if ch == '"' {
			s := c.in[start:c.pos]
			c.pos++
			if !utf8.Valid(s) {
				return []byte(toValidUTF8(s)), nil
			}
			return s, nil
		}
		if ch == '\\' || ch < 0x20 {
			break
		}
		c.pos++
	}
	buf := append([]byte(nil), c.in[start:c.pos]...)
	for c.pos < len(c.in) {
		ch := c.in[c.pos]
		switch {
		case ch == '"':
			c.pos++
			if !utf8.Valid(buf) {
				return []byte(toValidUTF8(buf)), nil
			}
			return buf, nil
		case ch < 0x20:
			return nil, c.errorf("control character in string")
		case ch == '\\':
			if c.pos+1 >= len(c.in) {
				return nil, c.errorf("unterminated escape")
			}
			esc := c.in[c.pos+1]
			c.pos += 2
			switch esc {
			case '"', '\\', '/':
				buf = append(buf, esc)
			case 'b':
				buf = append(buf, '\b')
			case 'f':
				buf = append(buf, '\f')
			case 'n':
				buf = append(buf, '\n')
			case 'r':
				buf = append(buf, '\r')
			case 't':
				buf = append(buf, '\t')
			case 'u':
				r, ok := c.hex4()
				if !ok {
					return nil, c.errorf("invalid \\u escape")
				}
				if utf16.IsSurrogate(r) {
					r2 := utf8.RuneError
					if c.pos+1 < len(c.in) && c.in[c.pos] == '\\' && c.in[c.pos+1] == 'u' {
						save := c.pos
						c.pos += 2
						lo, ok := c.hex4()
						if !ok {
							return nil, c.errorf("invalid \\u escape")
						}
						if d := utf16.DecodeRune(r, lo); d != utf8.RuneError {
							r2 = d
						} else {
							c.pos = save
						}
					}
					r = r2
				}
				buf = utf8.AppendRune(buf, r)
			default:
				return nil, c.errorf("invalid escape \\%c", esc)
			}
		default:
			buf = append(buf, ch)
			c.pos++
		}
	}
	return nil, c.errorf("unterminated string")
}

func (c *jsonReader) hex4() (rune, bool) {
	if len(c.in)-c.pos < 4 {
		return 0, false
	}
	var r rune
	for _, h := range c.in[c.pos : c.pos+4] {
		r <<= 4
		switch {
		case h >= '0' && h <= '9':
			r |= rune(h - '0')
		case h >= 'a' && h <= 'f':
			r |= rune(h - 'a' + 10)
		case h >= 'A' && h <= 'F':
			r |= rune(h - 'A' + 10)
		default:
			return 0, false
		}
	}
	c.pos += 4
	return r, true
}

func (c *jsonReader) number() error {
	start := c.pos
	isInt := true
	if c.in[c.pos] == '-' {
		c.pos++
	}
	digits := func() int {
		n := 0
		for c.pos < len(c.in) && c.in[c.pos] >= '0' && c.in[c.pos] <= '9' {
			c.pos++
			n++
		}
		return n
	}
	if c.pos < len(c.in) && c.in[c.pos] == '0' {
		c.pos++
	} else if digits() == 0 {
		return c.errorf("invalid number")
	}
	if c.pos < len(c.in) && c.in[c.pos] == '.' {
		isInt = false
		c.pos++
		if digits() == 0 {
			return c.errorf("invalid number")
		}
	}
	if c.pos < len(c.in) && (c.in[c.pos] == 'e' || c.in[c.pos] == 'E') {
		isInt = false
		c.pos++
		if c.pos < len(c.in) && (c.in[c.pos] == '+' || c.in[c.pos] == '-') {
			c.pos++
		}
		if digits() == 0 {
			return c.errorf("invalid number")
		}
	}
	// Converted where it is used, so that it stays on the stack.
	text := c.in[start:c.pos]
	if isInt {
		if i, err := strconv.ParseInt(string(text), 10, 64); err == nil {
			c.out = appendMsgpackInt(c.out, i)
			return nil
		}
		if u, err := strconv.ParseUint(string(text), 10, 64); err == nil {
			c.out = appendMsgpackUint(c.out, u)
			return nil
		}
	}
	f, err := strconv.ParseFloat(string(text), 64)
	if err != nil {
		return c.errorf("number %s out of range", text)
	}
	c.out = append(c.out, 0xcb)
	c.out = binary.BigEndian.AppendUint64(c.out, math.Float64bits(f))
	return nil
}

func toValidUTF8(b []byte) string {
	out := make([]rune, 0, len(b))
	for len(b) > 0 {
		r, size := utf8.DecodeRune(b)
		out = append(out, r)
		b = b[size:]
	}
	return string(out)
}

func appendMsgpackStr(dst, s []byte) []byte {
	n := len(s)
	switch {
	case n < 32:
		dst = append(dst, 0xa0|byte(n))
	case n <= math.MaxUint8:
		dst = append(dst, 0xd9, byte(n))
	case n <= math.MaxUint16:
		dst = append(dst, 0xda, byte(n>>8), byte(n))
	default:
		dst = append(dst, 0xdb)
		dst = binary.BigEndian.AppendUint32(dst, uint32(n))
	}
	return append(dst, s...)
}

func appendMsgpackInt(dst []byte, i int64) []byte {
	switch {
	case i >= 0:
		return appendMsgpackUint(dst, uint64(i))
	case i >= -32:
		return append(dst, byte(i))
	case i >= math.MinInt8:
		return append(dst, 0xd0, byte(i))
	case i >= math.MinInt16:
		return append(dst, 0xd1, byte(i>>8), byte(i))
	case i >= math.MinInt32:
		dst = append(dst, 0xd2)
		return binary.BigEndian.AppendUint32(dst, uint32(i))
	default:
		dst = append(dst, 0xd3)
		return binary.BigEndian.AppendUint64(dst, uint64(i))
	}
}

func appendMsgpackUint(dst []byte, u uint64) []byte {
	switch {
	case u < 128:
		return append(dst, byte(u))
	case u <= math.MaxUint8:
		return append(dst, 0xcc, byte(u))
	case u <= math.MaxUint16:
		return append(dst, 0xcd, byte(u>>8), byte(u))
	case u <= math.MaxUint32:
		dst = append(dst, 0xce)
		return binary.BigEndian.AppendUint32(dst, uint32(u))
	default:
		dst = append(dst, 0xcf)
		return binary.BigEndian.AppendUint64(dst, u)
	}
}
