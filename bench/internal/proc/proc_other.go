//go:build !linux

package proc

import "os/exec"

// killWithParent does nothing here: children are killed on the harness's
// own exit paths only.
func killWithParent(*exec.Cmd) {}
