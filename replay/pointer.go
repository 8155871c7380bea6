package replay

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Pointer is a JSON Pointer (RFC 6901) in which a "*" segment matches
// every element of an array or member of an object.
type Pointer struct{ segs []string }

// ParsePointer parses s. It returns an error for a pointer that is not ""
// (the whole document) and does not start with '/', or that holds a '~'
// not followed by 0 or 1.
func ParsePointer(s string) (Pointer, error) {
	if s == "" {
		return Pointer{}, nil
	}
	if s[0] != '/' {
		return Pointer{}, errors.New(`a JSON pointer starts with "/"`)
	}
	segs := strings.Split(s[1:], "/")
	for i, seg := range segs {
		for j := 0; j < len(seg); j++ {
			if seg[j] == '~' && (j+1 == len(seg) || seg[j+1] != '0' && seg[j+1] != '1') {
				return Pointer{}, fmt.Errorf("bad escape in %q: ~ must be followed by 0 or 1", seg)
			}
		}
		segs[i] = strings.ReplaceAll(strings.ReplaceAll(seg, "~1", "/"), "~0", "~")
	}
	return Pointer{segs: segs}, nil
}

// String is the pointer's text.
func (p Pointer) String() string {
	var b strings.Builder
	for _, s := range p.segs {
		b.WriteByte('/')
		b.WriteString(strings.ReplaceAll(strings.ReplaceAll(s, "~", "~0"), "/", "~1"))
	}
	return b.String()
}

// MaskJSON returns the JSON value b with every value p matches replaced
// by with (JSON). Everything else is kept as written: members in their
// order, numbers and spacing as they were. A path that is not there is
// left alone. It returns an error for b that is not JSON.
func (p Pointer) MaskJSON(b []byte, with []byte) ([]byte, error) {
	return maskRaw(b, p.segs, with, 0)
}

// maxMaskDepth bounds how deep MaskJSON goes.
const maxMaskDepth = 64

// maskRaw masks what segs match in b.
func maskRaw(b []byte, segs []string, with []byte, depth int) ([]byte, error) {
	if len(segs) == 0 {
		return with, nil
	}
	if depth > maxMaskDepth {
		return nil, errors.New("nested too deep")
	}
	b = bytes.TrimSpace(b)
	if len(b) == 0 || (b[0] != '{' && b[0] != '[') {
		return b, nil // a scalar has no members
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	if _, err := dec.Token(); err != nil { // { or [
		return nil, err
	}
	out := []byte{b[0]}
	for i := 0; dec.More(); i++ {
		key := strconv.Itoa(i)
		if b[0] == '{' {
			t, err := dec.Token()
			if err != nil {
				return nil, err
			}
			key, _ = t.(string)
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, err
		}
		if segs[0] == "*" || segs[0] == key {
			m, err := maskRaw(v, segs[1:], with, depth+1)
			if err != nil {
				return nil, err
			}
			v = m
		}
		if i > 0 {
			out = append(out, ',')
		}
		if b[0] == '{' {
			k, _ := json.Marshal(key)
			out = append(append(out, k...), ':')
		}
		out = append(out, v...)
	}
	if _, err := dec.Token(); err != nil { // } or ]
		return nil, err
	}
	return append(out, b[len(b)-1]), nil
}

// Remove removes every member or element p matches in doc. A path that is
// not there is left alone; the whole document cannot be removed.
func (p Pointer) Remove(doc any) {
	if len(p.segs) == 0 {
		return
	}
	last := p.segs[len(p.segs)-1]
	visit(doc, p.segs[:len(p.segs)-1], func(node any) any {
		switch c := node.(type) {
		case map[string]any:
			if last == "*" {
				clear(c)
			} else {
				delete(c, last)
			}
		case []any:
			if last == "*" {
				return c[:0]
			}
			if i, err := strconv.Atoi(last); err == nil && i >= 0 && i < len(c) {
				return append(c[:i:i], c[i+1:]...)
			}
		}
		return node
	})
}

// visit calls f on every node segs lead to in doc, replacing the node
// with what f returns.
func visit(doc any, segs []string, f func(any) any) any {
	if len(segs) == 0 {
		return f(doc)
	}
	seg, rest := segs[0], segs[1:]
	switch c := doc.(type) {
	case map[string]any:
		for k, v := range c {
			if seg == "*" || k == seg {
				c[k] = visit(v, rest, f)
			}
		}
	case []any:
		for i, v := range c {
			if seg == "*" || strconv.Itoa(i) == seg {
				c[i] = visit(v, rest, f)
			}
		}
	}
	return doc
}
