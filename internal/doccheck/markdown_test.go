package doccheck

import (
	"reflect"
	"strings"
	"testing"
)

func TestSlug(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"Quick start", "quick-start"},
		{"bravoCharlieDelta", "bravocharliedelta"},
		{"heading with a - dash", "heading-with-a---dash"},
		{"heading with an _ underscore", "heading-with-an-_-underscore"},
		{"heading with a period.txt", "heading-with-a-periodtxt"},
		{"exchange.bind_headers(exchange, routing [, bindCallback])", "exchangebind_headersexchange-routing--bindcallback"},
		{"100,000 connections and 250,000 calls/s (estimate)", "100000-connections-and-250000-callss-estimate"},
		{"Cost per call (estimate)", "cost-per-call-estimate"},
		{"What's new?", "whats-new"},
		{"apostrophe’s should be trimmed", "apostrophes-should-be-trimmed"},
		{"I ♥ unicode", "i--unicode"},
		{"en–dash", "endash"},
		{"😄 unicode emoji", "-unicode-emoji"},
		{"😄 - an emoji", "---an-emoji"},
		{"🚀 Quick start", "-quick-start"},
		{":smile: - a gemoji", "smile---a-gemoji"},
		{"Привет non-latin 你好", "привет-non-latin-你好"},
		{"Café", "café"},
		{"x² and ½", "x-and-"},       // other numbers go
		{"Ⅻ roman", "ⅻ-roman"},       // letter numbers stay
		{"tab\there", "tabhere"},     // control characters go
		{"no\u00a0break", "nobreak"}, // other spaces go
		{"`--max-inflight` & co.", "--max-inflight--co"},
		{"  two  spaces  ", "--two--spaces--"},
		{"C++ / Go", "c--go"},
		{"a|b", "ab"},
	} {
		if got := Slug(tc.in); got != tc.want {
			t.Errorf("Slug(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestSluggerNumbersDuplicates(t *testing.T) {
	var s Slugger
	var got []string
	for _, h := range []string{"echo", "echo", "echo 1", "echo-1", "echo", "foxtrot-1", "foxtrot", "foxtrot", "Usage", "usage", "USAGE!"} {
		got = append(got, s.Slug(h))
	}
	want := []string{"echo", "echo-1", "echo-1-1", "echo-1-2", "echo-2", "foxtrot-1", "foxtrot", "foxtrot-2", "usage", "usage-1", "usage-2"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("slugs\n got %q\nwant %q", got, want)
	}
}

// TestParseHeadings: a heading's text is what GitHub renders (code spans
// kept, markup, HTML and images dropped, escapes and entities resolved),
// and its anchor is that text's slug, duplicates numbered in file order.
func TestParseHeadings(t *testing.T) {
	src := "# The `mcpstream dev` command\n" +
		"## Flags: `--addr`, `--data` & friends!\n" +
		"## *Emphasis*, **strong** and ~~struck~~\n" +
		"## A [link](other.md) and ![an image](x.png) here\n" +
		"## Escaped \\* star \\_ and &amp; entity &#35;\n" +
		"## <a id=\"custom\"></a>With an anchor\n" +
		"## 🚀 Launch 🚀\n" +
		"## FAQ\n" +
		"## FAQ\n" +
		"### FAQ\n" +
		"Setext *one*\n" +
		"============\n" +
		"\n" +
		"```sh\n" +
		"# not a heading\n" +
		"```\n" +
		"\n" +
		"    # indented code, not a heading\n" +
		"\n" +
		"## Trailing hashes ##\n" +
		"#NoSpace is not a heading\n" +
		"## <code>html</code> code\n"
	d := Parse([]byte(src))
	want := []Heading{
		{1, "The mcpstream dev command", "the-mcpstream-dev-command", 1},
		{2, "Flags: --addr, --data & friends!", "flags---addr---data--friends", 2},
		{2, "Emphasis, strong and struck", "emphasis-strong-and-struck", 3},
		{2, "A link and  here", "a-link-and--here", 4},
		{2, "Escaped * star _ and & entity #", "escaped--star-_-and--entity-", 5},
		{2, "With an anchor", "with-an-anchor", 6},
		{2, "🚀 Launch 🚀", "-launch-", 7},
		{2, "FAQ", "faq", 8},
		{2, "FAQ", "faq-1", 9},
		{3, "FAQ", "faq-2", 10},
		{1, "Setext one", "setext-one", 11},
		{2, "Trailing hashes", "trailing-hashes", 20},
		{2, "html code", "html-code", 22},
	}
	if !reflect.DeepEqual(d.Headings, want) {
		t.Errorf("headings:\n got %+v\nwant %+v", d.Headings, want)
	}
	for _, a := range []string{"custom", "faq", "faq-1", "faq-2", "-launch-"} {
		if !d.Anchors[a] {
			t.Errorf("no anchor %q in %v", a, d.Anchors)
		}
	}
	if d.Anchors["not-a-heading"] || d.Anchors["indented-code-not-a-heading"] {
		t.Error("a code block's line counted as a heading")
	}
}

// TestParseLinks: links and images of every form, with their lines; none
// from code spans or code blocks.
func TestParseLinks(t *testing.T) {
	src := strings.Join([]string{
		"Inline [a](a.md) and [b](<b c.md> \"title\") and [p](x_(1).md) and [q](y\\(2.md).", // 1
		"An image ![i](img.png 'title') and `[not](code.md)` in a span.",                    // 2
		"A reference [r][ref], a collapsed [ref][] and a shortcut [ref].",                   // 3
		"",                            // 4
		"[ref]: docs/ref.md#section",  // 5
		"",                            // 6
		"```md",                       // 7
		"[in a fence](fence.md)",      // 8
		"```",                         // 9
		"",                            // 10
		"    [indented](indented.md)", // 11
		"",                            // 12
		"| col | link |",              // 13
		"|---|---|",                   // 14
		"| x | [cell](cell.md) |",     // 15
		"",                            // 16
		"<p><a href=\"html.md#x\">h</a> <img src='pic.svg'></p>", // 17
		"", // 18
		"Text <a name=\"here\"></a> and [e](https://example.com) and <https://auto.example> and [m](mailto:a@b.c).", // 19
		"Escaped \\[not](a link.md) and [amp](a&amp;b.md).",                                                         // 20
		"A [link\nacross lines](across.md).",                                                                        // 21, 22
		"An inline <a class=\"x\"\nhref=\"split.md\">tag</a> across lines.",                                         // 23, 24
	}, "\n")
	d := Parse([]byte(src))
	want := []Link{
		{"a.md", 1, false},
		{"b c.md", 1, false},
		{"x_(1).md", 1, false},
		{"y(2.md", 1, false},
		{"img.png", 2, true},
		{"docs/ref.md#section", 3, false},
		{"docs/ref.md#section", 3, false},
		{"docs/ref.md#section", 3, false},
		{"cell.md", 15, false},
		{"html.md#x", 17, false},
		{"pic.svg", 17, true},
		{"https://example.com", 19, false},
		{"mailto:a@b.c", 19, false},
		{"a&b.md", 20, false},
		{"across.md", 21, false},
		{"split.md", 23, false},
	}
	if !reflect.DeepEqual(d.Links, want) {
		t.Errorf("links:\n got %+v\nwant %+v", d.Links, want)
	}
	if !d.Anchors["here"] {
		t.Error(`<a name="here"> is not an anchor`)
	}
}

func TestSection(t *testing.T) {
	src := "# Title\n```sh\nbefore\n```\n## Quick start\n```sh\none\n```\n### Sub\n```bash\ntwo\n```\n- item\n\n  ```sh\n  three\n  ```\n## Next\n```sh\nafter\n```\n"
	d := Parse([]byte(src))
	blocks, ok := d.Section("quick START")
	if !ok {
		t.Fatal("no section")
	}
	var got []string
	for _, b := range blocks {
		got = append(got, b.Lang+":"+strings.Join(b.Lines, ";"))
	}
	if want := []string{"sh:one", "bash:two", "sh:three"}; !reflect.DeepEqual(got, want) {
		t.Errorf("blocks %q, want %q", got, want)
	}
	if blocks[0].Line != 6 {
		t.Errorf("first block at line %d, want 6", blocks[0].Line)
	}
	if _, ok := d.Section("Missing"); ok {
		t.Error("found a missing section")
	}
}
