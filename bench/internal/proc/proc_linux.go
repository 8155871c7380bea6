package proc

import (
	"os/exec"
	"syscall"
)

// killWithParent has the kernel SIGKILL the child when the harness dies,
// however it dies.
func killWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
