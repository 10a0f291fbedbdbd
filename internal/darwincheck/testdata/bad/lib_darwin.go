//go:build darwin

package lib

import "os"

// Pid returns the process id, as a string: a type error on purpose.
func Pid() string { return os.Getpid() }
