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

// Binary is the mcpstream command built once for a test binary's tests.
// The zero value is ready; call Remove from TestMain when the tests end.
type Binary struct {
	once sync.Once
	dir  string
	path string
	err  error
}

// Path builds ./cmd/mcpstream of the module whose root is root the first
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
		b.path = filepath.Join(b.dir, "mcpstream")
		args := []string{"build", "-o", b.path}
		if race {
			args = append(args, "-race")
		}
		build := exec.Command("go", append(args, "./cmd/mcpstream")...)
		build.Dir = root
		if out, err := build.CombinedOutput(); err != nil {
			b.err = fmt.Errorf("go build ./cmd/mcpstream: %v\n%s", err, out)
		}
		t.Logf("built mcpstream in %s", time.Since(start).Round(time.Millisecond))
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
