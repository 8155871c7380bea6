// Package doccheck checks that the project's Markdown documentation still
// matches the repository and the mcpstream command, so that a newcomer who
// follows README.md hits neither a dead link nor a command that fails.
//
// It checks two things:
//
//   - Links and anchors ([CheckLinks]). Every Markdown link and image, and
//     every href or src of inline HTML, whose target is relative (no
//     scheme such as https: or mailto:) must name a file or directory of
//     the repository, relative to the Markdown file (or to the repository
//     root when it starts with /). A #fragment, alone or after a Markdown
//     file, must name a heading of the target file under GitHub's anchor
//     rules ([Slug], [Slugger]) or an explicit <a id> or <a name> anchor.
//     Links inside code blocks and code spans are not links and are not
//     checked.
//
//   - Commands ([CommandsIn], [Checker], [RunCurls]). In the fenced sh,
//     bash, shell or console blocks, continuation lines are joined and
//     comments dropped. A command that runs mcpstream (go run
//     ./cmd/mcpstream SUB, mcpstream SUB, ./bin/mcpstream SUB) must name
//     a subcommand (or a subcommand's subcommand, as in mcpstream apikey
//     create, when `mcpstream SUB WORD -h` prints "Usage of SUB WORD:")
//     and only flags it defines, with values it accepts: it
//     is run with -h appended, placeholders such as URL, N or $VAR
//     replaced by a value of the flag's type, and must print the
//     subcommand's usage. Another go run, build or test must name package
//     directories that exist; make must name Makefile targets; curl must
//     address a path mcpstream serves, and RunCurls runs the curl
//     commands for real against a running server, the session id of one
//     response passed to the next.
//
// Markdown is parsed with goldmark, a CommonMark parser, with GitHub's
// table extension, so that what counts as a link, a heading, a code span
// or a code block is what GitHub renders.
//
// The package's tests check the repository itself, so go test ./..., and
// with it make test, fails when the documentation goes stale:
// TestDocLinks checks README.md and docs/**/*.md; TestQuickStartCommands
// builds mcpstream once and checks the commands of README.md's "Quick
// start" section (up to the next heading of its level), running its curl
// commands against `mcpstream dev --addr 127.0.0.1:0` when curl is
// installed (the run is skipped, saying so, when it is not);
// TestDocCommands checks the commands of every other shell block of those
// files, without running curl.
package doccheck
