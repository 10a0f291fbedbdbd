// Package lib has a type error only in its darwin file, which a Linux build never compiles.
package lib

// Answer is portable.
func Answer() int { return 42 }
