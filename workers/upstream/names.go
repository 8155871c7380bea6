package upstream

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"regexp"
	"strings"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/mcpstream/mcpstream/streams"
)

// Prefix modes (Config.Prefix): whether the names of the upstream's tools
// and prompts get the prefix (Config.PrefixName and Config.Separator
// before the name).
const (
	// PrefixNone registers names as the upstream publishes them (the
	// default: clients, and MCP Apps whose HTML names their tools, see
	// what the server's documentation says). A name another group has is
	// refused.
	PrefixNone = "none"
	// PrefixAlways prefixes every name.
	PrefixAlways = "always"
	// PrefixConditional prefixes a name only when another group has
	// registered it. Which names get the prefix then depends on what was
	// registered first; a name once registered unprefixed stays so while
	// this group has it.
	PrefixConditional = "conditional"
)

// nameRE is what a separator and a prefix must match: they keep names
// within [a-zA-Z0-9._-].
var nameRE = regexp.MustCompile(`^[a-zA-Z0-9._-]+$`)

// maxNameLength is the longest tool or prompt name registered (the MCP
// specification's limit for tool names).
const maxNameLength = 128

// naming decides the names the upstream's tools and prompts are
// registered under.
type naming struct {
	mode, prefix, sep string
	include, exclude  []string
}

// checkNaming refuses a mode, prefix, separator or pattern that cannot be
// used.
func (n naming) check() error {
	switch n.mode {
	case PrefixNone, PrefixAlways, PrefixConditional:
	default:
		return fmt.Errorf("prefix mode %q: want %s, %s or %s", n.mode, PrefixNone, PrefixAlways, PrefixConditional)
	}
	if !nameRE.MatchString(n.sep) {
		return fmt.Errorf("separator %q: want one or more of [a-zA-Z0-9._-]", n.sep)
	}
	if !nameRE.MatchString(n.prefix) {
		return fmt.Errorf("prefix %q: want one or more of [a-zA-Z0-9._-]", n.prefix)
	}
	for _, p := range append(append([]string(nil), n.include...), n.exclude...) {
		if _, err := path.Match(p, ""); err != nil {
			return fmt.Errorf("pattern %q: %w", p, err)
		}
	}
	return nil
}

// wanted reports whether the include and exclude patterns let the
// upstream's name through: it matches an include pattern (or there are
// none) and no exclude pattern.
func (n naming) wanted(name string) bool {
	match := func(patterns []string) bool {
		for _, p := range patterns {
			if ok, _ := path.Match(p, name); ok {
				return true
			}
		}
		return false
	}
	return (len(n.include) == 0 || match(n.include)) && !match(n.exclude)
}

// refusal is a definition not registered because another group has its
// name.
type refusal struct {
	Kind, Name, Group string
}

func (r refusal) String() string {
	return fmt.Sprintf("%s %q is registered by group %s", r.Kind, r.Name, r.Group)
}

// name is the name the upstream's name is registered under, given the
// names other groups hold (taken: name -> group); ok is false when the
// name is refused (another group has it, in the conditional mode even
// with the prefix), and holder then names that group.
func (n naming) name(upstreamName string, taken map[string]string) (name, holder string, ok bool) {
	prefixed := n.prefix + n.sep + upstreamName
	switch n.mode {
	case PrefixAlways:
		name = prefixed
	case PrefixConditional:
		name = upstreamName
		if taken[name] != "" {
			name = prefixed
		}
	default:
		name = upstreamName
	}
	if g := taken[name]; g != "" {
		return name, g, false
	}
	return name, "", true
}

// takenNames reads the registry: the tools', prompts', resources' and
// templates' names (URIs) other groups than group registered, by kind
// ("tool", "prompt", "resource", "template"), each to its group.
func takenNames(ctx context.Context, reg jetstream.KeyValue, group string) (map[string]map[string]string, error) {
	kinds := map[string]string{streams.ToolKeyPrefix: "tool", streams.PromptKeyPrefix: "prompt",
		streams.ResourceKeyPrefix: "resource", streams.TemplateKeyPrefix: "template"}
	out := map[string]map[string]string{"tool": {}, "prompt": {}, "resource": {}, "template": {}}
	w, err := reg.WatchFiltered(ctx, []string{streams.ToolKeyPrefix + ">", streams.PromptKeyPrefix + ">",
		streams.ResourceKeyPrefix + ">", streams.TemplateKeyPrefix + ">"}, jetstream.IgnoreDeletes())
	if err != nil {
		return nil, fmt.Errorf("reading the registry: %w", err)
	}
	defer func() { _ = w.Stop() }()
	for {
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("reading the registry: %w", ctx.Err())
		case e, ok := <-w.Updates():
			if !ok {
				return nil, errors.New("reading the registry: the watch ended")
			}
			if e == nil { // every current value read
				return out, nil
			}
			var entry struct {
				Name        string `json:"name"`
				URI         string `json:"uri"`
				URITemplate string `json:"uriTemplate"`
				Group       string `json:"group"`
			}
			if json.Unmarshal(e.Value(), &entry) != nil || entry.Group == group {
				continue
			}
			for prefix, kind := range kinds {
				if !strings.HasPrefix(e.Key(), prefix) {
					continue
				}
				switch kind {
				case "resource":
					out[kind][entry.URI] = entry.Group
				case "template":
					out[kind][entry.URITemplate] = entry.Group
				default:
					out[kind][entry.Name] = entry.Group
				}
			}
		}
	}
}

// SplitCommand splits a command line into words as a POSIX shell would,
// without expanding anything: words are separated by blanks, quoted with
// '...' (literally) or "..." (where \" and \\ are escapes), and \ escapes
// the next character outside quotes.
func SplitCommand(line string) ([]string, error) {
	var words []string
	var cur strings.Builder
	inWord := false
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n':
			if inWord {
				words, inWord = append(words, cur.String()), false
				cur.Reset()
			}
		case c == '\'':
			j := strings.IndexByte(line[i+1:], '\'')
			if j < 0 {
				return nil, errors.New("unterminated ' in the command")
			}
			cur.WriteString(line[i+1 : i+1+j])
			i, inWord = i+1+j, true
		case c == '"':
			inWord = true
			for i++; ; i++ {
				if i >= len(line) {
					return nil, errors.New(`unterminated " in the command`)
				}
				if line[i] == '"' {
					break
				}
				if line[i] == '\\' && i+1 < len(line) && (line[i+1] == '"' || line[i+1] == '\\') {
					i++
				}
				cur.WriteByte(line[i])
			}
		case c == '\\' && i+1 < len(line):
			i++
			cur.WriteByte(line[i])
			inWord = true
		default:
			cur.WriteByte(c)
			inWord = true
		}
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words, nil
}
