package doccheck_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mcpstream/mcpstream/internal/doccheck"
)

// These tests check the repository's own documentation: README.md and
// docs/**/*.md.

// moduleRoot is the directory of the go.mod above the test's directory.
func moduleRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if b, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil && bytes.Contains(b, []byte("module github.com/mcpstream/mcpstream\n")) {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod of github.com/mcpstream/mcpstream above the working directory")
		}
		dir = parent
	}
}

// TestDocLinks: every relative link and image of README.md and docs/
// names an existing file, and every fragment a heading or anchor of its
// target.
func TestDocLinks(t *testing.T) {
	root := moduleRoot(t)
	files, err := doccheck.MarkdownFiles(root)
	if err != nil {
		t.Fatal(err)
	}
	problems, err := doccheck.CheckLinks(root, files)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("%s", p)
	}
	t.Logf("checked %d files: %s", len(files), strings.Join(files, ", "))
}
