package testkit

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// Binary is the mcpstream command built once for a test binary's tests
// (or, with Pkg set, another main package of the module). The zero value
// is ready; call Remove from TestMain when the tests end.
type Binary struct {
	// Pkg is the package built, relative to the module's root (default
	// ./cmd/mcpstream).
	Pkg  string
	once sync.Once
	dir  string
	path string
	err  error
}

// Path builds ./cmd/mcpstream (or Pkg) of the module whose root is root the first
// time (with the race detector when race is set: its packages are then
// already compiled by go test -race) and returns the binary's path; t
// fails when the build does.
func (b *Binary) Path(t testing.TB, root string, race bool) string {
	t.Helper()
	b.once.Do(func() {
		start := time.Now()
		if b.dir, b.err = os.MkdirTemp("", "mcpstream-bin-"); b.err != nil {
			return
		}
		pkg := b.Pkg
		if pkg == "" {
			pkg = "./cmd/mcpstream"
		}
		b.path = filepath.Join(b.dir, filepath.Base(pkg))
		args := []string{"build", "-o", b.path}
		if race {
			args = append(args, "-race")
		}
		build := exec.Command("go", append(args, pkg)...)
		build.Dir = root
		if out, err := build.CombinedOutput(); err != nil {
			b.err = fmt.Errorf("go build %s: %v\n%s", pkg, err, out)
		}
		t.Logf("built %s in %s", pkg, time.Since(start).Round(time.Millisecond))
	})
	if b.err != nil {
		t.Fatal(b.err)
	}
	return b.path
}

// Remove deletes the built binary, if any.
func (b *Binary) Remove() {
	if b.dir != "" {
		os.RemoveAll(b.dir)
	}
}
