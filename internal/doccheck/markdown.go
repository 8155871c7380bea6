package doccheck

import (
	"bytes"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"unicode"

	"github.com/yuin/goldmark"
	"github.com/yuin/goldmark/ast"
	"github.com/yuin/goldmark/extension"
	"github.com/yuin/goldmark/text"
	"github.com/yuin/goldmark/util"
)

// Document is what the checks need of a Markdown file.
type Document struct {
	// Headings in the order of the file, each with its GitHub anchor.
	Headings []Heading
	// Anchors holds every fragment a link may name: the headings' anchors
	// and the ids and names of <a id="..."> and <a name="..."> tags.
	Anchors map[string]bool
	// Links are the links and images of the text (inline, reference and
	// HTML href and src alike) in the order of the file; none comes from
	// a code block or a code span.
	Links []Link
	// CodeBlocks are the fenced code blocks in the order of the file.
	CodeBlocks []CodeBlock
}

// Heading is an ATX (#) or setext (underlined) heading.
type Heading struct {
	Level int
	// Text is the heading's text as GitHub renders it: without markup,
	// the content of code spans kept, HTML tags dropped.
	Text string
	// Anchor is the fragment GitHub gives the heading, duplicates
	// numbered.
	Anchor string
	Line   int
}

// Link is a link or image destination, as written (backslash escapes and
// character references resolved).
type Link struct {
	Dest  string
	Line  int
	Image bool
}

// CodeBlock is a fenced code block.
type CodeBlock struct {
	// Lang is the first word of the info string: "sh" for ```sh.
	Lang string
	// Line is the line of the opening fence.
	Line int
	// Lines are the block's content lines, without their newlines.
	Lines []string
}

var md = goldmark.New(goldmark.WithExtensions(extension.Table, extension.Strikethrough))

// Parse parses Markdown source.
func Parse(src []byte) *Document {
	d := &Document{Anchors: map[string]bool{}}
	lines := newLineIndex(src)
	var slugs Slugger
	root := md.Parser().Parse(text.NewReader(src))
	_ = ast.Walk(root, func(n ast.Node, entering bool) (ast.WalkStatus, error) {
		if !entering {
			return ast.WalkContinue, nil
		}
		switch n := n.(type) {
		case *ast.Heading:
			var b strings.Builder
			plainText(&b, n, src)
			h := Heading{Level: n.Level, Text: b.String(), Line: lines.line(blockStart(n))}
			h.Anchor = slugs.Slug(h.Text)
			d.Headings = append(d.Headings, h)
			d.Anchors[h.Anchor] = true
		case *ast.Link:
			d.Links = append(d.Links, Link{Dest: destination(n.Destination), Line: lines.line(n.Pos())})
		case *ast.Image:
			d.Links = append(d.Links, Link{Dest: destination(n.Destination), Line: lines.line(n.Pos()), Image: true})
		case *ast.RawHTML:
			if n.Segments.Len() > 0 {
				d.html(n.Segments.Value(src), lines.line(n.Segments.At(0).Start))
			}
		case *ast.HTMLBlock:
			for i := range n.Lines().Len() {
				s := n.Lines().At(i)
				d.html(s.Value(src), lines.line(s.Start))
			}
			if n.HasClosure() {
				d.html(n.ClosureLine.Value(src), lines.line(n.ClosureLine.Start))
			}
		case *ast.FencedCodeBlock:
			cb := CodeBlock{Line: lines.line(n.Pos())}
			if n.Info != nil {
				cb.Lang = string(n.Language(src))
			}
			for i := range n.Lines().Len() {
				s := n.Lines().At(i)
				cb.Lines = append(cb.Lines, strings.TrimRight(string(s.Value(src)), "\r\n"))
			}
			d.CodeBlocks = append(d.CodeBlocks, cb)
			return ast.WalkSkipChildren, nil
		}
		return ast.WalkContinue, nil
	})
	return d
}

// Section returns the fenced code blocks under the first heading whose
// text is title (compared case-insensitively, spaces trimmed), up to the
// next heading of the same or a higher level; ok is false when no heading
// has that text.
func (d *Document) Section(title string) (blocks []CodeBlock, ok bool) {
	for i, h := range d.Headings {
		if !strings.EqualFold(strings.TrimSpace(h.Text), strings.TrimSpace(title)) {
			continue
		}
		end := int(^uint(0) >> 1)
		for _, next := range d.Headings[i+1:] {
			if next.Level <= h.Level {
				end = next.Line
				break
			}
		}
		for _, b := range d.CodeBlocks {
			if b.Line > h.Line && b.Line < end {
				blocks = append(blocks, b)
			}
		}
		return blocks, true
	}
	return nil, false
}

var (
	htmlTag  = regexp.MustCompile(`(?is)<(a|img|source)\b([^>]*)>`)
	htmlAttr = regexp.MustCompile(`(?is)\b(id|name|href|src)\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'>]+))`)
)

// html records the anchors (<a id>, <a name>) and links (<a href>,
// <img src>, <source src>) of a piece of raw HTML.
func (d *Document) html(raw []byte, line int) {
	for _, tag := range htmlTag.FindAllSubmatch(raw, -1) {
		name := strings.ToLower(string(tag[1]))
		for _, a := range htmlAttr.FindAllSubmatch(tag[2], -1) {
			v := string(a[2]) + string(a[3]) + string(a[4])
			v = string(util.ResolveEntityNames(util.ResolveNumericReferences([]byte(v))))
			switch attr := strings.ToLower(string(a[1])); {
			case name == "a" && (attr == "id" || attr == "name"):
				d.Anchors[v] = true
			case name == "a" && attr == "href":
				d.Links = append(d.Links, Link{Dest: v, Line: line})
			case name != "a" && attr == "src":
				d.Links = append(d.Links, Link{Dest: v, Line: line, Image: true})
			}
		}
	}
}

// plainText writes n's text content as a browser would show it: text and
// code spans, without emphasis markers, HTML tags or images.
func plainText(b *strings.Builder, n ast.Node, src []byte) {
	for c := n.FirstChild(); c != nil; c = c.NextSibling() {
		switch c := c.(type) {
		case *ast.Text:
			b.Write(util.ResolveEntityNames(util.ResolveNumericReferences(util.UnescapePunctuations(c.Segment.Value(src)))))
			if c.SoftLineBreak() || c.HardLineBreak() {
				b.WriteByte('\n')
			}
		case *ast.String:
			b.Write(c.Value)
		case *ast.CodeSpan:
			for t := c.FirstChild(); t != nil; t = t.NextSibling() {
				switch t := t.(type) {
				case *ast.Text:
					b.Write(t.Segment.Value(src))
				case *ast.String:
					b.Write(t.Value)
				}
			}
		case *ast.AutoLink:
			b.Write(c.Label(src))
		case *ast.RawHTML, *ast.Image:
		default:
			plainText(b, c, src)
		}
	}
}

// destination resolves the backslash escapes and character references of
// a link destination.
func destination(d []byte) string {
	return string(util.ResolveEntityNames(util.ResolveNumericReferences(util.UnescapePunctuations(bytes.Clone(d)))))
}

// blockStart is the source offset of a block node.
func blockStart(n ast.Node) int {
	if l := n.Lines(); l != nil && l.Len() > 0 {
		return l.At(0).Start
	}
	return n.Pos()
}

// lineIndex maps source offsets to 1-based line numbers.
type lineIndex []int

func newLineIndex(src []byte) lineIndex {
	starts := lineIndex{0}
	for i, c := range src {
		if c == '\n' {
			starts = append(starts, i+1)
		}
	}
	return starts
}

func (l lineIndex) line(offset int) int {
	if offset < 0 {
		return 0
	}
	return sort.SearchInts(l, offset+1)
}

// Slug is the anchor GitHub derives from a heading's text, before
// duplicates are numbered: the text lowercased, each space replaced by
// -, and every character dropped but letters, marks, decimal and letter
// numbers, connector punctuation (_) and -. Punctuation, symbols
// (emoji among them), other whitespace and control characters go.
// These are the rules of github-slugger, which mirrors GitHub's.
func Slug(heading string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(heading) {
		switch {
		case r == ' ':
			b.WriteByte('-')
		case r == '-', unicode.IsLetter(r), unicode.IsMark(r), unicode.Is(unicode.Nd, r), unicode.Is(unicode.Nl, r),
			unicode.Is(unicode.Pc, r), unicode.Is(unicode.Other_Alphabetic, r):
			b.WriteRune(r)
		}
	}
	return b.String()
}

// Slugger numbers the anchors of one file's headings as GitHub does: the
// first "usage" is usage, the next usage-1, then usage-2, skipping any
// number a heading already took ("Usage 1" is usage-1 too).
type Slugger struct {
	seen map[string]int
}

// Slug returns the anchor of the next heading with this text.
func (s *Slugger) Slug(heading string) string {
	if s.seen == nil {
		s.seen = map[string]int{}
	}
	base := Slug(heading)
	slug := base
	for {
		if _, taken := s.seen[slug]; !taken {
			break
		}
		s.seen[base]++
		slug = base + "-" + strconv.Itoa(s.seen[base])
	}
	s.seen[slug] = 0
	return slug
}
