package doccheck

import (
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
)

// Problem is one thing wrong in the documentation.
type Problem struct {
	// File is the Markdown file, a slash path relative to the repository
	// root; Line is 1-based.
	File string
	Line int
	Msg  string
}

func (p Problem) String() string { return fmt.Sprintf("%s:%d: %s", p.File, p.Line, p.Msg) }

// MarkdownFiles returns the documentation the checks cover: README.md
// and every .md file under docs/, as slash paths relative to root,
// sorted.
func MarkdownFiles(root string) ([]string, error) {
	files := []string{"README.md"}
	if _, err := os.Stat(filepath.Join(root, "README.md")); err != nil {
		return nil, err
	}
	err := filepath.WalkDir(filepath.Join(root, "docs"), func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) && p == filepath.Join(root, "docs") {
				return fs.SkipDir
			}
			return err
		}
		if !d.IsDir() && strings.HasSuffix(p, ".md") {
			rel, err := filepath.Rel(root, p)
			if err != nil {
				return err
			}
			files = append(files, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	sort.Strings(files[1:])
	return files, nil
}

// scheme matches a URL scheme (https:, mailto:, ...).
var scheme = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9+.-]*:`)

// External reports whether a link destination leaves the repository: it
// has a scheme or is protocol-relative (//host/...).
func External(dest string) bool {
	return scheme.MatchString(dest) || strings.HasPrefix(dest, "//")
}

// linkChecker checks the relative links of a repository's Markdown files.
type linkChecker struct {
	root string
	docs map[string]*Document // parsed Markdown files by slash path
}

// CheckLinks checks the links and images of files (slash paths relative
// to root) whose destinations are relative: each must name an existing
// file or directory inside root, relative to the linking file (or to root
// when it starts with /), and a fragment must name an anchor of the
// target Markdown file (the linking file itself for #fragment alone).
// Fragments of other files (a source file's #L10) are not checked. An
// error is returned when a file of files cannot be read.
func CheckLinks(root string, files []string) ([]Problem, error) {
	l := &linkChecker{root: root, docs: map[string]*Document{}}
	var problems []Problem
	for _, f := range files {
		d, err := l.doc(f)
		if err != nil {
			return nil, err
		}
		for _, link := range d.Links {
			if msg := l.check(f, d, link.Dest); msg != "" {
				problems = append(problems, Problem{File: f, Line: link.Line, Msg: msg})
			}
		}
	}
	return problems, nil
}

func (l *linkChecker) doc(file string) (*Document, error) {
	if d, ok := l.docs[file]; ok {
		return d, nil
	}
	src, err := os.ReadFile(filepath.Join(l.root, filepath.FromSlash(file)))
	if err != nil {
		return nil, err
	}
	d := Parse(src)
	l.docs[file] = d
	return d, nil
}

// check returns what is wrong with a link of file, or "".
func (l *linkChecker) check(file string, d *Document, dest string) string {
	what := "link " + dest
	if dest == "" {
		return "link with an empty target"
	}
	if External(dest) {
		return ""
	}
	p, frag, hasFrag := strings.Cut(dest, "#")
	p, _, _ = strings.Cut(p, "?")
	if u, err := url.PathUnescape(p); err == nil {
		p = u
	}
	if u, err := url.PathUnescape(frag); err == nil {
		frag = u
	}
	if p == "" {
		if !hasFrag || frag == "" {
			return ""
		}
		if !d.Anchors[frag] {
			return fmt.Sprintf("%s: %s has no heading or anchor %q%s", what, file, frag, suggest(d, frag))
		}
		return ""
	}
	var target string
	if strings.HasPrefix(p, "/") {
		target = path.Clean(strings.TrimLeft(p, "/"))
	} else {
		target = path.Join(path.Dir(file), p)
	}
	if target == ".." || strings.HasPrefix(target, "../") {
		return fmt.Sprintf("%s: %s is outside the repository", what, target)
	}
	info, err := os.Stat(filepath.Join(l.root, filepath.FromSlash(target)))
	if err != nil {
		return fmt.Sprintf("%s: no file or directory %s", what, target)
	}
	if !hasFrag || frag == "" || info.IsDir() || !isMarkdown(target) {
		return ""
	}
	td, err := l.doc(target)
	if err != nil {
		return fmt.Sprintf("%s: %v", what, err)
	}
	if !td.Anchors[frag] {
		return fmt.Sprintf("%s: %s has no heading or anchor %q%s", what, target, frag, suggest(td, frag))
	}
	return ""
}

func isMarkdown(p string) bool {
	switch strings.ToLower(path.Ext(p)) {
	case ".md", ".markdown":
		return true
	}
	return false
}

// suggest names the anchor a broken fragment was probably meant to be:
// the one equal to it but for case, or one of its headings' anchors it
// is a prefix or an extension of.
func suggest(d *Document, frag string) string {
	low := strings.ToLower(frag)
	for _, h := range d.Headings {
		if h.Anchor == low || (len(low) >= 4 && (strings.HasPrefix(h.Anchor, low) || strings.HasPrefix(low, h.Anchor))) {
			return fmt.Sprintf(" (heading %q is #%s)", h.Text, h.Anchor)
		}
	}
	return ""
}
