package bridge

import (
	"bufio"
	"io"
	"strings"
	"testing"
	"time"
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
	if line, oversized, err := readLine(r); line != nil || !oversized || err != nil {
		t.Fatalf("oversized line: %d bytes, oversized %v, %v; want it skipped and reported", len(line), oversized, err)
	}
	if line, oversized, err := readLine(r); string(line) != "{\"ok\":1}\n" || oversized || err != nil {
		t.Fatalf("next line %q, %v, %v", line, oversized, err)
	}
	if _, _, err := readLine(r); err != io.EOF {
		t.Fatalf("at the end: %v", err)
	}
}

func TestMarkRelated(t *testing.T) {
	got := string(markRelated([]byte(`{"jsonrpc":"2.0","id":5,"method":"sampling/createMessage","params":{"_meta":{"k":1},"maxTokens":3}}`), []byte("12")))
	if !strings.Contains(got, `"io.mcpstream/relatedRequest":12`) || !strings.Contains(got, `"k":1`) || !strings.Contains(got, `"maxTokens":3`) {
		t.Fatalf("marked request %s", got)
	}
	if got := string(markRelated([]byte(`{"jsonrpc":"2.0","method":"notifications/message"}`), []byte(`"a"`))); !strings.Contains(got, `"_meta":{"io.mcpstream/relatedRequest":"a"}`) {
		t.Fatalf("marked notification without params %s", got)
	}
	resp := `{"jsonrpc":"2.0","id":12,"result":{}}`
	if got := string(markRelated([]byte(resp), []byte("12"))); got != resp {
		t.Fatalf("a response was changed: %s", got)
	}
}

func TestEventsKeepsIDAndRetry(t *testing.T) {
	var out strings.Builder
	b := &Bridge{w: &out}
	var st sseState
	b.events(strings.NewReader("retry: 1500\n\nid: 7\nevent: message\ndata: {\"a\":1}\n\n: keep-alive\n\nid: 8\n\nid: bad\x00\nretry: x\ndata:{\"b\":2}\n\n"), false, nil, &st)
	if st.lastID != "8" || st.retry != 1500*time.Millisecond {
		t.Errorf("last event id %q, retry %v; want 8, 1.5s", st.lastID, st.retry)
	}
	if got := out.String(); got != "{\"a\":1}\n{\"b\":2}\n" {
		t.Errorf("relayed %q", got)
	}
	// The stream reopened carries only keep-alives before it ends: the
	// id is the last one set, on whichever stream (the SSE spec's last
	// event ID outlives a reconnection), not none.
	b.events(strings.NewReader(": keep-alive\n\n: keep-alive\n\n"), false, nil, &st)
	if st.lastID != "8" {
		t.Errorf("last event id %q after a stream of keep-alives, want 8 still", st.lastID)
	}
}

func TestStreamRetryDelay(t *testing.T) {
	if d := streamRetryDelay(0, 0, 0); d < streamRetryMin/2 || d > streamRetryMin {
		t.Errorf("first delay %v, want within [%v, %v]", d, streamRetryMin/2, streamRetryMin)
	}
	for _, c := range []struct {
		retry       time.Duration
		fails       int
		after, want time.Duration
	}{
		{retry: 3 * time.Second, want: 3 * time.Second},                     // the stream's retry: honoured
		{retry: 3 * time.Second, fails: 2, want: 12 * time.Second},          // doubled per failure in a row
		{retry: 3 * time.Second, fails: 1000, want: streamRetryMax},         // bounded
		{retry: time.Second, after: 5 * time.Second, want: 5 * time.Second}, // Retry-After wins
		{after: time.Hour, want: streamRetryMax},
	} {
		if got := streamRetryDelay(c.retry, c.fails, c.after); got != c.want {
			t.Errorf("streamRetryDelay(%v, %d, %v) = %v, want %v", c.retry, c.fails, c.after, got, c.want)
		}
	}
	if d := streamRetryDelay(0, 1000, 0); d != streamRetryMax {
		t.Errorf("after many failures %v, want %v", d, streamRetryMax)
	}
}
