package doccheck

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for name, content := range files {
		p := filepath.Join(root, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// TestCheckLinks: each broken relative link or anchor is reported with
// its file and line; good ones, external ones and ones in code are not.
func TestCheckLinks(t *testing.T) {
	root := writeFiles(t, map[string]string{
		"README.md": "# Project\n" + // 1
			"## Quick start\n" + // 2
			"## Usage\n" + // 3
			"## Usage\n" + // 4
			"[ok](#quick-start) [dup](#usage-1) [top](#project) [up](#Quick-start)\n" + // 5
			"[file](docs/guide.md) [dir](deploy/) [dir2](deploy) [anchor](docs/guide.md#the-api-v2)\n" + // 6
			"[missing](docs/missing.md) [bad anchor](docs/guide.md#nope) [self](README.md#usage-2)\n" + // 7
			"![img](docs/pic.png) ![gone](docs/gone.png) [src](cmd/main.go#L10) [q](docs/guide.md?plain=1#the-api-v2)\n" + // 8
			"[ext](https://example.com/x.md) [mail](mailto:a@b.c) [proto](//cdn.example/x.js) `[code](nope.md)`\n" + // 9
			"[root](/docs/guide.md) [out](../outside.md) [enc](docs/my%20notes.md#caf%C3%A9) [html](#explicit)\n" + // 10
			"<a href=\"docs/nothere.md\">x</a> <img src=\"docs/pic.png\"> [empty]()\n" + // 11
			"```md\n[fenced](nope.md)\n```\n", // 12-14
		"docs/guide.md":    "# Guide\n## The API (v2)\n<a name=\"explicit\"></a>\n[back](../README.md#usage) [wrong](../README.md#usages) [here](#guide) [there](#explicit)\n",
		"docs/my notes.md": "# Café\n",
		"docs/pic.png":     "png",
		"deploy/x.yaml":    "x",
		"cmd/main.go":      "package main",
	})
	files, err := MarkdownFiles(root)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"README.md", "docs/guide.md", "docs/my notes.md"}; !reflect.DeepEqual(files, want) {
		t.Errorf("files %q, want %q", files, want)
	}
	problems, err := CheckLinks(root, files)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range problems {
		got = append(got, p.String())
	}
	want := []string{
		`README.md:5: link #Quick-start: README.md has no heading or anchor "Quick-start" (heading "Quick start" is #quick-start)`,
		`README.md:7: link docs/missing.md: no file or directory docs/missing.md`,
		`README.md:7: link docs/guide.md#nope: docs/guide.md has no heading or anchor "nope"`,
		`README.md:7: link README.md#usage-2: README.md has no heading or anchor "usage-2" (heading "Usage" is #usage)`,
		`README.md:8: link docs/gone.png: no file or directory docs/gone.png`,
		`README.md:10: link ../outside.md: ../outside.md is outside the repository`,
		`README.md:10: link #explicit: README.md has no heading or anchor "explicit"`,
		`README.md:11: link docs/nothere.md: no file or directory docs/nothere.md`,
		`README.md:11: link with an empty target`,
		`docs/guide.md:4: link ../README.md#usages: README.md has no heading or anchor "usages" (heading "Usage" is #usage)`,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("problems:\n%s\nwant:\n%s", join(got), join(want))
	}
}

func join(s []string) string {
	out := ""
	for _, l := range s {
		out += "  " + l + "\n"
	}
	return out
}
