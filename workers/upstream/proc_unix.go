//go:build unix

package upstream

import (
	"os/exec"
	"syscall"
)

// ownGroup starts cmd in a process group of its own, so that signals
// reach the programs it starts too (npx, uvx and shells start the server
// as a child).
func ownGroup(cmd *exec.Cmd) { cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} }

// signalGroup sends sig to cmd's process group.
func signalGroup(cmd *exec.Cmd, sig syscall.Signal) {
	if cmd.Process != nil {
		_ = syscall.Kill(-cmd.Process.Pid, sig)
	}
}
