//go:build darwin

package lib

import "os"

// Pid returns the process id.
func Pid() int { return os.Getpid() }
