package replay

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/mcpstream/mcpstream/schema"
	"github.com/mcpstream/mcpstream/streams"
)

// Masked is what a masked value prints as.
const Masked = "***"

// maxCachedTools bounds the input schemas a [Masker] keeps.
const maxCachedTools = 4096

// Masker writes lines with what must not be shown masked: the arguments a
// tool's input schema marks sensitive ([schema.SensitiveKeyword]), unless
// ShowSensitive, and the Redact pointers (from the line's root, e.g.
// /arguments/query or /result/content/*/text). The zero value masks
// nothing.
type Masker struct {
	// Redact are the pointers masked in every line.
	Redact []Pointer
	// ShowSensitive prints sensitive arguments as they are.
	ShowSensitive bool
	// Registry is where tools' input schemas are read (the registry
	// bucket); nil masks no sensitive argument. A tool not in the
	// registry (removed since, or renamed) has no schema to say which of
	// its arguments are sensitive: all of them are masked, and Log warns
	// once for the tool.
	Registry jetstream.KeyValue
	// Log, when set, receives the warnings (a tool not in the registry).
	Log *slog.Logger

	tools map[string][]Pointer // sensitive pointers by tool, from the line's root
}

// NewMasker returns a masker reading input schemas from js's registry
// bucket. It returns the error of opening the bucket.
func NewMasker(ctx context.Context, js jetstream.JetStream, redact []Pointer, showSensitive bool) (*Masker, error) {
	m := &Masker{Redact: redact, ShowSensitive: showSensitive}
	if showSensitive {
		return m, nil
	}
	kv, err := js.KeyValue(ctx, streams.RegistryBucket)
	if err != nil {
		return nil, fmt.Errorf("opening bucket %s: %w", streams.RegistryBucket, err)
	}
	m.Registry = kv
	return m, nil
}

// Marshal returns l as one JSON line (with its newline), masked, its
// members in the order of a [Line]. It returns the registry's error other
// than a missing tool.
func (m *Masker) Marshal(ctx context.Context, l *Line) ([]byte, error) {
	masks := m.Redact
	if l.Method == schema.MethodToolsCall && len(l.Arguments) > 0 {
		sensitive, err := m.sensitive(ctx, l.Tool)
		if err != nil {
			return nil, err
		}
		masks = append(sensitive[:len(sensitive):len(sensitive)], masks...)
	}
	if len(masks) > 0 {
		masked, err := mask(l, masks)
		if err != nil {
			return nil, fmt.Errorf("masking %s seq %d: %w", l.Stream, l.Seq, err)
		}
		l = masked
	}
	b, err := encodeLine(l)
	if err != nil {
		return nil, fmt.Errorf("encoding %s seq %d: %w", l.Stream, l.Seq, err)
	}
	return b, nil
}

// mask returns a copy of l with what masks point at masked. A pointer's
// first member names the line's member: in arguments, result and the
// error's data it goes on into the value (members keep their order); an
// error's message is masked whole (its code stays); another string
// member is masked whole.
func mask(l *Line, masks []Pointer) (*Line, error) {
	c := *l
	var err error
	for _, p := range masks {
		if len(p.segs) == 0 {
			continue
		}
		sub := Pointer{segs: p.segs[1:]}
		switch p.segs[0] {
		case "arguments":
			c.Arguments, err = maskJSON(c.Arguments, sub)
		case "result":
			c.Result, err = maskJSON(c.Result, sub)
		case "error":
			if c.Error == nil {
				break
			}
			e := *c.Error
			switch {
			case len(sub.segs) == 0: // the whole error: its code stays
				e.Message, e.Data = Masked, nil
			case sub.segs[0] == "message" || sub.segs[0] == "*":
				e.Message = Masked
			}
			if len(sub.segs) > 0 && (sub.segs[0] == "data" || sub.segs[0] == "*") {
				e.Data, err = maskJSON(e.Data, Pointer{segs: sub.segs[1:]})
			}
			c.Error = &e
		default:
			if len(sub.segs) == 0 {
				maskMember(&c, p.segs[0])
			}
		}
		if err != nil {
			return nil, err
		}
	}
	return &c, nil
}

// maskJSON returns the JSON value b with what p points at masked.
func maskJSON(b json.RawMessage, p Pointer) (json.RawMessage, error) {
	if len(b) == 0 {
		return b, nil
	}
	return p.MaskJSON(b, []byte(`"`+Masked+`"`))
}

// maskMember masks the string member of l named name (as its JSON
// name); other members, numbers and times, are left as they are.
func maskMember(l *Line, name string) {
	for _, f := range []struct {
		name string
		v    *string
	}{{"key", &l.Key}, {"session", &l.Session}, {"principal", &l.Principal}, {"group", &l.Group},
		{"tool", &l.Tool}, {"trace_id", &l.TraceID}, {"revision", &l.Revision}} {
		if f.name == name && *f.v != "" {
			*f.v = Masked
		}
	}
}

// sensitive returns the pointers, from a line's root, of tool's sensitive
// arguments.
func (m *Masker) sensitive(ctx context.Context, tool string) ([]Pointer, error) {
	if m.ShowSensitive || m.Registry == nil {
		return nil, nil
	}
	if ps, ok := m.tools[tool]; ok {
		return ps, nil
	}
	var ps []Pointer
	e, err := m.Registry.Get(ctx, streams.ToolKey(tool))
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
		ps = []Pointer{{segs: []string{"arguments", Wildcard}}}
		if m.Log != nil {
			m.Log.Warn("tool not in the registry, which of its arguments are sensitive is not known: all masked (--show-sensitive prints them)",
				"tool", tool)
		}
	case err != nil:
		return nil, fmt.Errorf("reading the schema of tool %s: %w", tool, err)
	default:
		var te schema.ToolEntry
		if err := json.Unmarshal(e.Value(), &te); err != nil {
			return nil, fmt.Errorf("decoding the registry entry of tool %s: %w", tool, err)
		}
		for _, path := range schema.SensitivePaths(te.InputSchema) {
			p, err := ParsePointer("/arguments/" + escapePath(path))
			if err != nil {
				return nil, err
			}
			ps = append(ps, p)
		}
	}
	if m.tools == nil || len(m.tools) >= maxCachedTools {
		m.tools = map[string][]Pointer{}
	}
	m.tools[tool] = ps
	return ps, nil
}

// escapePath joins member names into a pointer's text (without its
// leading slash), escaping them as RFC 6901 says.
func escapePath(path []string) string {
	r := strings.NewReplacer("~", "~0", "/", "~1")
	for i, s := range path {
		path[i] = r.Replace(s)
	}
	return strings.Join(path, "/")
}

// encodeLine encodes v as one line of JSON, HTML characters as they are.
func encodeLine(v any) ([]byte, error) {
	var out bytes.Buffer
	enc := json.NewEncoder(&out)
	enc.SetEscapeHTML(false)
	err := enc.Encode(v)
	return out.Bytes(), err
}
