package doccheck

import (
	"fmt"
	"strings"
)

// Command is one simple command of a shell code block: a line, its
// continuation lines (ending in \) joined, its comment dropped, and split
// at the operators ; & && | ||.
type Command struct {
	// File and Line locate the command's first line.
	File string
	Line int
	// Text is the command as written, quotes and variables included.
	Text string
}

func (c Command) String() string { return c.Text }

// ShellLangs are the info strings of the code blocks whose commands are
// checked.
var ShellLangs = map[string]bool{"sh": true, "bash": true, "shell": true, "console": true, "shell-session": true, "zsh": true}

// CommandsIn returns the commands of a shell code block of file. In a
// console block only the lines with a "$ " prompt are commands, the
// others being their output.
func CommandsIn(file string, b CodeBlock) []Command {
	lines := b.Lines
	if b.Lang == "console" || b.Lang == "shell-session" {
		lines = make([]string, len(b.Lines))
		for i, l := range b.Lines {
			if t := strings.TrimLeft(l, " \t"); strings.HasPrefix(t, "$ ") {
				lines[i] = t[2:]
			}
		}
	}
	var (
		cmds      []Command
		cur       strings.Builder
		curLine   int
		single    bool // inside '...'
		double    bool // inside "..."
		wordStart = true
	)
	end := func() {
		if t := strings.TrimSpace(cur.String()); t != "" {
			cmds = append(cmds, Command{File: file, Line: curLine, Text: t})
		}
		cur.Reset()
		curLine = 0
		wordStart = true
	}
	src := strings.Join(lines, "\n") + "\n"
	line := b.Line + 1
	for i := 0; i < len(src); i++ {
		c := src[i]
		if c != ' ' && c != '\t' && c != '\n' && curLine == 0 {
			curLine = line
		}
		switch {
		case single:
			if c == '\'' {
				single = false
			}
		case c == '\\' && i+1 < len(src):
			if src[i+1] == '\n' { // continuation line
				i++
				line++
				cur.WriteByte(' ')
				wordStart = true
				continue
			}
			cur.WriteByte(c)
			i++
			c = src[i]
		case double:
			if c == '"' {
				double = false
			}
		case c == '\'':
			single = true
		case c == '"':
			double = true
		case c == '#' && wordStart:
			for i+1 < len(src) && src[i+1] != '\n' {
				i++
			}
			continue
		case c == '&' && i > 0 && (src[i-1] == '>' || src[i-1] == '<'): // 2>&1
		case c == '\n' || c == ';' || c == '&' || c == '|':
			end()
			if c == '\n' {
				line++
			} else if i+1 < len(src) && src[i+1] == c { // && or ||
				i++
			}
			continue
		}
		if c == '\n' {
			line++
		}
		cur.WriteByte(c)
		wordStart = !single && !double && (c == ' ' || c == '\t' || c == '\n')
	}
	end()
	return cmds
}

// Words splits the command into words as the shell would: quotes
// removed, backslash escapes resolved, and each variable ($NAME, ${NAME})
// and command substitution ($(...)) replaced by expand's answer for its
// name ("NAME", or "$(...)" as written). Words that are only variable
// assignments (NAME=value) before the command are kept.
func (c Command) Words(expand func(name string) string) ([]string, error) {
	var (
		words  []string
		cur    strings.Builder
		inWord bool
	)
	s := c.Text
	variable := func(i int) (string, int, error) { // s[i] == '$'
		switch {
		case i+1 < len(s) && s[i+1] == '{':
			j := strings.IndexByte(s[i:], '}')
			if j < 0 {
				return "", 0, fmt.Errorf("unterminated ${ in %q", s)
			}
			return expand(s[i+2 : i+j]), i + j + 1, nil
		case i+1 < len(s) && s[i+1] == '(':
			depth := 0
			for j := i + 1; j < len(s); j++ {
				switch s[j] {
				case '(':
					depth++
				case ')':
					if depth--; depth == 0 {
						return expand(s[i : j+1]), j + 1, nil
					}
				}
			}
			return "", 0, fmt.Errorf("unterminated $( in %q", s)
		}
		if i+1 < len(s) && s[i+1] >= '0' && s[i+1] <= '9' { // $1
			return expand(s[i+1 : i+2]), i + 2, nil
		}
		j := i + 1
		for j < len(s) && (s[j] == '_' || s[j] >= 'a' && s[j] <= 'z' || s[j] >= 'A' && s[j] <= 'Z' || s[j] >= '0' && s[j] <= '9') {
			j++
		}
		if j == i+1 {
			return "$", i + 1, nil
		}
		return expand(s[i+1 : j]), j, nil
	}
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
			i++
			continue
		case c == '\'':
			j := strings.IndexByte(s[i+1:], '\'')
			if j < 0 {
				return nil, fmt.Errorf("unterminated ' in %q", s)
			}
			cur.WriteString(s[i+1 : i+1+j])
			i += j + 2
		case c == '"':
			i++
			for {
				if i >= len(s) {
					return nil, fmt.Errorf("unterminated \" in %q", s)
				}
				if s[i] == '"' {
					i++
					break
				}
				switch {
				case s[i] == '\\' && i+1 < len(s) && strings.IndexByte("$`\"\\\n", s[i+1]) >= 0:
					cur.WriteByte(s[i+1])
					i += 2
				case s[i] == '$':
					v, next, err := variable(i)
					if err != nil {
						return nil, err
					}
					cur.WriteString(v)
					i = next
				default:
					cur.WriteByte(s[i])
					i++
				}
			}
		case c == '\\' && i+1 < len(s):
			cur.WriteByte(s[i+1])
			i += 2
		case c == '$':
			v, next, err := variable(i)
			if err != nil {
				return nil, err
			}
			cur.WriteString(v)
			i = next
		default:
			cur.WriteByte(c)
			i++
		}
		inWord = true
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words, nil
}
