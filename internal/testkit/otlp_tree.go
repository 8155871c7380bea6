package testkit

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"go.opentelemetry.io/otel/codes"
)

// Tree maps a span id to the spans among spans whose parent it is, each
// list in start order; the spans with no parent are under "". A parent id
// need not be among spans: see [Orphans].
func Tree(spans []Span) map[string][]Span {
	tree := map[string][]Span{}
	for _, s := range spans {
		tree[s.ParentSpanID] = append(tree[s.ParentSpanID], s)
	}
	for _, children := range tree {
		sortByStart(children)
	}
	return tree
}

// Roots returns, in start order, the spans among spans that have no parent
// or whose parent is not among them.
func Roots(spans []Span) []Span {
	ids := spanIDs(spans)
	var roots []Span
	for _, s := range spans {
		if s.ParentSpanID == "" || !ids[s.ParentSpanID] {
			roots = append(roots, s)
		}
	}
	sortByStart(roots)
	return roots
}

// Orphans returns, in the order of spans, those whose parent span id is set
// but is neither among spans nor one of allowedParents: a span whose parent
// was never exported (or not yet), or a context that was not propagated.
// Allow the parents that nobody exports, such as the span id of a test
// client's traceparent.
func Orphans(spans []Span, allowedParents ...string) []Span {
	known := spanIDs(spans)
	for _, id := range allowedParents {
		known[id] = true
	}
	var out []Span
	for _, s := range spans {
		if s.ParentSpanID != "" && !known[s.ParentSpanID] {
			out = append(out, s)
		}
	}
	return out
}

// ByName returns, in the order of spans, those named name.
func ByName(spans []Span, name string) []Span {
	var out []Span
	for _, s := range spans {
		if s.Name == name {
			out = append(out, s)
		}
	}
	return out
}

// Format prints spans as trees, one per trace (the earliest first), each
// span on a line indented under its parent, in start order:
//
//	trace 4bf92f3577b34da6a3ce929d0e0e4736
//	  tools/call echo [server gateway 2.1ms] mcp.method.name="tools/call"
//	    publish mcp.requests.echo [producer gateway 310µs] …
//	      · event retry attempt=2
//	      → link 0af7651916cd43dd8448eb211c80319c/b7ad6b7169203331
//	  process echo [consumer worker 1.2ms] … (parent 00f067aa0ba902b7 not among these spans)
//
// with the span's name, kind, service and duration, its attributes (long
// values cut short), its status when set, and its events and links.
func Format(spans []Span) string {
	byTrace := map[string][]Span{}
	for _, s := range spans {
		byTrace[s.TraceID] = append(byTrace[s.TraceID], s)
	}
	traces := make([][]Span, 0, len(byTrace))
	for _, t := range byTrace {
		traces = append(traces, t)
	}
	sort.Slice(traces, func(i, j int) bool { return earliest(traces[i]).Before(earliest(traces[j])) })

	var b strings.Builder
	for _, t := range traces {
		fmt.Fprintf(&b, "trace %s\n", t[0].TraceID)
		tree, ids, done := Tree(t), spanIDs(t), map[string]bool{}
		var write func(s Span, depth int)
		write = func(s Span, depth int) {
			if done[s.SpanID] { // only a malformed input loops
				return
			}
			done[s.SpanID] = true
			indent := strings.Repeat("  ", depth)
			b.WriteString(indent + formatSpan(s))
			if s.ParentSpanID != "" && !ids[s.ParentSpanID] {
				fmt.Fprintf(&b, " (parent %s not among these spans)", s.ParentSpanID)
			}
			b.WriteByte('\n')
			for _, e := range s.Events {
				fmt.Fprintf(&b, "%s  · event %s%s\n", indent, e.Name, formatAttributes(e.Attributes))
			}
			for _, l := range s.Links {
				fmt.Fprintf(&b, "%s  → link %s/%s%s\n", indent, l.TraceID, l.SpanID, formatAttributes(l.Attributes))
			}
			for _, c := range tree[s.SpanID] {
				write(c, depth+1)
			}
		}
		for _, r := range Roots(t) {
			write(r, 1)
		}
	}
	return b.String()
}

func formatSpan(s Span) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s [%s", s.Name, s.Kind)
	if svc := s.Service(); svc != "" {
		b.WriteString(" " + svc)
	}
	fmt.Fprintf(&b, " %s]%s", s.Duration().Round(time.Microsecond), formatAttributes(s.Attributes))
	if s.Status.Code != codes.Unset {
		fmt.Fprintf(&b, " status=%s", s.Status.Code)
		if s.Status.Message != "" {
			fmt.Fprintf(&b, "(%q)", s.Status.Message)
		}
	}
	return b.String()
}

// formatAttributes gives attrs as " k=v k=v", sorted by key, strings
// quoted, values longer than 80 characters cut short.
func formatAttributes(attrs map[string]any) string {
	var b strings.Builder
	for _, k := range sortedKeys(attrs) {
		var v string
		switch x := attrs[k].(type) {
		case string:
			v = fmt.Sprintf("%q", x)
		case []byte:
			v = fmt.Sprintf("0x%x", x)
		default:
			v = fmt.Sprint(x)
		}
		if r := []rune(v); len(r) > 80 {
			v = string(r[:77]) + "…"
		}
		fmt.Fprintf(&b, " %s=%s", k, v)
	}
	return b.String()
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func spanIDs(spans []Span) map[string]bool {
	ids := make(map[string]bool, len(spans))
	for _, s := range spans {
		ids[s.SpanID] = true
	}
	return ids
}

func sortByStart(spans []Span) {
	sort.SliceStable(spans, func(i, j int) bool {
		if !spans[i].Start.Equal(spans[j].Start) {
			return spans[i].Start.Before(spans[j].Start)
		}
		return spans[i].Name < spans[j].Name
	})
}

func earliest(spans []Span) time.Time {
	t := spans[0].Start
	for _, s := range spans[1:] {
		if s.Start.Before(t) {
			t = s.Start
		}
	}
	return t
}
