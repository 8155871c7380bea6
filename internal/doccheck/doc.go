// Package doccheck checks that the project's Markdown documentation still
// matches the repository, so that a newcomer who follows README.md does
// not hit a dead link.
//
// [CheckLinks] checks links and anchors. Every Markdown link and image,
// and every href or src of inline HTML, whose target is relative (no
// scheme such as https: or mailto:) must name a file or directory of the
// repository, relative to the Markdown file (or to the repository root
// when it starts with /). A #fragment, alone or after a Markdown file,
// must name a heading of the target file under GitHub's anchor rules
// ([Slug], [Slugger]) or an explicit <a id> or <a name> anchor. Links
// inside code blocks and code spans are not links and are not checked.
//
// Markdown is parsed with goldmark, a CommonMark parser, with GitHub's
// table extension, so that what counts as a link, a heading, a code span
// or a code block is what GitHub renders. The package's test checks the
// repository's README.md and docs/, so go test ./..., and with it make
// test, fails when the documentation goes stale.
package doccheck
