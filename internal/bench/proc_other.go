//go:build !linux

package bench

import (
	"errors"
	"fmt"
	"syscall"
)

var errNoProc = errors.New("process statistics need Linux /proc")

func procCPU(int) (float64, error)     { return 0, errNoProc }
func procPeakRSS(int) (float64, error) { return 0, errNoProc }
func selfCPU() (float64, error)        { return 0, errNoProc }
func serverProcAttr() *syscall.SysProcAttr {
	return nil
}

// CheckServerPID refuses every pid: measuring a process needs /proc.
func CheckServerPID(pid int) error {
	return fmt.Errorf("server pid %d: %w", pid, errNoProc)
}
