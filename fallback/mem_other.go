//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package fallback

// Elsewhere every buffer is an ordinary slice on the Go heap.
func sysMap(int) []byte { return nil }

func sysUnmap([]byte) error { return nil }
