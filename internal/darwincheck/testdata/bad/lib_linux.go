//go:build linux

package lib

// Pid is fine on Linux.
func Pid() int { return 1 }
