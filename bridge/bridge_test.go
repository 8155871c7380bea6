package bridge

import (
	"bufio"
	"io"
	"strings"
	"testing"
)

func TestHeaderValue(t *testing.T) {
	for in, want := range map[string]string{
		"echo":               "echo",
		"Hello, 世界":          "=?base64?SGVsbG8sIOS4lueVjA==?=",
		" padded ":           "=?base64?IHBhZGRlZCA=?=",
		"=?base64?literal?=": "=?base64?PT9iYXNlNjQ/bGl0ZXJhbD89?=",
	} {
		if got := headerValue(in); got != want {
			t.Errorf("headerValue(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestReadLineSkipsOversizedLines(t *testing.T) {
	in := strings.Repeat("x", MaxMessage+10) + "\n{\"ok\":1}\n"
	r := bufio.NewReaderSize(strings.NewReader(in), 64<<10)
	if line, err := readLine(r); line != nil || err != nil {
		t.Fatalf("oversized line: %d bytes, %v; want it skipped", len(line), err)
	}
	if line, err := readLine(r); string(line) != "{\"ok\":1}\n" || err != nil {
		t.Fatalf("next line %q, %v", line, err)
	}
	if _, err := readLine(r); err != io.EOF {
		t.Fatalf("at the end: %v", err)
	}
}
