package schema

import (
	"errors"
	"unicode/utf8"
)

// ErrNotText is returned by [CheckText] for bytes that pass the JSON
// grammar but are not interchangeable JSON text.
var ErrNotText = errors.New("schema: not interchangeable JSON text")

// CheckText returns an error wrapping [ErrNotText] when data, which the
// JSON grammar may accept, is not JSON text that systems may exchange:
// text that is not UTF-8 (RFC 8259 section 8.1), or a \u escape of a lone
// surrogate (section 8.2 leaves its meaning unpredictable, and I-JSON, RFC
// 7493, forbids it), which decoders silently turn into U+FFFD, so that a
// worker would see another string than the client sent. It does not
// validate the rest of the grammar, and allocates nothing.
func CheckText(data []byte) error {
	if !utf8.Valid(data) {
		return errors.Join(ErrNotText, errors.New("invalid UTF-8"))
	}
	inString := false
	for i := 0; i < len(data); i++ {
		c := data[i]
		if !inString {
			inString = c == '"'
			continue
		}
		switch c {
		case '"':
			inString = false
		case '\\':
			i++
			if i >= len(data) || data[i] != 'u' {
				continue
			}
			r, ok := hex4(data, i+1)
			if !ok {
				continue // malformed: the grammar check refuses it
			}
			i += 4
			switch {
			case r >= 0xDC00 && r <= 0xDFFF:
				return errors.Join(ErrNotText, errors.New("lone low surrogate in a \\u escape"))
			case r >= 0xD800 && r <= 0xDBFF:
				if i+2 >= len(data) || data[i+1] != '\\' || data[i+2] != 'u' {
					return errors.Join(ErrNotText, errors.New("lone high surrogate in a \\u escape"))
				}
				if lo, ok := hex4(data, i+3); !ok || lo < 0xDC00 || lo > 0xDFFF {
					return errors.Join(ErrNotText, errors.New("lone high surrogate in a \\u escape"))
				}
				i += 6
			}
		}
	}
	return nil
}

// hex4 reads the four hex digits of a \u escape at data[i:].
func hex4(data []byte, i int) (rune, bool) {
	if i+4 > len(data) {
		return 0, false
	}
	var r rune
	for _, c := range data[i : i+4] {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c -= 'a' - 10
		case c >= 'A' && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}
