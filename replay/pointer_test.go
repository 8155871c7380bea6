package replay

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

// decode decodes s as Compare does, numbers as json.Number.
func decode(t testing.TB, s string) any {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("decoding %s: %v", s, err)
	}
	return v
}

// encode is v as compact JSON, members sorted.
func encode(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("encoding %v: %v", v, err)
	}
	return string(b)
}

// pointer parses s, failing the test if it is not a pointer.
func pointer(t testing.TB, s string) Pointer {
	t.Helper()
	p, err := ParsePointer(s)
	if err != nil {
		t.Fatalf("ParsePointer(%q): %v", s, err)
	}
	return p
}

// TestParsePointer: tokens are split on '/' and unescaped ~1 then ~0;
// pointers without a leading '/' and bad escapes are refused with an
// error that says what is wrong.
func TestParsePointer(t *testing.T) {
	for s, want := range map[string][]string{
		"":          nil,
		"/":         {""},
		"/a/b":      {"a", "b"},
		"/a~1b":     {"a/b"},
		"/m~0n":     {"m~n"},
		"/~01":      {"~1"}, // not "/": ~0 is unescaped last
		"/~10":      {"/0"},
		"/a//b":     {"a", "", "b"},
		"/*/0/x~0*": {"*", "0", "x~*"},
	} {
		p := pointer(t, s)
		if len(p.segs) != len(want) || strings.Join(p.segs, "\x00") != strings.Join(want, "\x00") {
			t.Errorf("ParsePointer(%q) = %q, want %q", s, p.segs, want)
		}
		if p.String() != s {
			t.Errorf("ParsePointer(%q).String() = %q", s, p.String())
		}
	}
	for s, msg := range map[string]string{
		"a/b":  `starts with "/"`,
		"#/a":  `starts with "/"`,
		"/a~":  "followed by 0 or 1",
		"/a~2": "followed by 0 or 1",
		"/~/b": "followed by 0 or 1",
	} {
		if _, err := ParsePointer(s); err == nil || !strings.Contains(err.Error(), msg) || !strings.Contains(err.Error(), s) {
			t.Errorf("ParsePointer(%q): error %v, want one naming it and saying %q", s, err, msg)
		}
	}
}

// TestPointerRemove: members and elements are removed where the pointer
// leads, wildcards fan out over arrays and objects, array elements go by
// index, and paths that are not there change nothing.
func TestPointerRemove(t *testing.T) {
	doc := `{"a":{"b":1,"c":2},"arr":[{"t":"x","k":1},{"t":"y","k":2},{"k":3}],"a/b":{"m~n":true},"n":[1,2,3],"s":"str"}`
	for _, c := range []struct{ ptr, want string }{
		{"/a/b", `{"a":{"c":2},"a/b":{"m~n":true},"arr":[{"k":1,"t":"x"},{"k":2,"t":"y"},{"k":3}],"n":[1,2,3],"s":"str"}`},
		{"/a", `{"a/b":{"m~n":true},"arr":[{"k":1,"t":"x"},{"k":2,"t":"y"},{"k":3}],"n":[1,2,3],"s":"str"}`},
		{"/a~1b/m~0n", `{"a":{"b":1,"c":2},"a/b":{},"arr":[{"k":1,"t":"x"},{"k":2,"t":"y"},{"k":3}],"n":[1,2,3],"s":"str"}`},
		{"/arr/*/t", `{"a":{"b":1,"c":2},"a/b":{"m~n":true},"arr":[{"k":1},{"k":2},{"k":3}],"n":[1,2,3],"s":"str"}`},
		{"/arr/1", `{"a":{"b":1,"c":2},"a/b":{"m~n":true},"arr":[{"k":1,"t":"x"},{"k":3}],"n":[1,2,3],"s":"str"}`},
		{"/n/0", `{"a":{"b":1,"c":2},"a/b":{"m~n":true},"arr":[{"k":1,"t":"x"},{"k":2,"t":"y"},{"k":3}],"n":[2,3],"s":"str"}`},
		{"/n/*", `{"a":{"b":1,"c":2},"a/b":{"m~n":true},"arr":[{"k":1,"t":"x"},{"k":2,"t":"y"},{"k":3}],"n":[],"s":"str"}`},
		{"/a/*", `{"a":{},"a/b":{"m~n":true},"arr":[{"k":1,"t":"x"},{"k":2,"t":"y"},{"k":3}],"n":[1,2,3],"s":"str"}`},
		{"/*/b", `{"a":{"c":2},"a/b":{"m~n":true},"arr":[{"k":1,"t":"x"},{"k":2,"t":"y"},{"k":3}],"n":[1,2,3],"s":"str"}`},
		{"/*/*/k", `{"a":{"b":1,"c":2},"a/b":{"m~n":true},"arr":[{"t":"x"},{"t":"y"},{}],"n":[1,2,3],"s":"str"}`},
		// Not there: nothing changes.
		{"/missing", doc},
		{"/a/missing/deeper", doc},
		{"/n/3", doc},
		{"/n/-", doc},
		{"/n/01", doc},
		{"/n/x", doc},
		{"/s/0", doc},
		{"/arr/9/t", doc},
		{"", doc},
	} {
		v := decode(t, doc)
		pointer(t, c.ptr).Remove(v)
		if got, want := encode(t, v), encode(t, decode(t, c.want)); got != want {
			t.Errorf("Remove %q:\n got %s\nwant %s", c.ptr, got, want)
		}
	}
}

// TestPointerRemoveTopArray: a document that is an array loses elements
// when given by pointer, and is left whole (not corrupted) when not.
func TestPointerRemoveTopArray(t *testing.T) {
	v := decode(t, `[1,2,3]`)
	pointer(t, "/1").Remove(&v)
	if got := encode(t, v); got != `[1,3]` {
		t.Errorf("Remove /1 of *[1,2,3] = %s", got)
	}
	pointer(t, "/*").Remove(&v)
	if got := encode(t, v); got != `[]` {
		t.Errorf("Remove /* = %s", got)
	}
	var nilDoc *any
	pointer(t, "/a").Remove(nilDoc) // no panic
	pointer(t, "/a").Remove(nil)
}

// TestPointerMask: matched values are replaced, wildcards replace every
// element or member, nothing is added where the path is missing, and the
// whole document is replaced only through a pointer.
func TestPointerMask(t *testing.T) {
	doc := `{"content":[{"type":"text","text":"a"},{"type":"image","data":"b"}],"x~y":{"p/q":1},"n":[1, 2.50]}`
	same := `{"content":[{"type":"text","text":"a"},{"type":"image","data":"b"}],"x~y":{"p/q":1},"n":[1, 2.50]}`
	for _, c := range []struct{ ptr, want string }{
		{"/content/*/text", `{"content":[{"type":"text","text":"***"},{"type":"image","data":"b"}],"x~y":{"p/q":1},"n":[1, 2.50]}`},
		{"/content/1", `{"content":[{"type":"text","text":"a"},"***"],"x~y":{"p/q":1},"n":[1, 2.50]}`},
		{"/n/*", `{"content":[{"type":"text","text":"a"},{"type":"image","data":"b"}],"x~y":{"p/q":1},"n":["***","***"]}`},
		{"/x~0y/p~1q", `{"content":[{"type":"text","text":"a"},{"type":"image","data":"b"}],"x~y":{"p/q":"***"},"n":[1, 2.50]}`},
		{"/content/*/*", `{"content":[{"type":"***","text":"***"},{"type":"***","data":"***"}],"x~y":{"p/q":1},"n":[1, 2.50]}`},
		{"/content/0/missing", same},
		{"/content/2/text", same},
		{"/nothing/*", same},
		{"", `"***"`},
	} {
		got, err := pointer(t, c.ptr).MaskJSON([]byte(doc), []byte(`"***"`))
		if err != nil || string(got) != c.want {
			t.Errorf("MaskJSON %q:\n got %s (%v)\nwant %s", c.ptr, got, err, c.want)
		}
	}
	if _, err := pointer(t, "/a").MaskJSON([]byte(`{"a":`), []byte(`"***"`)); err == nil {
		t.Error("MaskJSON of broken JSON: no error")
	}
}

// FuzzPointer: a parsed pointer prints as what it was parsed from, and
// that parses back to the same tokens; Remove never panics, and
// MaskJSON keeps JSON valid.
func FuzzPointer(f *testing.F) {
	for _, s := range []string{"", "/", "/a/b", "/a~1b/~0", "/*/0", "/~01", "a", "/~2", "//", "/0/-"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParsePointer(s)
		if err != nil {
			return
		}
		if p.String() != s {
			t.Fatalf("ParsePointer(%q).String() = %q", s, p.String())
		}
		q, err := ParsePointer(p.String())
		if err != nil {
			t.Fatalf("ParsePointer(%q) of %q: %v", p.String(), s, err)
		}
		if len(q.segs) != len(p.segs) {
			t.Fatalf("%q: %q, then %q", s, p.segs, q.segs)
		}
		for i := range p.segs {
			if p.segs[i] != q.segs[i] {
				t.Fatalf("%q: %q, then %q", s, p.segs, q.segs)
			}
		}
		text := `{"a":[{"b":1},2,{"~":{"/":[3]}}],"*":{"0":null}}`
		masked, err := p.MaskJSON([]byte(text), []byte(`"x"`))
		if err != nil || !json.Valid(masked) {
			t.Fatalf("MaskJSON %q: %s %v", s, masked, err)
		}
		doc := decode(t, text)
		p.Remove(doc)
		var buf bytes.Buffer
		if err := json.NewEncoder(&buf).Encode(doc); err != nil {
			t.Fatal(err)
		}
	})
}
