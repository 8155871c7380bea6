package replay

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Wildcard is the pointer segment that matches every element of an array
// and every member of an object. A member literally named "*" is matched
// by it too; there is no way to name only that member.
const Wildcard = "*"

// Pointer is a JSON Pointer (RFC 6901) into a document decoded by
// encoding/json into an any (map[string]any, []any, strings, numbers,
// bools, nil), in which a [Wildcard] segment matches every element of an
// array or member of an object. The zero value is "", the whole document.
//
// A segment selects an array element only when it is an index written as
// RFC 6901 says: "0" or a decimal without leading zeros, within the array.
// "-" (past the end) and any other segment select nothing in an array.
type Pointer struct {
	segs []string // unescaped reference tokens
}

// ParsePointer parses s, a pointer as RFC 6901 writes it: "" for the whole
// document, else a "/" before each reference token, "~1" in a token for
// '/' and "~0" for '~'. It returns an error for a non-empty s that does not
// start with '/', and for a '~' followed by anything but '0' or '1'.
func ParsePointer(s string) (Pointer, error) {
	if s == "" {
		return Pointer{}, nil
	}
	if s[0] != '/' {
		return Pointer{}, fmt.Errorf("JSON pointer %q: a pointer is \"\" (the whole document) or starts with \"/\"", s)
	}
	segs := strings.Split(s[1:], "/")
	for i, seg := range segs {
		for j := 0; j < len(seg); j++ {
			if seg[j] == '~' && (j+1 == len(seg) || seg[j+1] != '0' && seg[j+1] != '1') {
				return Pointer{}, fmt.Errorf("JSON pointer %q: '~' in %q must be followed by 0 or 1 (~0 is '~', ~1 is '/')", s, seg)
			}
		}
		segs[i] = strings.ReplaceAll(strings.ReplaceAll(seg, "~1", "/"), "~0", "~")
	}
	return Pointer{segs: segs}, nil
}

// String is the pointer as RFC 6901 writes it; [ParsePointer] reads it back
// to the same pointer.
func (p Pointer) String() string {
	var b strings.Builder
	for _, s := range p.segs {
		b.WriteByte('/')
		b.WriteString(strings.ReplaceAll(strings.ReplaceAll(s, "~", "~0"), "/", "~1"))
	}
	return b.String()
}

// Remove removes from doc, in place, every object member and array element
// p matches; array elements are removed by index (the later ones move
// down). A path that is not in doc removes nothing. The whole document ("")
// is never removed.
//
// An array's length can only change in its parent: to remove elements of a
// document that is itself an array, pass a pointer to it (*any).
func (p Pointer) Remove(doc any) {
	if len(p.segs) == 0 {
		return
	}
	last := p.segs[len(p.segs)-1]
	p.parents(doc, func(node any) any {
		switch c := node.(type) {
		case map[string]any:
			if last == Wildcard {
				clear(c)
			} else {
				delete(c, last)
			}
		case []any:
			if last == Wildcard {
				clear(c) // drop the references the shortened slice still holds
				return c[:0]
			}
			if i, ok := index(last, len(c)); ok {
				out := append(c[:i], c[i+1:]...)
				c[len(c)-1] = nil
				return out
			}
		}
		return node
	})
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
		if segs[0] == Wildcard || segs[0] == key {
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

// parents calls f on every value that p's segments but the last lead to in
// doc, and puts what f returns in its place. doc may be a pointer to the
// document (*any).
func (p Pointer) parents(doc any, f func(any) any) {
	up := p.segs[:len(p.segs)-1]
	if d, ok := doc.(*any); ok {
		if d != nil {
			*d = walk(*d, up, f)
		}
		return
	}
	walk(doc, up, f)
}

// walk calls f on every value segs lead to from node, puts what f returns
// in its place, and returns node, or what f returned for node itself.
func walk(node any, segs []string, f func(any) any) any {
	if len(segs) == 0 {
		return f(node)
	}
	seg, rest := segs[0], segs[1:]
	switch c := node.(type) {
	case map[string]any:
		if seg != Wildcard {
			if v, ok := c[seg]; ok {
				c[seg] = walk(v, rest, f)
			}
			return node
		}
		for k, v := range c {
			c[k] = walk(v, rest, f)
		}
	case []any:
		if seg != Wildcard {
			if i, ok := index(seg, len(c)); ok {
				c[i] = walk(c[i], rest, f)
			}
			return node
		}
		for i, v := range c {
			c[i] = walk(v, rest, f)
		}
	}
	return node
}

// index reads seg as an index into an array of n elements: "0" or digits
// not starting with 0 (RFC 6901), below n.
func index(seg string, n int) (int, bool) {
	if seg == "" || len(seg) > 1 && seg[0] == '0' || len(seg) > 18 {
		return 0, false
	}
	i := 0
	for j := 0; j < len(seg); j++ {
		if seg[j] < '0' || seg[j] > '9' {
			return 0, false
		}
		i = 10*i + int(seg[j]-'0')
	}
	return i, i < n
}
